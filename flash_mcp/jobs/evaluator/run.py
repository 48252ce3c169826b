"""Evaluate one target on the spec's rows: render, generate in batches, score, append rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flash_mcp.domain.evaluation.record import (
    CANCEL,
    EvalRow,
    EvalSpec,
    append_rows,
    read_json,
    read_spec,
    update_status,
)
from flash_mcp.jobs.evaluator import environment
from flash_mcp.jobs.evaluator.generate import Generated, generate, load_model, pick_device

JOB = "job.json"
DEFAULT_BATCH = 16
PROMPT_LIMIT = 2000


def evaluate(eval_dir: Path) -> dict[str, Any]:
    """Run the evaluation; return the final status fields."""
    spec = read_spec(eval_dir)
    job = read_json(eval_dir / JOB)
    if spec is None or job is None:
        raise RuntimeError(f"{eval_dir} has no spec.json or job.json")
    env, examples, multi = environment.load_environment(job["entrypoint"], job["params"])
    if multi:
        raise RuntimeError("multi-turn environments cannot be evaluated locally yet; evaluate on the flash plane")
    by_id = {f"{spec.split}:{example.id}": example for example in examples}
    missing = [row_id for row_id in spec.row_ids if row_id not in by_id]
    if missing:
        raise RuntimeError(f"{len(missing)} row(s) not in the {spec.split} split, e.g. {missing[0]}")
    device = pick_device()
    model, tokenizer = load_model(job["model_path"], job.get("adapter_path"), device)
    total = len(spec.row_ids) * spec.sampling.samples_per_row
    update_status(eval_dir, stage="generating", device=device, total=total, done=0)
    batch, done = int(job.get("batch_size") or DEFAULT_BATCH), 0
    for number, start in enumerate(range(0, len(spec.row_ids), batch)):
        if (eval_dir / CANCEL).exists():
            return {"state": "cancelled", "stage": "cancelled"}
        rows = score_batch(env, by_id, spec, spec.row_ids[start : start + batch], model, tokenizer, number)
        append_rows(eval_dir, rows)
        done += len(rows)
        update_status(eval_dir, done=done)
    return {"state": "done", "stage": "done"}


def score_batch(env, by_id, spec: EvalSpec, row_ids: list[str], model, tokenizer, number: int) -> list[EvalRow]:
    """One batch: prompts that fail to render become errored rows and buy no generation."""
    samples = spec.sampling.samples_per_row
    prompts: dict[str, Any] = {}
    for row_id in row_ids:
        try:
            prompts[row_id] = environment.render(env, by_id[row_id])
        except BaseException as exc:  # the environment's start_episode is user code
            prompts[row_id] = exc
    ready = [row_id for row_id in row_ids if not isinstance(prompts[row_id], BaseException)]
    outputs = dict(zip(ready, generate(
        model, tokenizer, [prompts[r] for r in ready], max_tokens=spec.sampling.max_tokens,
        temperature=spec.sampling.temperature, samples=samples, seed=spec.sampling.seed + number,
    ) if ready else [], strict=True))  # fmt: skip
    rows = []
    for row_id in row_ids:
        prompt = prompts[row_id]
        if isinstance(prompt, BaseException):
            error = f"prompt construction failed: {type(prompt).__name__}: {prompt}"[:500]
            rows += [EvalRow(row_id=row_id, sample=k, errored=True, error=error) for k in range(samples)]
            continue
        for k, answer in enumerate(outputs[row_id]):
            rows.append(scored_row(env, by_id[row_id], row_id, k, prompt, answer))
    return rows


def scored_row(env, example, row_id: str, sample: int, prompt: list[dict], answer: Generated) -> EvalRow:
    result = environment.score(env, example, answer.text)
    return EvalRow(
        row_id=row_id,
        sample=sample,
        prompt=str(prompt[-1].get("content") or "")[:PROMPT_LIMIT],
        completion=answer.text,
        score=result["score"],
        success=result["success"],
        truncated=answer.truncated,
        errored=result["error"] is not None,
        error=result["error"],
        tokens=answer.tokens,
    )
