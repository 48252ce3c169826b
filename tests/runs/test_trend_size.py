"""A trend needs both: a change beyond its own noise and a change meaningful in size (domain/runs/noise.py)."""

from __future__ import annotations

from flash_mcp.domain.runs import noise


def test_a_change_beyond_a_tiny_noise_but_negligible_on_its_level_is_not_a_trend() -> None:
    entropy = [5.98 + 0.0001 * t + (0.000001 if t % 2 else 0.0) for t in range(9)]  # +0.0006 on 5.98, smooth
    found = noise.trend("entropy", entropy)
    assert abs(found.change) > noise.NOISE_Z * found.noise  # beyond its noise...
    assert found.trend == noise.NEGLIGIBLE  # ...but 0.01% of its level
    assert "negligible" in noise.describe(found)


def test_a_change_of_a_few_percent_of_the_level_is_a_trend() -> None:
    loss = [2.0 - 0.01 * t for t in range(9)]  # -0.06 on 2.0: 3%
    assert noise.trend("loss", loss).trend == noise.FALLING


def test_from_a_zero_level_the_range_sets_the_scale() -> None:
    reward = [0.0, 0.0, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.05]
    assert noise.trend("reward", reward).trend == noise.RISING


def test_meaningful_is_relative_to_the_larger_of_level_and_range() -> None:
    assert noise.meaningful(0.05, [5.0, 5.0, 5.05], 1)  # 1% of the level 5.0
    assert not noise.meaningful(0.049, [5.0, 5.0, 5.049], 1)
    assert noise.meaningful(0.02, [0.0, 1.0, 0.02], 1)  # 2% of the range 1.0
    assert not noise.meaningful(0.009, [0.0, 1.0, 0.009], 1)
