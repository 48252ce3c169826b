"""Rows rendered and scored in this very process: the Flash plane's environment half (`remote.py`), a child that
writes only its own exchange files and no verdict. The local evaluator never loads the environment itself (it
talks to environment workers, `flash_mcp/jobs/env_worker.py`)."""

from __future__ import annotations

import functools
from typing import Any

from flash_mcp.domain.evaluation.record import EvalRow, EvalSpec
from flash_mcp.jobs.evaluator import environment
from flash_mcp.jobs.evaluator.generate import Generated
from flash_mcp.jobs.evaluator.items import Item
from flash_mcp.jobs.evaluator.suite import SUITE_PREFIX, suite_items

PROMPT_LIMIT = 2000


def load_items(spec: EvalSpec, job: dict[str, Any]) -> list[Item]:
    if spec.split.startswith(SUITE_PREFIX):
        name = spec.split[len(SUITE_PREFIX) :]
        return suite_items(job["entrypoint"], job["params"], name, job.get("max_rows"))
    env, examples, multi = environment.load_environment(job["entrypoint"], job["params"])
    if multi:
        raise RuntimeError("multi-turn evaluation is local only: evaluate with plane='local'")
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
