"""Evaluation tools: evaluate a target on held-out rows, read (long-poll, paged rows), list, cancel; and
the flash://evals/{eval_id} resource. Declarations only: the work is in flash_mcp/loop/evaluate.py (and
evaluate_flash.py). No `from __future__ import annotations`: the resolver must be a live object in `Resolve(...)`."""

import functools
import time
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.resolve import AcceptedElicitation
from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.approval.store import ProposalView
from flash_mcp.domain.evaluation.record import FINAL_STATES, EvalRow, EvalSummary, Evaluation, Progress, Sampling
from flash_mcp.loop import evaluate as use_case
from flash_mcp.loop import evaluate_baseline, evaluate_flash
from flash_mcp.loop.planes import PlaneChoice, Planes
from flash_mcp.planes.base import RunView
from flash_mcp.surface.registry import add_tool, can_elicit, client_info, translate_errors

EvalId = Annotated[str, Field(description="An evaluation id from evaluate or list_evaluations")]
POLL_SECONDS = 0.5
TEXT_LIMIT = 1500
ROWS_DEFAULT, ROWS_MAX = 20, 200


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
    rows: list[EvalRow] = Field(description="A page of scored rows with their completions (clipped)")
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
    rows: list[EvalRow] = Field(default_factory=list)
    rows_offset: int = 0
    next_rows_offset: int | None = None
    baseline_run: str | None = Field(
        default=None, description="Flash target='base': the one-step lr-1e-9 run whose RUN/final is the baseline"
    )
    proposal: ProposalView | None = Field(default=None, description="Flash target='base': the baseline run waiting")
    approve_command: str | None = Field(default=None, description="What the human runs to approve the proposal")
    quote_usd: float | None = Field(default=None, description="Flash target='base': the baseline run's quote")


class ApproveDeployment(BaseModel):
    approve: bool = Field(
        description="Approve the spend described (deploying a checkpoint, or the one-step baseline run)"
    )


class EvaluationLine(BaseModel):
    eval_id: str
    target: str
    state: str
    split: str
    progress: Progress
    mean_reward: float | None
    success_rate: float | None
    created_at: float


class EvaluationPage(BaseModel):
    evaluations: list[EvaluationLine]
    total: int
    next_cursor: str | None


