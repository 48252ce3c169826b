"""Run tools: list and read runs (state, logs, metrics, samples, checkpoints) and cancel one. Each tool calls
one use case in `flash_mcp.loop` (or one act of the plane's protocol).

No `from __future__ import annotations` here: the resolver is a closure that the SDK must see as a live object
in `Resolve(...)`, not as a string to evaluate later.
"""

from typing import Annotated

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.resolve import AcceptedElicitation
from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.loop import runs
from flash_mcp.loop.runs import CheckpointList, MetricsReport, RunPage, RunReport, SampleList
from flash_mcp.loop.waiting import RunUntil
from flash_mcp.planes.base import LogWindow
from flash_mcp.surface.apps import RUN_UI
from flash_mcp.surface.server.planes import PlaneChoice, Planes
from flash_mcp.surface.server.registry import READ, add_tool, can_elicit

RunId = Annotated[str, Field(description="From list_runs or launch_training")]
LOG_DEFAULT, LOG_MAX = 8_000, 40_000
REMOTE = True  # any of these may reach Flash (an outside service) through its `plane` argument


class ConfirmCancel(BaseModel):
    cancel: bool = Field(description="Cancel the run? Checkpoints already saved are kept.")


def register(server: MCPServer, settings: ServerSettings, planes: Planes) -> None:
    def list_runs(
        state: Annotated[str | None, Field(description="Only runs in this state")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page")] = None,
        plane: PlaneChoice = None,
    ) -> RunPage:
        """Runs on the current plane, newest first, a page at a time."""
        return runs.list_runs(planes(plane), state, limit, cursor)

    async def get_run(
        run_id: RunId,
        wait_s: Annotated[float, Field(ge=0, le=300, description="Seconds to wait for what `until` names")] = 0,
        until: Annotated[
            RunUntil, Field(description="With wait_s: return on a new state (or the end), step or metrics")
        ] = "state",
        plane: PlaneChoice = None,
    ) -> RunReport:
        """A run's state, progress, latest metrics, cost, heartbeat age, warnings (e.g. training vs held-out
        divergence) and what to read next; for an approved run, `spend`: approved amount, cost so far, overrun."""
        on = await anyio.to_thread.run_sync(planes.bind, plane)
        return await runs.get_run(on.plane, on.gate.spend, on.settings.home, run_id, wait_s, until)

    def read_run_logs(
        run_id: RunId,
        offset: Annotated[int, Field(ge=0, description="Byte offset to read from")] = 0,
        max_bytes: Annotated[int, Field(ge=1, le=LOG_MAX)] = LOG_DEFAULT,
        plane: PlaneChoice = None,
    ) -> LogWindow:
        """A window of the run's log by byte offset; continue from next_offset."""
        return planes(plane).read_logs(run_id, offset, max_bytes)

    def get_run_metrics(
        run_id: RunId,
        names: Annotated[list[str] | None, Field(description="Only these metrics, e.g. ['loss', 'reward']")] = None,
        since_step: Annotated[int, Field(ge=0)] = 0,
        plane: PlaneChoice = None,
    ) -> MetricsReport:
        """Metric series in Flash's names (loss, reward, reward_std, kl, …) with a trend per metric."""
        return runs.metrics(planes(plane), run_id, names, since_step)

    def get_run_samples(
        run_id: RunId,
        step: Annotated[int | None, Field(description="Only this step's samples")] = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        plane: PlaneChoice = None,
    ) -> SampleList:
        """Sampled rollouts the run recorded: prompt, completion, reward and reason (the most recent `limit`)."""
        return runs.samples(planes(plane), run_id, step, limit)

    def list_checkpoints(run_id: RunId, plane: PlaneChoice = None) -> CheckpointList:
        """LoRA adapters the run saved, as RUN/step-N and RUN/final."""
        return runs.checkpoints(planes(plane), run_id)

    async def confirm_cancel(
        run_id: str, ctx: Context, plane: str | None = None
    ) -> ConfirmCancel | Elicit[ConfirmCancel]:
        if not can_elicit(ctx):
            return ConfirmCancel(cancel=True)
        question = await anyio.to_thread.run_sync(runs.cancel_question, planes(plane), run_id)
        return Elicit(question, ConfirmCancel)

    async def cancel_run(
        run_id: RunId,
        decision: Annotated[ElicitationResult[ConfirmCancel], Resolve(confirm_cancel)],
        plane: PlaneChoice = None,
    ) -> RunReport:
        """Cancel a run; the human confirms when the client can ask. Saved checkpoints survive."""
        if not (isinstance(decision, AcceptedElicitation) and decision.data.cancel):
            raise UserError(f"not cancelled: the human declined; {run_id} keeps running")
        return await anyio.to_thread.run_sync(runs.cancel_run, planes(plane), run_id)

    add_tool(server, list_runs, title="List runs", **READ, open_world=REMOTE)
    add_tool(server, get_run, title="Get a run", **READ, open_world=REMOTE, ui=RUN_UI)
    add_tool(server, read_run_logs, title="Read run logs", **READ, open_world=REMOTE)
    add_tool(server, get_run_metrics, title="Get run metrics", **READ, open_world=REMOTE)
    add_tool(server, get_run_samples, title="Get run samples", **READ, open_world=REMOTE)
    add_tool(server, list_checkpoints, title="List checkpoints", **READ, open_world=REMOTE)
    add_tool(server, cancel_run, title="Cancel a run", read_only=False, destructive=True, idempotent=True,
             open_world=REMOTE)  # fmt: skip
