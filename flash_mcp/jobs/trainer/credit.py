"""Per-turn credit as Flash's worker assigns it (flash/engine/worker/train/rl/child/credit.py): within a
group whose every episode reported per-turn rewards, each turn's model tokens get that turn's reward
minus the group's mean for the same turn; any other group keeps its episode advantage."""

from __future__ import annotations

from typing import Any


def per_turn_advantages(episode: Any, width: int, group: int, spans: list, rewards: list) -> Any:
    """(B, width) token advantages from the (B,) episode advantages, `spans[i]` and `rewards[i]` (or None)."""
    import torch

    advantages = episode.reshape(-1, 1).expand(-1, width).clone()
    for first in range(0, len(spans), group):
        members = range(first, min(first + group, len(spans)))
        if any(rewards[i] is None or len(rewards[i]) != len(spans[i]) for i in members):
            continue
        for i in members:
            advantages[i] = 0.0
        for turn in range(max(len(rewards[i]) for i in members)):
            scoring = [i for i in members if turn < len(rewards[i]) and spans[i][turn][1] > spans[i][turn][0]]
            if not scoring:
                continue
            baseline = sum(rewards[i][turn] for i in scoring) / len(scoring)
            for i in scoring:
                start, end = spans[i][turn]
                advantages[i, start : min(end, width)] = rewards[i][turn] - baseline
    if not bool(torch.isfinite(advantages).all()):
        raise ValueError("per-turn advantages must be finite")
    return advantages
