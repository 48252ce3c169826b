"""How a resolved spec's [train] knobs map onto TRL locally (what each key means: fidelity.py)."""

from __future__ import annotations

import math
from typing import Any

SFT_DEFAULT_BATCH = 8


def sft_batch(train: dict[str, Any], rows: int) -> int:
    return max(1, min(int(train.get("batch_size") or SFT_DEFAULT_BATCH), max(rows, 1)))


ROLLOUT_DEFAULT_PROMPTS = {"grpo": 64, "opd": 8}  # Flash's recipe: prompts per optimizer step


def rollout_prompts_per_step(algorithm: str, train: dict[str, Any], rows: int) -> int:
    default = ROLLOUT_DEFAULT_PROMPTS.get(algorithm, 64)
    return max(1, min(int(train.get("prompts_per_step") or default), max(rows, 1)))


def planned_steps(algorithm: str, train: dict[str, Any], rows: int) -> int | None:
    """Optimizer steps the local trainer will take."""
    if train.get("max_steps"):
        return int(train["max_steps"])
    if rows <= 0:
        return None
    epochs = int(train.get("epochs") or 1)
    per_step = sft_batch(train, rows) if algorithm == "sft" else rollout_prompts_per_step(algorithm, train, rows)
    return max(1, math.ceil(rows / per_step) * epochs)


def save_steps(train: dict[str, Any], total: int | None) -> list[int]:
    """Steps at which to keep an adapter: save_at_steps, else every save_every (the final is separate)."""
    if train.get("save_at_steps"):
        return sorted(int(step) for step in train["save_at_steps"])
    every = int(train.get("save_every") or 0)
    if not every or not total:
        return []
    return list(range(every, total, every))
