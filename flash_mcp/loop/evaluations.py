"""Read evaluations: one evaluation as a report (a page of rows, filtered), pages of evaluations, cancel.

The start side is `evaluate.py` (and `evaluate_flash.py`, `evaluate_baseline.py`); waiting is `waiting.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.visible import clip
from flash_mcp.domain.approval.store import ProposalView
from flash_mcp.domain.evaluation.record import (
    FINAL_STATES,
    EvalRow,
    EvalRowView,
    EvalSummary,
    Evaluation,
    Progress,
    Sampling,
)
from flash_mcp.loop import evaluate, evaluate_baseline, runs, waiting

TEXT_LIMIT = 1500
ROWS_DEFAULT, ROWS_MAX = 20, 200
LATEST_SCANNED = 200  # a proposal page looks for its environment among the newest evaluations


class EvalSpecView(BaseModel):
    eval_id: str
    target: str
    plane: str
    config: str
    model: str
    adapter: str | None
    environment_id: str
    environment_digest: str
    split: str
    rows: int = Field(description="Rows evaluated (row ids are in the rows pages)")
    sampling: Sampling


class EvaluationReport(BaseModel):
    eval_id: str
    state: str = Field(description="queued, running, done, failed or cancelled")
    progress: Progress = Field(description="answers scored / answers planned (rows x samples_per_row)")
    summary: EvalSummary = Field(
        description="mean_reward and success_rate over scored answers; errored answers are kept out and counted "
        "in share_errored; truncated answers (hit max_tokens) count, and share_truncated says how many"
    )
    spec: EvalSpecView
    error: str | None = None
    notes: list[str] = Field(default_factory=list)
    rows: list[EvalRowView] = Field(description="A page of scored rows with their completions (clipped)")
    rows_offset: int
    next_rows_offset: int | None = Field(description="Pass as rows_offset for the next page; null at the end")
    next: list[str] = Field(description="What to do next")


class EvaluateReport(EvaluationReport):
    """evaluate's answer: the evaluation it started; or, on the flash plane with target='base', the baseline run
    it launched (baseline_run) or proposed (proposal, approve_command) instead, with the call to make next."""

    eval_id: str | None = Field(default=None, description="The evaluation started; null for a flash baseline")
    progress: Progress | None = None
    summary: EvalSummary | None = None
    spec: EvalSpecView | None = None
    rows: list[EvalRowView] = Field(default_factory=list)
    rows_offset: int = 0
    next_rows_offset: int | None = None
    baseline_run: str | None = Field(
        default=None, description="Flash target='base': the one-step lr-1e-9 run whose RUN/final is the baseline"
    )
    proposal: ProposalView | None = Field(default=None, description="Flash target='base': the baseline run waiting")
    approve_command: str | None = Field(default=None, description="What the human runs to approve the proposal")
    quote_usd: float | None = Field(default=None, description="Flash target='base': the baseline run's quote")


class EvaluationLine(BaseModel):
    eval_id: str
    target: str
    state: str
    split: str
    progress: Progress
    mean_reward: float | None
    success_rate: float | None
    created_at: float
    error: str | None = None


class EvaluationPage(BaseModel):
    evaluations: list[EvaluationLine]
    total: int
    next_cursor: str | None


async def get_evaluation(
    home: Path, eval_id: str, wait_s: float, rows_offset: int, rows_limit: int, only: str,
    until: waiting.EvalUntil = "state",
) -> EvaluationReport:  # fmt: skip
    """The evaluation once it moved as asked (or at the deadline), with a page of its rows."""
    await waiting.wait_for_evaluation(home, eval_id, wait_s, until)
    evaluation = await anyio.to_thread.run_sync(evaluate.read_evaluation, home, eval_id)
    return report(evaluation, rows_offset, rows_limit, only)


def list_evaluations(home: Path, limit: int, cursor: str | None) -> EvaluationPage:
    """A page of evaluations, newest first; `cursor` is the previous page's next_cursor."""
    offset = runs.page_offset(cursor, "list_evaluations")
    page, total = evaluate.list_evaluations(home, limit, offset)
    following = offset + len(page)
    return EvaluationPage(
        evaluations=[_line(e) for e in page], total=total, next_cursor=str(following) if following < total else None
    )


