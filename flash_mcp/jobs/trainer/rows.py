"""The training rows as the environment worker serves them: ids, prompts, SFT targets and rewards.

The trainer runs no agent code: everything the environment defines comes over the worker's pipe
(`runtime/worker.py`), and everything it sends back is checked here before it can reach a run file."""

from __future__ import annotations

import math
from typing import Any

from flash_mcp.runtime.worker import ERROR_CHARS, Step, WorkerClient

TRAIN_SPLIT = "train"
BATCH = 256  # rows per render/completions request (a reply stays far under its cap)


class Rows:
    """The run's rows (split-qualified ids, e.g. "train:example_000001") and their rendered prompts."""

    def __init__(self, env: WorkerClient, ids: list[str]):
        self.env, self.ids = env, ids
        self._references: dict[int, str | None] = {}
        self.prompts: list[list[dict]] = _all(env, ids, _batched(env.render, ids), "prompt")

    def reference(self, index: int) -> str | None:
        """Row `index`'s own answer as text (its SFT target: the environment's `sft_completion`, else the row's
        output), fetched once; None when it has none."""
        if index not in self._references:
            (item,) = self.env.completions([self.ids[index]])
            self.fail_if_gone()
            last = item[-1] if isinstance(item, list) and item else None
            content = last.get("content") if isinstance(last, dict) else None
            self._references[index] = content if isinstance(content, str) and content.strip() else None
        return self._references[index]

    def completions(self) -> list[list[dict]]:
        """Each row's SFT target (the environment's `sft_completion`, else the row's output)."""
        return _all(self.env, self.ids, _batched(self.env.completions, self.ids), "SFT completion")

    def score(self, pairs: list[tuple[int, str]]) -> list[tuple[float, str | None]]:
        """(reward, reason) for (row index, completion) pairs, in one request; an errored item scores 0 (its error
        is the reason)."""
        scored = self.env.score([(self.ids[index], text) for index, text in pairs])
        self.fail_if_gone()
        return [(s.score, s.reason) if s.score is not None else (0.0, s.error) for s in scored]

    def fail_if_gone(self) -> None:
        if self.env.broken:
            raise RuntimeError(f"environment worker: {self.env.broken}")


def within_prompt_budget(examples: Rows, tokenizer: Any, knobs: dict[str, Any]) -> list[dict[str, Any]]:
    """Rollout rows ({"prompt", "row"}), dropping prompts over the prompt budget (`max_context_tokens` less
    `max_completion_tokens`), as Flash's prompt filter does."""
    completion_tokens = int(knobs.get("max_completion_tokens") or 320)
    budget = int(knobs.get("max_context_tokens") or 0) - completion_tokens
    rows = []
    for index, prompt in enumerate(examples.prompts):
        if knobs.get("max_context_tokens") and _prompt_tokens(tokenizer, prompt) > budget:
            continue
        rows.append({"prompt": prompt, "row": index})
    if len(rows) < len(examples.prompts):
        print(f"dropped {len(examples.prompts) - len(rows)} prompt(s) longer than the {budget}-token prompt budget",
              flush=True)  # fmt: skip
    return rows


def _prompt_tokens(tokenizer: Any, prompt: list[dict]) -> int:
    return len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))


def row_ids(info: dict[str, Any]) -> list[str]:
    """The ids the worker loaded (its `load` reply is untrusted: a list of strings, or the run fails)."""
    ids = info.get("rows")
    if not isinstance(ids, list) or not all(isinstance(row, str) for row in ids):
        raise RuntimeError("the environment worker sent malformed row ids")
    return ids


def _batched(call, ids: list[str]) -> list[Any]:
    return [item for start in range(0, len(ids), BATCH) for item in call(ids[start : start + BATCH])]


def _all(env: WorkerClient, ids: list[str], items: list[Any], what: str) -> list[list[dict]]:
    if env.broken:
        raise RuntimeError(f"environment worker: {env.broken}")
    for row, item in zip(ids, items, strict=True):
        if isinstance(item, str):
            raise RuntimeError(f"{what} for {row} failed: {item}")
    return items


def scored_episode(step: Step) -> dict[str, Any]:
    """An ended episode's result as the trainer records it: a finite score (0 when it failed), per-turn rewards
    only when they are all finite numbers, short texts."""
    if step.error is not None or step.scored is None:
        return {"score": 0.0, "error": (step.error or "episode failed")[:ERROR_CHARS], "per_turn_rewards": None}
    scored, out = step.scored, {}
    value = scored.get("score")
    finite = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    out["score"] = float(value) if finite else 0.0
    out["error"] = _text(scored.get("error")) or (None if finite else "environment worker sent a malformed score")
    out["reason"] = _text(scored.get("reason")) or None
    turns = scored.get("per_turn_rewards")
    numbers = isinstance(turns, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in turns
    )
    out["per_turn_rewards"] = [float(v) for v in turns] if numbers else None
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value)[:ERROR_CHARS]
