"""The paired statistics on constructed data whose answer is known."""

from __future__ import annotations

import math
import random

from flash_mcp.domain.evaluation import stats
from flash_mcp.domain.runs import noise


def bernoulli(rng: random.Random, p: float, n: int) -> list[bool]:
    return [rng.random() < p for _ in range(n)]


def test_a_known_improvement_is_improved_with_an_interval_above_zero() -> None:
    for seed in range(10):
        rng = random.Random(seed)
        a, b = bernoulli(rng, 0.2, 60), bernoulli(rng, 0.8, 60)
        result = stats.paired([float(x) for x in a], [float(x) for x in b], a, b, seed=seed)
        assert result.verdict == stats.IMPROVED, (seed, result)
        assert 0 < result.interval.low < result.difference < result.interval.high
        assert result.mcnemar.p_value < 0.001 and result.mcnemar.improved > result.mcnemar.regressed


def test_a_known_regression_is_regressed() -> None:
    rng = random.Random(7)
    scores_a = [0.7 + rng.gauss(0, 0.1) for _ in range(40)]
    scores_b = [s - 0.2 + rng.gauss(0, 0.05) for s in scores_a]
    result = stats.paired(scores_a, scores_b, [True] * 40, [True] * 40)
    assert result.verdict == stats.REGRESSED and result.interval.high < 0
    assert result.mcnemar.p_value == 1.0, "no row changed success"


def test_identical_distributions_with_different_noise_are_no_detectable_difference() -> None:
    """Same mean, different spread: the interval covers 0 in about 95% of experiments."""
    verdicts, covered = [], 0
    for seed in range(40):
        rng = random.Random(1000 + seed)
        scores_a = [rng.gauss(0.5, 0.05) for _ in range(80)]
        scores_b = [rng.gauss(0.5, 0.3) for _ in range(80)]
        result = stats.paired(scores_a, scores_b, [s > 0.5 for s in scores_a], [s > 0.5 for s in scores_b], seed=seed)
        verdicts.append(result.verdict)
        covered += result.interval.low <= 0 <= result.interval.high
    assert verdicts.count(stats.NO_DIFFERENCE) >= 35, verdicts
    assert covered == verdicts.count(stats.NO_DIFFERENCE)


def test_the_bootstrap_is_seeded_and_agrees_with_the_normal_interval_on_many_rows() -> None:
    rng = random.Random(3)
    differences = [rng.gauss(0.1, 0.5) for _ in range(400)]
    once, again = stats.bootstrap_interval(differences, seed=5), stats.bootstrap_interval(differences, seed=5)
    assert once == again
    centre, half = stats.mean(differences), 1.959964 * stats.sample_sd(differences) / math.sqrt(400)
    assert abs(once.low - (centre - half)) < 0.1 * half and abs(once.high - (centre + half)) < 0.1 * half


def test_mcnemar_exact_p_matches_a_hand_computation() -> None:
    # 1 row improved, 9 regressed: p = 2 * (C(10,0) + C(10,1)) / 2^10 = 22 / 1024
    assert stats.mcnemar_exact(1, 9).p_value == 22 / 1024
    assert stats.mcnemar_exact(0, 5).p_value == 2 / 32
    assert stats.mcnemar_exact(5, 5).p_value == 1.0 and stats.mcnemar_exact(0, 0).p_value == 1.0
    # a large table stays exact: 200 discordant rows split 80/120
    expected = 2 * sum(math.comb(200, k) for k in range(81)) / 2**200
    assert math.isclose(stats.mcnemar_exact(120, 80).p_value, expected, rel_tol=1e-12)
    assert 0.005 < expected < 0.01


def test_the_minimum_detectable_difference_is_the_paired_power_formula() -> None:
    # (z_0.975 + z_0.8) * sd / sqrt(n) = (1.959964 + 0.841621) * 0.5 / 10
    assert math.isclose(stats.minimum_detectable_difference(0.5, 100), 2.801585 * 0.05, rel_tol=1e-5)
    assert stats.minimum_detectable_difference(0.0, 100) is None
    assert stats.minimum_detectable_difference(0.3, 1) is None


def test_too_few_rows_name_no_winner_however_large_the_difference() -> None:
    result = stats.paired([0.0] * 5, [1.0] * 5, [False] * 5, [True] * 5)
    assert result.interval.low == 1.0 and result.verdict == stats.NO_DIFFERENCE
    assert "at least 10" in result.reason and result.mcnemar.p_value == 2 / 32


def test_rows_average_their_samples_before_pairing() -> None:
    assert stats.row_mean([1.0, 0.0, 1.0, 1.0]) == 0.75
    assert stats.row_success([True, False, True]) and not stats.row_success([True, False])


def test_an_sft_loss_moving_a_quarter_percent_inside_its_noise_is_flat() -> None:
    rng = random.Random(11)
    steps = 30
    drifting = [2.0 * (1 - 0.0025 * t / (steps - 1)) + rng.gauss(0, 0.02) for t in range(steps)]
    assert abs(drifting[-1] / drifting[0] - 1) < 0.05
    assert noise.trend("loss", drifting).trend == noise.FLAT
    falling = [2.0 - t / steps + rng.gauss(0, 0.02) for t in range(steps)]
    found = noise.trend("loss", falling)
    assert found.trend == noise.FALLING and abs(found.change) > 2 * found.noise
    assert noise.trend("reward", [0.1 * t for t in range(6)]).trend == noise.RISING
    assert noise.trend("reward", [0.5, 0.5, 0.5, 0.5]).trend == noise.FLAT
    assert noise.trend("reward", [0.1, 0.9]).trend == noise.TOO_FEW


def test_the_headline_says_improved_only_of_what_improved() -> None:
    from flash_mcp.domain.evaluation import stats
    from flash_mcp.domain.evaluation.stats import IMPROVED, NO_DIFFERENCE, REGRESSED, McNemar

    headline, success_verdict = stats.headline, stats.success_verdict
    assert headline(IMPROVED, NO_DIFFERENCE, (0, 0), 200) == (
        "mean reward improved; success no detectable difference (0/200 → 0/200)"
    )
    assert headline(NO_DIFFERENCE, IMPROVED, (3, 40), 50) == (
        "mean reward no detectable difference; success improved (3/50 → 40/50)"
    )
    assert headline(IMPROVED, REGRESSED, (9, 2), 20) == "mean reward improved; success regressed (9/20 → 2/20)"
    assert headline(IMPROVED, IMPROVED, (0, 18), 20) == IMPROVED and headline(REGRESSED, None, None, 20) == REGRESSED
    assert success_verdict(McNemar(18, 0, 2 / 2**18), 20) == IMPROVED
    assert success_verdict(McNemar(0, 7, 2 / 2**7), 20) == REGRESSED
    assert success_verdict(McNemar(5, 0, 2 / 32), 20) == NO_DIFFERENCE, "p = 0.0625 is not below alpha"
    assert success_verdict(McNemar(9, 0, 2 / 2**9), 9) == NO_DIFFERENCE, "too few rows for any verdict"
