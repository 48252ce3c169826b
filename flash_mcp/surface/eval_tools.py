"""Evaluation tools: evaluate a target on held-out rows, read (long-poll, paged rows), list, cancel; and
the flash://evals/{eval_id} resource. Declarations only: the work is in flash_mcp/loop/evaluate.py (and
evaluate_flash.py). No `from __future__ import annotations`: the resolver must be a live object in `Resolve(...)`."""

import functools
from typing import Annotated

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.resolve import AcceptedElicitation
from pydantic import BaseModel, Field

from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.evaluation.record import Sampling
from flash_mcp.loop import evaluate as use_case
from flash_mcp.loop import evaluate_baseline, evaluate_flash, evaluations
from flash_mcp.loop.evaluations import ROWS_DEFAULT, ROWS_MAX, EvaluateReport, EvaluationPage, EvaluationReport
from flash_mcp.loop.waiting import EvalUntil
from flash_mcp.planes import capabilities_of
from flash_mcp.planes.base import RunView
from flash_mcp.surface.server.planes import PlaneChoice, Planes
from flash_mcp.surface.server.registry import add_tool, can_elicit, client_info, translate_errors

EvalId = Annotated[str, Field(description="From evaluate or list_evaluations")]


class ApproveDeployment(BaseModel):
    approve: bool = Field(
        description="Approve the spend described (deploying a checkpoint, or the one-step baseline run)"
    )


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
        if not capabilities_of(planes.name(plane)).serves_checkpoints or not can_elicit(ctx):
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
        if ready is None or await anyio.to_thread.run_sync(evaluate_flash.approved_already, on.gate, ready):
            return ApproveDeployment(approve=False)
        return Elicit(ready.question, ApproveDeployment)

    async def evaluate(
        decision: Annotated[ElicitationResult[ApproveDeployment], Resolve(translate_errors(approve_deployment))],
        ctx: Context,
        config: Annotated[str, Field(description="Config naming the model, environment and params")],
        target: Annotated[
            str, Field(description='"base" (the config\'s model) or "RUN/final" / "RUN/step-N"')
        ] = "base",
        split: Annotated[str, Field(description="Held-out rows: the pushed dataset/<split>.jsonl")] = "test",
        suite: Annotated[str | None, Field(description="evaluations.py suite to run instead of the split")] = None,
        max_rows: Annotated[int | None, Field(ge=1, le=100_000, description="First N rows (or cases) only")] = None,
        temperature: Annotated[float, Field(ge=0, le=2, description="0 = greedy")] = 0.0,
        max_tokens: Annotated[int, Field(ge=1, le=4096, description="Token ceiling per answer")] = 64,
        samples_per_row: Annotated[
            int, Field(ge=1, le=16, description="Answers per row (use > 1 with temperature > 0)")
        ] = 1,
        seed: Annotated[int, Field()] = 0,
        plane: PlaneChoice = None,
    ) -> EvaluateReport:
        """Score a model target on held-out rows with the environment's reward, in a background job; returns
        the eval id at once for get_evaluation(eval_id, wait_s=...). Evaluate both sides of a comparison with
        the same rows and sampling. On flash the checkpoint is deployed (billed per token; the human approves
        in the client or with `flash-mcp approve`), scored and undeployed; target='base' there launches a
        one-step baseline run (gated like launch_training) and returns baseline_run and the evaluate call for
        its RUN/final."""
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
            return evaluations.baseline_report(await anyio.to_thread.run_sync(baseline, request))
        start = functools.partial(
            evaluate_flash.start_evaluation, on.settings, on.plane, on.gate,
            can_ask=can_elicit(ctx), approved=approved, client=client_info(ctx),
        )  # fmt: skip
        return evaluations.started(await anyio.to_thread.run_sync(start, request))

    async def get_evaluation(
        eval_id: EvalId,
        wait_s: Annotated[float, Field(ge=0, le=300, description="Seconds to wait for what `until` names")] = 0,
        rows_offset: Annotated[int, Field(ge=0, description="First row of the page")] = 0,
        rows_limit: Annotated[
            int, Field(ge=0, le=ROWS_MAX, description="Rows per page (0 = summary only)")
        ] = ROWS_DEFAULT,
        only: Annotated[
            str, Field(description="all, failed (below the best score seen, or errored), errored or truncated")
        ] = "all",
        until: Annotated[
            EvalUntil, Field(description="With wait_s: return on a new state (or the end) or new scored answers")
        ] = "state",
    ) -> EvaluationReport:
        """An evaluation's state, progress, summary (mean reward, success rate, share truncated/errored, tokens
        per answer) and a page of scored rows with completions."""
        return await evaluations.get_evaluation(home, eval_id, wait_s, rows_offset, rows_limit, only, until)

    def list_evaluations(
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page")] = None,
    ) -> EvaluationPage:
        """Evaluations on this machine, newest first, with their mean reward and success rate."""
        return evaluations.list_evaluations(home, limit, cursor)

    def cancel_evaluation(eval_id: EvalId) -> EvaluationReport:
        """Stop an evaluation at its next batch; rows already scored are kept (and undeploys what it deployed)."""
        return evaluations.cancel_evaluation(home, eval_id)

    def evaluation_resource(eval_id: str) -> str:
        """An evaluation: state, summary and the first rows, as JSON."""
        return evaluations.evaluation_json(home, eval_id)

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
