"""Evaluation tools: evaluate a target on held-out rows, read (long-poll, paged rows), list, cancel; and
the flash://evals/{eval_id} resource. Declarations only: the work is in flash_mcp/loop/evaluate_flash.py (starting,
the baseline) and evaluations.py (reading). No `from __future__ import annotations`: the resolver must be a live
object in `Resolve(...)`."""

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
from flash_mcp.loop import evaluate_flash, evaluations
from flash_mcp.loop.evaluate import EvalRequest
from flash_mcp.loop.evaluations import ROWS_DEFAULT, ROWS_MAX, EvaluateReport, EvaluationPage, EvaluationReport
from flash_mcp.loop.waiting import EvalUntil
from flash_mcp.surface.server.planes import PlaneChoice, Planes
from flash_mcp.surface.server.registry import READ, add_tool, can_elicit, client_info, translate_errors

EvalId = Annotated[str, Field(description="From evaluate or list_evaluations")]


class ApproveDeployment(BaseModel):
    approve: bool = Field(
        description="Approve the spend described (deploying a checkpoint, or the one-step baseline run)"
    )


def _request(config: str, target: str, split: str, suite: str | None, max_rows: int | None, temperature: float,
             max_tokens: int, samples_per_row: int, seed: int) -> EvalRequest:  # fmt: skip
    sampling = Sampling(temperature=temperature, max_tokens=max_tokens, samples_per_row=samples_per_row, seed=seed)
    return EvalRequest(config=config, target=target, split=split, suite=suite, max_rows=max_rows, sampling=sampling)


def register(server: MCPServer, settings: ServerSettings, planes: Planes) -> None:
    home = settings.home

    async def approve_deployment(
        config: str, ctx: Context, target: str = "base", split: str = "test", suite: str | None = None,
        max_rows: int | None = None, temperature: float = 0.0, max_tokens: int = 64, samples_per_row: int = 1,
        seed: int = 0, plane: str | None = None,
    ) -> ApproveDeployment | Elicit[ApproveDeployment]:  # fmt: skip
        """Ask the human before an evaluation spends (a Flash deployment bills per token at an unknown price; the
        baseline run is a paid launch), when the client can ask and nothing approved covers it."""
        if not can_elicit(ctx):
            return ApproveDeployment(approve=False)
        request = _request(config, target, split, suite, max_rows, temperature, max_tokens, samples_per_row, seed)
        on = await anyio.to_thread.run_sync(planes.bind, plane)
        ask = functools.partial(evaluate_flash.approval_question, on.settings, on.plane, on.gate)
        question = await anyio.to_thread.run_sync(ask, request)
        return ApproveDeployment(approve=False) if question is None else Elicit(question, ApproveDeployment)

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
        request = _request(config, target, split, suite, max_rows, temperature, max_tokens, samples_per_row, seed)
        approved = isinstance(decision, AcceptedElicitation) and decision.data.approve
        on = await anyio.to_thread.run_sync(planes.bind, plane)
        start = functools.partial(evaluate_flash.evaluate, on.settings, on.plane, on.gate, can_ask=can_elicit(ctx),
                                  approved=approved, client=client_info(ctx))  # fmt: skip
        return await anyio.to_thread.run_sync(start, request)

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
    add_tool(server, evaluate, title="Evaluate a model", read_only=False, destructive=False, idempotent=False,
             open_world=True)  # fmt: skip  # plane="flash" deploys
    add_tool(server, get_evaluation, title="Get an evaluation", **READ)
    add_tool(server, list_evaluations, title="List evaluations", **READ)
    add_tool(server, cancel_evaluation, title="Cancel an evaluation", read_only=False, destructive=True,
             idempotent=True, open_world=True)  # fmt: skip  # undeploys a Flash evaluation
