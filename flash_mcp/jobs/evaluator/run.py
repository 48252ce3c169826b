"""Evaluate one target on the spec's rows (or a suite's cases): render, generate in batches, score, append."""

from __future__ import annotations

import functools
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
    write_spec,
)
from flash_mcp.jobs.evaluator import environment
from flash_mcp.jobs.evaluator.episodes import EpisodeItem, episode_items, episode_rows
from flash_mcp.jobs.evaluator.generate import Generated, generate, load_model, pick_device
from flash_mcp.jobs.evaluator.items import Item
from flash_mcp.jobs.evaluator.suite import SUITE_PREFIX, suite_items

JOB = "job.json"
DEFAULT_BATCH = 16
PROMPT_LIMIT = 2000


def evaluate(eval_dir: Path) -> dict[str, Any]:
    """Run the evaluation; return the final status fields."""
    spec = read_spec(eval_dir)
    job = read_json(eval_dir / JOB)
    if spec is None or job is None:
        raise RuntimeError(f"{eval_dir} has no spec.json or job.json")
    items = load_items(spec, job)
    if spec.split.startswith(SUITE_PREFIX):  # a suite's cases are known only once it is loaded
        spec = spec.model_copy(update={"row_ids": [item.row_id for item in items]})
        write_spec(eval_dir, spec, seal=False)  # the job's copy; the server's is out of its reach
    device = pick_device()
    model, tokenizer = load_model(job["model_path"], job.get("adapter_path"), device)
    total = len(items) * spec.sampling.samples_per_row
    update_status(eval_dir, stage="generating", device=device, total=total, done=0)
    batch, done = int(job.get("batch_size") or DEFAULT_BATCH), 0
    for number, start in enumerate(range(0, len(items), batch)):
        if (eval_dir / CANCEL).exists():
            return {"state": "cancelled", "stage": "cancelled"}
        chunk = items[start : start + batch]
        if chunk and isinstance(chunk[0], EpisodeItem):
            rows = episode_rows(chunk, spec, model, tokenizer, number)  # type: ignore[arg-type]
        else:
            rows = score_batch(chunk, spec, model, tokenizer, number)  # type: ignore[arg-type]
        append_rows(eval_dir, rows)
        done += len(rows)
        update_status(eval_dir, done=done)
    return {"state": "done", "stage": "done"}


def load_items(spec: EvalSpec, job: dict[str, Any]) -> list[Item] | list[EpisodeItem]:
    if spec.split.startswith(SUITE_PREFIX):
        name = spec.split[len(SUITE_PREFIX) :]
        return suite_items(job["entrypoint"], job["params"], name, job.get("max_rows"))
    env, examples, multi = environment.load_environment(job["entrypoint"], job["params"])
    if multi:
        return episode_items(env, examples, spec)
    by_id = {f"{spec.split}:{example.id}": example for example in examples}
    missing = [row_id for row_id in spec.row_ids if row_id not in by_id]
    if missing:
        raise RuntimeError(f"{len(missing)} row(s) not in the {spec.split} split, e.g. {missing[0]}")
    return [_split_item(env, row_id, by_id[row_id]) for row_id in spec.row_ids]


def _split_item(env: Any, row_id: str, example: Any) -> Item:
    try:
        prompt: Any = environment.render(env, example)
    except BaseException as exc:  # the environment's start_episode is user code
        prompt = exc
    return Item(row_id, prompt, functools.partial(environment.score, env, example))


def score_batch(items: list[Item], spec: EvalSpec, model, tokenizer, number: int) -> list[EvalRow]:
    """One batch: prompts that failed to render become errored rows and buy no generation."""
    samples = spec.sampling.samples_per_row
    ready = [item for item in items if not isinstance(item.prompt, BaseException)]
    answers = generate(
        model, tokenizer, [item.prompt for item in ready], max_tokens=spec.sampling.max_tokens,  # type: ignore[misc]
        temperature=spec.sampling.temperature, samples=samples, seed=spec.sampling.seed + number,
    ) if ready else []  # fmt: skip
    outputs = {item.row_id: drawn for item, drawn in zip(ready, answers, strict=True)}
    rows = []
    for item in items:
        if isinstance(item.prompt, BaseException):
            error = f"prompt construction failed: {type(item.prompt).__name__}: {item.prompt}"[:500]
            rows += [EvalRow(row_id=item.row_id, sample=k, errored=True, error=error) for k in range(samples)]
            continue
        rows += [scored_row(item, k, answer) for k, answer in enumerate(outputs[item.row_id])]
    return rows


def scored_row(item: Item, sample: int, answer: Generated, scored: str | None = None) -> EvalRow:
    """The scorer grades `scored` (the answer as the scorer should see it; the raw text by default); the row
    records the raw generation."""
    result = item.score(answer.text if scored is None else scored)
    prompt = item.prompt if isinstance(item.prompt, list) else []
    return EvalRow(
        row_id=item.row_id,
        sample=sample,
        prompt=str(prompt[-1].get("content") or "")[:PROMPT_LIMIT] if prompt else "",
        completion=answer.text,
        score=result["score"],
        success=result["success"],
        truncated=answer.truncated,
        errored=result["error"] is not None,
        error=result["error"],
        tokens=answer.tokens,
    )