def register(server: MCPServer, settings: ServerSettings, planes: Planes) -> None:
    home = settings.home

    async def approve_deployment(
        config: str, ctx: Context, target: str = "base", split: str = "test", suite: str | None = None,
        max_rows: int | None = None, temperature: float = 0.0, max_tokens: int = 64, samples_per_row: int = 1,
        seed: int = 0, plane: str | None = None,
    ) -> ApproveDeployment | Elicit[ApproveDeployment]:  # fmt: skip
        """Flash only: a deployment bills per token at an unknown price, so the human is asked when the client can
        ask and no approved proposal covers it. Refusals (invalid config, base target, Flash's dry run) surface
        here, before anyone is asked."""
        if planes.name(plane) != "flash" or not can_elicit(ctx):
            return ApproveDeployment(approve=False)
        on = await anyio.to_thread.run_sync(planes.bind, plane)
        sampling = Sampling(temperature=temperature, max_tokens=max_tokens, samples_per_row=samples_per_row, seed=seed)
        request = use_case.EvalRequest(config=config, target=target, split=split, suite=suite, max_rows=max_rows,
                                       sampling=sampling)  # fmt: skip
        if evaluate_baseline.is_baseline(on.plane, request):  # the baseline run: launch_training's gate
            prepare = functools.partial(evaluate_baseline.prepare, on.settings, on.plane, on.gate)
            launch = await anyio.to_thread.run_sync(prepare, request)
            if launch.approval_reason is None or isinstance(on.gate.existing(launch), RunView):  # no question
                return ApproveDeployment(approve=False)
            return Elicit(
                await anyio.to_thread.run_sync(evaluate_baseline.question, on.gate, launch), ApproveDeployment
            )
        ready = await anyio.to_thread.run_sync(evaluate_flash.plan, on.settings, on.plane, request)
        if await anyio.to_thread.run_sync(evaluate_flash.approved_already, on.gate, ready):
            return ApproveDeployment(approve=False)
        return Elicit(ready.question(), ApproveDeployment)

    async def evaluate(
        decision: Annotated[ElicitationResult[ApproveDeployment], Resolve(translate_errors(approve_deployment))],
        ctx: Context,
        config: Annotated[
            str, Field(description="Config for the model, environment and params, e.g. 'p/configs/sft.toml'")
        ],
        target: Annotated[
            str, Field(description='"base" (the config\'s model) or "RUN/final" / "RUN/step-N"')
        ] = "base",
        split: Annotated[
            str, Field(description="Held-out rows: dataset/<split>.jsonl of the pushed environment")
        ] = "test",
        suite: Annotated[
            str | None, Field(description="An evaluations.py suite name: its cases instead of the split's rows")
        ] = None,
        max_rows: Annotated[
            int | None, Field(ge=1, le=100_000, description="Only the first N rows of the split (or cases)")
        ] = None,
        temperature: Annotated[float, Field(ge=0, le=2, description="0 = greedy (deterministic)")] = 0.0,
        max_tokens: Annotated[int, Field(ge=1, le=4096, description="Token ceiling per answer")] = 64,
        samples_per_row: Annotated[
            int, Field(ge=1, le=16, description="Answers per row (use > 1 with temperature > 0)")
        ] = 1,
        seed: Annotated[int, Field(description="Sampling seed")] = 0,
        plane: PlaneChoice = None,
    ) -> EvaluateReport:
        """Score one model target on held-out rows with the environment's own reward, in a job of its own; returns
        the evaluation id at once. Read it with get_evaluation(eval_id, wait_s=...) or flash://evals/{eval_id}.
        Compare two evaluations only when they share rows, environment digest and sampling (incl. max_tokens).
        On the flash plane the checkpoint is deployed (billed per token, no price: the human approves, in the
        client or with `flash-mcp approve`), served through /chat, scored here and undeployed at the end. Flash
        has no base-model endpoint: target='base' there launches the baseline instead, a one-step run at
        learning_rate 1e-9 (gated like launch_training), and returns baseline_run (or the proposal) and the exact
        evaluate call to make on its RUN/final once it is done."""
        sampling = Sampling(temperature=temperature, max_tokens=max_tokens, samples_per_row=samples_per_row, seed=seed)
        request = use_case.EvalRequest(
            config=config, target=target, split=split, suite=suite, max_rows=max_rows, sampling=sampling
        )
        approved = isinstance(decision, AcceptedElicitation) and decision.data.approve
        on = await anyio.to_thread.run_sync(planes.bind, plane)
        if evaluate_baseline.is_baseline(on.plane, request):
            baseline = functools.partial(
                evaluate_baseline.launch_baseline, on.settings, on.plane, on.gate,
                can_ask=can_elicit(ctx), approved=approved, client=client_info(ctx),
            )  # fmt: skip
            return _baseline_report(await anyio.to_thread.run_sync(baseline, request))
        start = functools.partial(
            evaluate_flash.start_evaluation, on.settings, on.plane, on.gate if on.plane.name == "flash" else None,
            can_ask=can_elicit(ctx), approved=approved, client=client_info(ctx),
        )  # fmt: skip
        return EvaluateReport(**_report(await anyio.to_thread.run_sync(start, request), 0, 0).model_dump())

    async def get_evaluation(
        eval_id: EvalId,
        wait_s: Annotated[float, Field(ge=0, le=300, description="Wait up to this long for progress or the end")] = 0,
        rows_offset: Annotated[int, Field(ge=0, description="First row of the page")] = 0,
        rows_limit: Annotated[
            int, Field(ge=0, le=ROWS_MAX, description="Rows per page (0 = summary only)")
        ] = ROWS_DEFAULT,
        only: Annotated[
            str, Field(description="all, failed (score below the best seen or errored), errored, truncated")
        ] = "all",
    ) -> EvaluationReport:
        """An evaluation's state, progress and summary (mean reward, success rate, share truncated/errored, tokens
        per answer), and a page of scored rows with their completions."""
        deadline = time.monotonic() + wait_s
        first = now = await anyio.to_thread.run_sync(use_case.progress_of, home, eval_id)
        while now[0] not in FINAL_STATES and now == first and time.monotonic() < deadline:
            await anyio.sleep(POLL_SECONDS)
            now = await anyio.to_thread.run_sync(use_case.progress_of, home, eval_id)
        evaluation = await anyio.to_thread.run_sync(use_case.read_evaluation, home, eval_id)
        return _report(evaluation, rows_offset, rows_limit, only)

    def list_evaluations(
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page")] = None,
    ) -> EvaluationPage:
        """Evaluations on this machine, newest first, with their mean reward and success rate."""
        offset = int(cursor) if cursor and cursor.isdigit() else 0
        page, total = use_case.list_evaluations(home, limit, offset)
        following = offset + len(page)
        return EvaluationPage(
            evaluations=[_line(e) for e in page], total=total, next_cursor=str(following) if following < total else None
        )

    def cancel_evaluation(eval_id: EvalId) -> EvaluationReport:
        """Stop an evaluation at its next batch; rows already scored are kept (and undeploys what it deployed)."""
        return _report(use_case.cancel_evaluation(home, eval_id), 0, 0)

    def evaluation_resource(eval_id: str) -> str:
        """An evaluation: state, summary and the first rows, as JSON."""
        return _report(use_case.read_evaluation(home, eval_id), 0, ROWS_DEFAULT).model_dump_json(indent=1)

    server.resource(
        "flash://evals/{eval_id}", name="evaluation", description=evaluation_resource.__doc__,
        mime_type="application/json",
    )(translate_errors(evaluation_resource, ResourceError))  # fmt: skip
    read = {"read_only": True, "destructive": False, "idempotent": True, "open_world": False}
    add_tool(server, evaluate, title="Evaluate a model", read_only=False, destructive=False, idempotent=False,
             open_world=True)  # fmt: skip  # plane="flash" deploys
    add_tool(server, get_evaluation, title="Get an evaluation", **read)
    add_tool(server, list_evaluations, title="List evaluations", **read)
    add_tool(server, cancel_evaluation, title="Cancel an evaluation", read_only=False, destructive=True,
             idempotent=True, open_world=True)  # fmt: skip  # undeploys a Flash evaluation


