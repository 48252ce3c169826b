"""How a resolved spec's [train] knobs map onto TRL locally, and which have no local meaning."""

from __future__ import annotations

import math
from typing import Any

# Knobs Flash honours that this machine cannot: said plainly in every local run record.
_NO_LOCAL_MEANING = {
    "stop_sequences": "stop sequences are not applied by local generation",
    "structured_outputs": "guided decoding needs vLLM; local rollouts are unconstrained",
    "thinking_length_penalty_coef": "the reasoning-length penalty is a Flash worker feature",
    "teacher_model": "OPD is not trained locally",
}
SFT_DEFAULT_BATCH = 8


def unmapped_notes(train: dict[str, Any], authored: list[str]) -> list[str]:
    """One note per authored knob that local training ignores."""
    notes = []
    for key, reason in _NO_LOCAL_MEANING.items():
        if f"train.{key}" in authored and train.get(key) not in (None, "", [], "per_episode"):
            notes.append(f"train.{key} has no local meaning: {reason}")
    return notes


def sft_batch(train: dict[str, Any], rows: int) -> int:
    return max(1, min(int(train.get("batch_size") or SFT_DEFAULT_BATCH), max(rows, 1)))


def grpo_prompts_per_step(train: dict[str, Any], rows: int) -> int:
    return max(1, min(int(train.get("prompts_per_step") or 64), max(rows, 1)))


def planned_steps(algorithm: str, train: dict[str, Any], rows: int) -> int | None:
    """Optimizer steps the local trainer will take."""
    if train.get("max_steps"):
        return int(train["max_steps"])
    if rows <= 0:
        return None
    epochs = int(train.get("epochs") or 1)
    per_step = sft_batch(train, rows) if algorithm == "sft" else grpo_prompts_per_step(train, rows)
    return max(1, math.ceil(rows / per_step) * epochs)


def save_steps(train: dict[str, Any], total: int | None) -> list[int]:
    """Steps at which to keep an adapter: save_at_steps, else every save_every (the final is separate)."""
    if train.get("save_at_steps"):
        return sorted(int(step) for step in train["save_at_steps"])
    every = int(train.get("save_every") or 0)
    if not every or not total:
        return []
    return list(range(every, total, every))
