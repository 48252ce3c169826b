"""The environment's half of a Flash-plane evaluation: `python -m flash_mcp.jobs.evaluator.remote render|score DIR`.

The server holds the API key and talks to the deployment; this child never sees the key and never talks to
Flash. `render` loads the environment as the local evaluator does (runtime loader, or the evaluations.py
suite) and writes DIR/prompts.jsonl (row_id, messages or error); `score` loads it again, scores each answer
in DIR/answers.jsonl (row_id, sample, text, tokens, truncated, error) with the environment's own scorer and
appends the rows to DIR/rows.jsonl with the same record as a local evaluation. For a run trained with
`thinking = true` the scorer sees the answer with its `<think>` reasoning stripped, as `flash env eval` 1.3.28
does (`_scored_response`); the row records the raw answer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flash_mcp.domain.evaluation.record import EvalRow, append_rows, read_json, read_spec, write_spec
from flash_mcp.domain.evaluation.request import JOB
from flash_mcp.jobs.evaluator.generate import Generated
from flash_mcp.jobs.evaluator.inprocess import load_items, scored_row
from flash_mcp.jobs.evaluator.suite import SUITE_PREFIX

PROMPTS, ANSWERS = "prompts.jsonl", "answers.jsonl"


def render(directory: Path) -> None:
    spec, items = _load(directory)
    if spec.split.startswith(SUITE_PREFIX):  # a suite's cases are known only once it is loaded
        write_spec(directory, spec.model_copy(update={"row_ids": [item.row_id for item in items]}))
    lines = []
    for item in items:
        if isinstance(item.prompt, BaseException):
            error = f"prompt construction failed: {type(item.prompt).__name__}: {item.prompt}"[:500]
            lines.append({"row_id": item.row_id, "error": error})
        else:
            lines.append({"row_id": item.row_id, "messages": item.prompt})
    (directory / PROMPTS).write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def scored_text(response: str, *, thinking: bool) -> str:
    """The answer as the scorer sees it: `flash env eval` 1.3.28's `_scored_response`. Only for a thinking run,
    the text after the LAST `</think>` (an unclosed `<think>` keeps what precedes it), as a str carrying the
    `raw` answer and its `thinking` text for scorers that read them."""
    if not thinking:
        return response
    from flash.content.thinking import strip_think, thinking_text
    from flash.envs.loading.adapter import _ScoredResponseText

    answer = strip_think(response)
    return _ScoredResponseText(
        answer if isinstance(answer, str) else response, raw=response, thinking=thinking_text(response)
    )


def score(directory: Path) -> None:
    _, items = _load(directory)
    thinking = bool(read_json(directory / JOB).get("thinking"))  # type: ignore[union-attr]
    by_id = {item.row_id: item for item in items}
    rows = []
    for line in (directory / ANSWERS).read_text(encoding="utf-8").splitlines():
        answer = json.loads(line)
        item = by_id[answer["row_id"]]
        if answer.get("error"):
            rows.append(EvalRow(row_id=item.row_id, sample=answer["sample"], errored=True, error=answer["error"]))
            continue
        generated = Generated(text=answer["text"], tokens=answer["tokens"], truncated=answer["truncated"])
        rows.append(scored_row(item, answer["sample"], generated, scored_text(answer["text"], thinking=thinking)))
    append_rows(directory, rows)


def _load(directory: Path):
    spec, job = read_spec(directory), read_json(directory / JOB)
    if spec is None or job is None:
        raise RuntimeError(f"{directory} has no spec.json or job.json")
    return spec, load_items(spec, job)


if __name__ == "__main__":
    {"render": render, "score": score}[sys.argv[1]](Path(sys.argv[2]))
