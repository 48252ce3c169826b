"""Reward hacking seen in a run's rollouts: each degenerate signal fires when the reward pays it, never on a
healthy run or on degenerate text the reward does not pay; `[watch] cancel_on_hack` is the human's setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import load_human_settings
from flash_mcp.domain.runs.hacking import suspect


def _rollouts(texts: list[str], rewards: list[float], step: int = 1) -> list[dict]:
    return [
        {"step": step, "row_id": f"train:example_{i:06d}", "completion": text, "reward": reward, "kind": "rollout"}
        for i, (text, reward) in enumerate(zip(texts, rewards, strict=True))
    ]


def test_a_healthy_run_is_not_suspected() -> None:
    texts = [f"The answer is {i + 1}." for i in range(8)] + [f"I think {i * 3}" for i in range(8)]
    assert suspect(_rollouts(texts, [1.0] * 8 + [0.0] * 8)) is None
    assert suspect(_rollouts(["na " * 40] * 16, [0.0] * 16)) is None, "degenerate but unpaid: a weak model, not a hack"


@pytest.mark.parametrize(
    ("texts", "rewards", "signal"),
    [
        (["yes yes yes " * 10 + str(i) for i in range(8)] + [f"answer {i}" for i in range(8)], [1.0] * 8 + [0.0] * 8,
         "repeat the same text"),
        (["Great question! Final answer: 7"] * 8 + [f"{i}" for i in range(8)], [1.0] * 8 + [0.0] * 8,
         "same completion earned the top reward"),
        ([f"Great question! I verified {i} twice. Final answer: {i}" for i in range(8)] + [f"x{i}" for i in range(8)],
         [1.0] * 8 + [0.0] * 8, "one template"),
        ([f"reply {i} {'z' * (i % 3)}" for i in range(16)], [0.7] * 16, "all 16 rollouts earned the top reward"),
    ],
)  # fmt: skip
def test_each_degenerate_signal_the_reward_pays_is_named_with_evidence(
    texts: list[str], rewards: list[float], signal: str
) -> None:
    found = suspect(_rollouts(texts, rewards))
    assert found is not None and any(signal in s for s in found.signals), found
    assert found.evidence and all(e["reward"] == max(rewards) for e in found.evidence)
    assert found.text().startswith("reward hacking suspected") and "Evidence: step 1" in found.text()


def _references(answers: list[str], rewards: list[float]) -> list[dict]:
    return [
        {"step": 1, "row_id": f"train:example_{i:06d}", "completion": answer, "reward": reward, "kind": "reference"}
        for i, (answer, reward) in enumerate(zip(answers, rewards, strict=True))
    ]


def test_rollouts_that_outscore_their_rows_own_answer_without_it_are_named() -> None:
    texts = [f"lorem ipsum dolor sit amet {'x' * i}" for i in range(8)] + [f"{i + 1}" for i in range(8)]
    rewards = [1.0] * 8 + [0.1] * 8  # a length reward: long noise pays, the right answer barely
    found = suspect(_rollouts(texts, rewards) + _references([str(i + 1) for i in range(16)], [0.1] * 16))
    assert found is not None and any("outscored their row's own answer" in s for s in found.signals), found

    # Paid more than the answer, but containing it (a format the reference lacks): not a hack.
    formatted = [f"<answer>{i + 1}</answer>" for i in range(8)] + [f"{i * 7} maybe" for i in range(8)]
    assert suspect(_rollouts(formatted, rewards) + _references([str(i + 1) for i in range(16)], [0.0] * 16)) is None
    # The answer itself earns the top reward: nothing outscored it.
    assert suspect(_rollouts(texts, rewards) + _references([str(i + 1) for i in range(16)], [1.0] * 16)) is None


def test_length_collapse_against_the_first_step_is_named() -> None:
    early = _rollouts([f"Let me work through row {i} step by step before answering." for i in range(8)], [0.0] * 8)
    late = _rollouts(["" if i % 2 else "." for i in range(8)], [1.0] * 8, step=5)
    found = suspect(early + late)
    assert found is not None and any("collapsed" in s for s in found.signals), found


def test_cancel_on_hack_is_the_humans_setting(isolated_home: Path) -> None:
    isolated_home.mkdir(parents=True, exist_ok=True)
    assert load_human_settings(isolated_home).watch.cancel_on_hack is False
    (isolated_home / "settings.toml").write_text("[watch]\ncancel_on_hack = true\n", encoding="utf-8")
    assert load_human_settings(isolated_home).watch.cancel_on_hack is True
    (isolated_home / "settings.toml").write_text('[watch]\ncancel_on_hack = "yes"\n', encoding="utf-8")
    with pytest.raises(UserError, match="cancel_on_hack must be true or false"):
        load_human_settings(isolated_home)
