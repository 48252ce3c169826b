"""Multi-turn evaluation: each row is a whole episode played by the model through the shared episode
driver (the same loop multi-turn GRPO trains with), scored by the environment's `score_episode`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flash_mcp.domain.evaluation.record import EvalRow, EvalSpec
from flash_mcp.jobs.evaluator.generate import end_ids
from flash_mcp.jobs.model_episode import play_model_episode
from flash_mcp.runtime.episode import turn_ceiling

PROMPT_LIMIT = 2000


@dataclass(frozen=True)
class EpisodeItem:
    row_id: str
    env: Any
    example: Any
    ceiling: int


def episode_items(env: Any, examples: list[Any], spec: EvalSpec) -> list[EpisodeItem]:
    by_id = {f"{spec.split}:{example.id}": example for example in examples}
    missing = [row_id for row_id in spec.row_ids if row_id not in by_id]
    if missing:
        raise RuntimeError(f"{len(missing)} row(s) not in the {spec.split} split, e.g. {missing[0]}")
    ceiling = turn_ceiling(env, examples)
    return [EpisodeItem(row_id, env, by_id[row_id], ceiling) for row_id in spec.row_ids]


def episode_rows(items: list[EpisodeItem], spec: EvalSpec, model: Any, tokenizer: Any, number: int) -> list[EvalRow]:
    """One batch of rows, `samples_per_row` episodes each (seeded per batch, greedy at temperature 0)."""
    import torch

    sampling = spec.sampling
    torch.manual_seed(sampling.seed + number)
    stops = end_ids(model, tokenizer) | {tokenizer.pad_token_id}
    rows = []
    for item in items:
        for sample in range(sampling.samples_per_row):
            rows.append(_episode_row(item, sample, model, tokenizer, sampling.max_tokens, sampling.temperature, stops))
    return rows


def _episode_row(item: EpisodeItem, sample: int, model, tokenizer, max_tokens: int, temperature: float, stops):
    try:
        trace = play_model_episode(item.env, item.example, model, tokenizer, max_tokens=max_tokens,
                                   temperature=temperature, ceiling=item.ceiling, stops=stops)  # fmt: skip
    except BaseException as exc:  # the environment's episode hooks are user code
        error = f"episode failed: {type(exc).__name__}: {exc}"[:500]
        return EvalRow(row_id=item.row_id, sample=sample, errored=True, error=error)
    scored = trace.scored
    users = [m for m in trace.messages if m.get("role") == "user"]
    prompt_length = next((i for i, m in enumerate(trace.messages) if m.get("role") == "assistant"), 0)
    transcript = trace.transcript(prompt_length)
    error = scored.get("error") or None
    return EvalRow(
        row_id=item.row_id,
        sample=sample,
        prompt=str(users[0].get("content") or "")[:PROMPT_LIMIT] if users else "",
        completion="\n".join(f"[{t['role']}] {t['content']}" for t in transcript),
        score=None if error else float(scored["score"]),
        success=scored.get("success"),
        truncated=trace.truncated,
        errored=bool(error),
        error=error,
        tokens=sum(trace.mask),
    )