def latest_for_environment(home: Path, environment_id: str, digest: str | None) -> EvaluationLine | None:
    """The newest evaluation of this environment (the pushed digest when one is given), or None: what a
    proposal's reviewer sees as its latest rehearsal."""
    page, _ = evaluate.list_evaluations(home, LATEST_SCANNED, 0)
    mine = [e for e in page if e.spec.environment_id == environment_id
            and (digest is None or e.spec.environment_digest == digest)]  # fmt: skip
    return _line(max(mine, key=lambda e: e.spec.created_at)) if mine else None


def started(evaluation: Evaluation) -> EvaluateReport:
    """evaluate's answer for an evaluation it started."""
    return EvaluateReport(**report(evaluation, 0, 0).model_dump())


def cancel_evaluation(home: Path, eval_id: str) -> EvaluationReport:
    return report(evaluate.cancel_evaluation(home, eval_id), 0, 0)


def evaluation_json(home: Path, eval_id: str) -> str:
    """The flash://evals/{eval_id} resource: state, summary and the first rows."""
    return report(evaluate.read_evaluation(home, eval_id), 0, ROWS_DEFAULT).model_dump_json(indent=1)


def report(evaluation: Evaluation, offset: int, limit: int, only: str = "all") -> EvaluationReport:
    rows = filtered(evaluation.rows, only)
    page = [_clip(row) for row in rows[offset : offset + limit]]
    end = offset + len(page)
    spec = evaluation.spec
    view = EvalSpecView(
        **spec.model_dump(exclude={"row_ids", "created_at", "environment_params"}), rows=len(spec.row_ids)
    )
    return EvaluationReport(
        eval_id=spec.eval_id, state=evaluation.state, progress=evaluation.progress, summary=evaluation.summary,
        spec=view, error=evaluation.error, notes=evaluation.notes, rows=page, rows_offset=offset,
        next_rows_offset=end if end < len(rows) and limit else None, next=_next(evaluation),
    )  # fmt: skip


def baseline_report(baseline: evaluate_baseline.Baseline) -> EvaluateReport:
    return EvaluateReport(
        state=baseline.state, baseline_run=baseline.run_id, proposal=baseline.proposal,
        approve_command=baseline.approve_command, quote_usd=baseline.quote_usd, notes=[baseline.why],
        next=baseline.next,
    )  # fmt: skip


def filtered(rows: list[EvalRow], only: str) -> list[EvalRow]:
    if only == "errored":
        return [r for r in rows if r.errored]
    if only == "truncated":
        return [r for r in rows if r.truncated]
    if only == "failed":
        best = max((r.score for r in rows if r.score is not None), default=None)
        return [r for r in rows if r.errored or r.success is False or (r.score is not None and r.score < (best or 0))]
    if only != "all":
        raise UserError(f"only={only!r}: use all, failed, errored or truncated")
    return rows


def _clip(row: EvalRow) -> EvalRowView:
    """The row as shown: prompt and completion clipped, the recorded turns (the replay's) left out."""
    data: dict[str, Any] = row.model_dump(exclude={"turns"})
    for key in ("prompt", "completion"):
        if isinstance(data[key], str):
            data[key] = clip(data[key], TEXT_LIMIT)
    return EvalRowView(**data)


def _line(evaluation: Evaluation) -> EvaluationLine:
    spec = evaluation.spec
    return EvaluationLine(
        eval_id=spec.eval_id, target=spec.target, state=evaluation.state, split=spec.split,
        progress=evaluation.progress, mean_reward=evaluation.summary.mean_reward,
        success_rate=evaluation.summary.success_rate, created_at=spec.created_at, error=evaluation.error,
    )  # fmt: skip


def _next(evaluation: Evaluation) -> list[str]:
    eval_id = evaluation.spec.eval_id
    if evaluation.state not in FINAL_STATES:
        return [f"get_evaluation('{eval_id}', wait_s=60) to wait for it"]
    if evaluation.state == "failed":
        return ["read the error; fix the environment or the target and evaluate again"]
    return [
        f"get_evaluation('{eval_id}', only='failed') for the rows it got wrong",
        "evaluate the other side (base or a checkpoint) with the same split, max_rows and sampling to compare",
    ]
