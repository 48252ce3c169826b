"""Multi-turn evaluation: each row is a whole episode, its hooks and `score_episode` run by the environment worker,
its turns generated here by the model (the same token bookkeeping multi-turn GRPO trains with)."""

from __future__ import annotations

from typing import Any

from flash_mcp.domain.evaluation.record import TURNS_CHARS, TURNS_MAX, EvalRow, EvalSpec
from flash_mcp.jobs.evaluator.generate import end_ids
from flash_mcp.jobs.model_episode import ModelPolicy
from flash_mcp.runtime.episode import MAX_TURNS, episode_text
from flash_mcp.runtime.worker import WorkerClient, checked_score

PROMPT_LIMIT = 2000


def episode_rows(ids: list[str], spec: EvalSpec, worker: WorkerClient, model: Any, tokenizer: Any, number: int):
    """One batch of rows, `samples_per_row` episodes each (seeded per batch, greedy at temperature 0)."""
    import torch

    sampling = spec.sampling
    torch.manual_seed(sampling.seed + number)
    stops = end_ids(model, tokenizer) | {tokenizer.pad_token_id}
    rows = []
    for row_id in ids:
        for sample in range(sampling.samples_per_row):
            policy = ModelPolicy(model, tokenizer, sampling.max_tokens, sampling.temperature, stops)
            rows.append(_episode_row(worker, row_id, sample, policy))
    return rows


def _episode_row(worker: WorkerClient, row_id: str, sample: int, policy: ModelPolicy) -> EvalRow:
    """One episode, its model turns kept (within the caps) so that a comparison can replay it."""
    step = worker.episode_start([row_id])[0]
    said: list[str] = []
    while step.messages is not None and step.episode is not None:
        if len(said) >= MAX_TURNS + 1:
            step.error = f"the environment asked for more than {MAX_TURNS} turns"
            break
        said.append(policy(step.messages))
        step = worker.episode_turn([(step.episode, said[-1])])[0]
    if step.error is not None or step.scored is None:
        return EvalRow(row_id=row_id, sample=sample, errored=True, error=(step.error or "episode failed")[:500])
    result = checked_score(
        {k: step.scored.get(k) for k in ("score", "success")} | {"error": step.scored.get("error") or None}
    )
    trace = policy.trace
    users = [m for m in trace.messages if m.get("role") == "user"]
    return EvalRow(
        row_id=row_id,
        sample=sample,
        prompt=str(users[0].get("content") or "")[:PROMPT_LIMIT] if users else "",
        completion=episode_text(trace.messages),
        score=result.score,
        success=result.success,
        truncated=trace.truncated,
        errored=result.error is not None,
        error=result.error,
        tokens=sum(trace.mask),
        turns=said if len(said) <= TURNS_MAX and sum(map(len, said)) <= TURNS_CHARS else None,
    )
