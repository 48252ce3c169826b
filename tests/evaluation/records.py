"""Evaluation records written to the real store (record.py's on-disk format), as the evaluate job writes them."""

from __future__ import annotations

from pathlib import Path

from flash_mcp.domain.evaluation import record

SPLIT = "test"


def row_ids(n: int, split: str = SPLIT) -> list[str]:
    return [f"{split}:example_{i:06d}" for i in range(n)]


def store(
    home: Path,
    eval_id: str,
    target: str,
    scores: list[list[float]] | list[float],
    *,
    rows: list[str] | None = None,
    digest: str = "sha256:env-1",
    sampling: record.Sampling | None = None,
    state: str = "done",
    truncated: set[str] = frozenset(),
    errored: set[str] = frozenset(),
    completion: str = "answer {score}",
) -> record.EvalSpec:
    """One evaluation: per row a score (or one score per sample); success = score >= 0.5."""
    ids = rows or row_ids(len(scores))
    sampling = sampling or record.Sampling()
    spec = record.EvalSpec(
        eval_id=eval_id, target=target, plane="local", config="p/configs/sft.toml", model="tiny",
        environment_id="local/p/starter", environment_digest=digest, split=SPLIT, row_ids=ids, sampling=sampling,
    )  # fmt: skip
    directory = record.eval_dir(home, eval_id)
    record.write_spec(directory, spec)
    written = []
    for row_id, row_scores in zip(ids, scores, strict=True):
        samples = row_scores if isinstance(row_scores, list) else [row_scores]
        for sample, score in enumerate(samples):
            failed = row_id in errored
            written.append(
                record.EvalRow(
                    row_id=row_id, sample=sample, completion=completion.format(score=score, row=row_id),
                    score=None if failed else score, success=None if failed else score >= 0.5,
                    truncated=row_id in truncated, errored=failed, error="scorer raised" if failed else None,
                    tokens=64 if row_id in truncated else 8,
                )
            )  # fmt: skip
    record.append_rows(directory, written)
    record.update_status(directory, state=state)
    return spec
