"""Evaluate one target on the spec's rows (or a suite's cases) without running agent code: prompts come from
one environment worker, completions from the model here, scores from another worker that sees only (row,
completion) pairs, shuffled, and nothing naming the target; rows are written here, in the spec's order."""

from __future__ import annotations

import random
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
from flash_mcp.domain.evaluation.request import JOB
from flash_mcp.jobs.evaluator.episodes import episode_rows
from flash_mcp.jobs.evaluator.generate import Generated, generate, load_model, pick_device
from flash_mcp.jobs.evaluator.suite import SUITE_PREFIX
from flash_mcp.runtime.worker import Pending, WorkerClient, WorkerError

DEFAULT_BATCH = 16
PROMPT_LIMIT = 2000
RENDER_BATCH = 256
MAX_SUITE_CASES = 10_000


def evaluate(eval_dir: Path, renderer: WorkerClient, scorer: WorkerClient) -> dict[str, Any]:
    """Run the evaluation; return the final status fields."""
    spec = read_spec(eval_dir)
    job = read_json(eval_dir / JOB)
    if spec is None or job is None:
        raise RuntimeError(f"{eval_dir} has no spec.json or job.json")
    suite = spec.split[len(SUITE_PREFIX) :] if spec.split.startswith(SUITE_PREFIX) else None
    load = {"entrypoint": job["entrypoint"], "params": job["params"], "split": None if suite else spec.split,
            "suite": suite, "max_rows": job.get("max_rows")}  # fmt: skip
    renderer.request("load", **load)
    scorer.request("load", **load)
    device = pick_device()
    model, tokenizer = load_model(job["model_path"], job.get("adapter_path"), device)
    info, _ = _loaded(renderer), _loaded(scorer)
    spec = _rows_of(eval_dir, spec, info, suite)
    total = len(spec.row_ids) * spec.sampling.samples_per_row
    update_status(eval_dir, stage="generating", device=device, total=total, done=0)
    batch = int(job.get("batch_size") or DEFAULT_BATCH)
    if info.get("multi_turn"):
        return _episodes(eval_dir, spec, renderer, model, tokenizer, batch)
    return _single_turn(eval_dir, spec, renderer, scorer, model, tokenizer, batch)


def _loaded(worker: WorkerClient) -> dict[str, Any]:
    try:
        return worker.reply()
    except WorkerError as exc:
        raise RuntimeError(f"the environment did not load: {exc}") from None


def _rows_of(eval_dir: Path, spec: EvalSpec, info: dict[str, Any], suite: str | None) -> EvalSpec:
    """The spec's rows, checked against what the environment has (a suite's cases are known only now)."""
    rows = [str(r) for r in info.get("rows") or []] if isinstance(info.get("rows"), list) else []
    if suite:
        spec = spec.model_copy(update={"row_ids": list(dict.fromkeys(rows))[:MAX_SUITE_CASES]})
        write_spec(eval_dir, spec, seal=False)  # the job's copy; the server's is out of its reach
        return spec
    known = set(rows)
    missing = [row_id for row_id in spec.row_ids if row_id not in known]
    if missing:
        raise RuntimeError(f"{len(missing)} row(s) not in the {spec.split} split, e.g. {missing[0]}")
    return spec


def _single_turn(eval_dir, spec: EvalSpec, renderer, scorer, model, tokenizer, batch: int) -> dict[str, Any]:
    ids = spec.row_ids
    prompts: list[list[dict] | str] = []
    for start in range(0, len(ids), RENDER_BATCH):
        prompts += renderer.render(ids[start : start + RENDER_BATCH])
    pending: tuple[Any, ...] | None = None  # the previous batch, scored while this one generates
    done = 0
    for number, start in enumerate(range(0, len(ids), batch)):
        if (eval_dir / CANCEL).exists():
            return {"state": "cancelled", "stage": "cancelled"}
        chunk = list(zip(ids[start : start + batch], prompts[start : start + batch], strict=True))
        answers = _generate(chunk, spec, model, tokenizer, number)
        sent = _send_scores(scorer, answers)
        if pending:
            done += _write(eval_dir, spec, scorer, *pending)
            update_status(eval_dir, done=done)
        pending = (chunk, answers, *sent)
    if pending:
        done += _write(eval_dir, spec, scorer, *pending)
        update_status(eval_dir, done=done)
    return {"state": "done", "stage": "done"}


def _generate(chunk, spec: EvalSpec, model, tokenizer, number: int) -> dict[str, list[Generated]]:
    """Each renderable row's samples; prompts that failed to render buy no generation."""
    ready = [(row, prompt) for row, prompt in chunk if not isinstance(prompt, str)]
    if not ready:
        return {}
    sampling = spec.sampling
    drawn = generate(
        model, tokenizer, [prompt for _, prompt in ready], max_tokens=sampling.max_tokens,
        temperature=sampling.temperature, samples=sampling.samples_per_row, seed=sampling.seed + number,
    )  # fmt: skip
    return {row: answers for (row, _), answers in zip(ready, drawn, strict=True)}


def _send_scores(scorer: WorkerClient, answers: dict[str, list[Generated]]) -> tuple[list[tuple[str, int]], Pending]:
    """Every (row, sample) answer, shuffled, as (row, completion) pairs: nothing says whose answers they are."""
    keys = [(row, sample) for row, drawn in answers.items() for sample in range(len(drawn))]
    random.SystemRandom().shuffle(keys)
    return keys, scorer.score_request([(row, answers[row][sample].text) for row, sample in keys])


def _write(eval_dir, spec, scorer, chunk, answers, keys, pending) -> int:
    results = dict(zip(keys, scorer.score_reply(pending), strict=True))
    rows: list[EvalRow] = []
    for row_id, prompt in chunk:
        for sample in range(spec.sampling.samples_per_row):
            if isinstance(prompt, str):
                rows.append(EvalRow(row_id=row_id, sample=sample, errored=True, error=prompt[:500]))
                continue
            answer, result = answers[row_id][sample], results[(row_id, sample)]
            rows.append(EvalRow(
                row_id=row_id, sample=sample, prompt=str(prompt[-1].get("content") or "")[:PROMPT_LIMIT],
                completion=answer.text, score=result.score, success=result.success, truncated=answer.truncated,
                errored=result.error is not None, error=result.error, tokens=answer.tokens,
            ))  # fmt: skip
    append_rows(eval_dir, rows)
    return len(rows)


def _episodes(eval_dir, spec: EvalSpec, worker, model, tokenizer, batch: int) -> dict[str, Any]:
    done = 0
    for number, start in enumerate(range(0, len(spec.row_ids), batch)):
        if (eval_dir / CANCEL).exists():
            return {"state": "cancelled", "stage": "cancelled"}
        rows = episode_rows(spec.row_ids[start : start + batch], spec, worker, model, tokenizer, number)
        append_rows(eval_dir, rows)
        done += len(rows)
        update_status(eval_dir, done=done)
    return {"state": "done", "stage": "done"}
