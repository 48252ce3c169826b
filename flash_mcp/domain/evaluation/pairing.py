"""Pairing two evaluations row by row, by the evaluations' own counting rule.

A sample counts when it has a score and did not error, as record.summarize counts: a truncated
answer is the model's answer at the token ceiling (part of the ruler) and is scored as Flash scores
it. A row's score is the mean of its counted samples and its success the majority of them; a row
pairs when both evaluations have at least one counted sample for it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flash_mcp.domain.evaluation import record, stats

SEED = 0  # the same two evaluations always give the same interval


def ruler(spec: record.EvalSpec) -> dict[str, Any]:
    """What must be equal for two evaluations to be compared row by row (the target may differ)."""
    return {
        "row_ids": list(spec.row_ids),
        "environment_digest": spec.environment_digest,
        "split": spec.split,
        "sampling": {
            "temperature": spec.sampling.temperature,
            "max_tokens": spec.sampling.max_tokens,
            "samples_per_row": spec.sampling.samples_per_row,
        },
    }


def ruler_differences(a: record.EvalSpec, b: record.EvalSpec) -> list[str]:
    """Human-readable reasons a and b were not measured with the same ruler ([] = comparable).
    The seed is deliberately not part of the ruler: two seeds of one target are the null experiment."""
    ra, rb = ruler(a), ruler(b)
    out = []
    if ra["row_ids"] != rb["row_ids"]:
        only_a = len(set(ra["row_ids"]) - set(rb["row_ids"]))
        only_b = len(set(rb["row_ids"]) - set(ra["row_ids"]))
        out.append(f"other rows ({only_a} only in {a.eval_id}, {only_b} only in {b.eval_id}, or another order)")
    if ra["environment_digest"] != rb["environment_digest"]:
        out.append(f"other environment digest ({ra['environment_digest']} vs {rb['environment_digest']})")
    if ra["split"] != rb["split"]:
        out.append(f"other split ({ra['split']} vs {rb['split']})")
    for key, value in ra["sampling"].items():
        if value != rb["sampling"][key]:
            out.append(f"other {key} ({value} vs {rb['sampling'][key]})")
    return out


@dataclass(frozen=True)
class Row:
    score: float
    success: bool | None
    completion: str


@dataclass(frozen=True)
class Pairing:
    ids: list[str]  # paired rows, in evaluation order
    rows_a: dict[str, Row]
    rows_b: dict[str, Row]
    with_success: list[str]  # paired rows with a success signal on both sides
    result: stats.PairedResult


def rows_by_id(evaluation: record.Evaluation) -> dict[str, Row]:
    """One entry per row with at least one counted sample."""
    samples: defaultdict[str, list[record.EvalRow]] = defaultdict(list)
    for row in evaluation.rows:
        if row.score is not None and not row.errored:
            samples[row.row_id].append(row)
    out = {}
    for row_id, counted in samples.items():
        successes = [s.success for s in counted if s.success is not None]
        out[row_id] = Row(
            score=stats.row_mean([float(s.score) for s in counted if s.score is not None]),
            success=stats.row_success(successes) if successes else None,
            completion=min(counted, key=lambda s: s.sample).completion,
        )
    return out


def pair(first: record.Evaluation, second: record.Evaluation) -> Pairing:
    """B (second) against A (first) on the rows both scored; the caller has checked the ruler."""
    rows_a, rows_b = rows_by_id(first), rows_by_id(second)
    ids = [r for r in first.spec.row_ids if r in rows_a and r in rows_b]
    with_success = [r for r in ids if rows_a[r].success is not None and rows_b[r].success is not None]
    result = stats.paired(
        [rows_a[r].score for r in ids], [rows_b[r].score for r in ids],
        [bool(rows_a[r].success) for r in ids], [bool(rows_b[r].success) for r in ids], seed=SEED,
    )  # fmt: skip
    return Pairing(ids=ids, rows_a=rows_a, rows_b=rows_b, with_success=with_success, result=result)