def _report(evaluation: Evaluation, offset: int, limit: int, only: str = "all") -> EvaluationReport:
    rows = _filtered(evaluation.rows, only)
    page = [_clip(row) for row in rows[offset : offset + limit]]
    end = offset + len(page)
    spec = evaluation.spec
    view = EvalSpecView(**spec.model_dump(exclude={"row_ids", "created_at"}), rows=len(spec.row_ids))
    return EvaluationReport(
        eval_id=spec.eval_id, state=evaluation.state, progress=evaluation.progress, summary=evaluation.summary,
        spec=view, error=evaluation.error, notes=evaluation.notes, rows=page, rows_offset=offset,
        next_rows_offset=end if end < len(rows) and limit else None, next=_next(evaluation),
    )  # fmt: skip


def _baseline_report(baseline: evaluate_baseline.Baseline) -> EvaluateReport:
    return EvaluateReport(
        state=baseline.state, baseline_run=baseline.run_id, proposal=baseline.proposal,
        approve_command=baseline.approve_command, quote_usd=baseline.quote_usd, notes=[baseline.why],
        next=baseline.next,
    )  # fmt: skip


def _filtered(rows: list[EvalRow], only: str) -> list[EvalRow]:
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


def _clip(row: EvalRow) -> EvalRow:
    data: dict[str, Any] = row.model_dump()
    for key in ("prompt", "completion"):
        value = data[key]
        if isinstance(value, str) and len(value) > TEXT_LIMIT:
            data[key] = value[:TEXT_LIMIT] + "…"
    return EvalRow(**data)


def _line(evaluation: Evaluation) -> EvaluationLine:
    spec = evaluation.spec
    return EvaluationLine(
        eval_id=spec.eval_id, target=spec.target, state=evaluation.state, split=spec.split,
        progress=evaluation.progress, mean_reward=evaluation.summary.mean_reward,
        success_rate=evaluation.summary.success_rate, created_at=spec.created_at,
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
