"""Run tools: push an environment, dry-run and cost a config, launch, read and cancel runs.

Each tool is built by a small factory over `Deps` and calls one use case in `flash_mcp.loop`.
No `from __future__ import annotations` here: the resolvers are closures that the SDK must see
as live objects in `Resolve(...)`, not as strings to evaluate later.
"""

import functools
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.resolve import AcceptedElicitation
from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.loop import approvals, cancel, launch, offline, push, quote, runs
from flash_mcp.loop.approvals import ProposalList
from flash_mcp.loop.gate import Gate, Launch
from flash_mcp.loop.launch import LaunchReport
from flash_mcp.loop.push import PushReport
from flash_mcp.loop.quote import CostReport, DryRunReport
from flash_mcp.loop.runs import CheckpointList, MetricsReport, RunPage, RunReport, SampleList
from flash_mcp.loop.waiting import RunUntil
from flash_mcp.planes import capabilities_of
from flash_mcp.planes.base import Identity, LogWindow, PlaneUnavailable
from flash_mcp.sandbox import sandbox_status
from flash_mcp.surface.server.planes import PlaneChoice, Planes
from flash_mcp.surface.server.registry import add_tool, can_elicit, client_info, translate_errors

ConfigPath = Annotated[str, Field(description="Workspace-relative, e.g. 'configs/sft.toml'")]
Overrides = Annotated[dict[str, Any], Field(description="Dotted-key overrides, as `flash train --set`")]
RunId = Annotated[str, Field(description="From list_runs or launch_training")]
LOG_DEFAULT, LOG_MAX = 8_000, 40_000
PREPARED_KEPT = 64


class ApproveLaunch(BaseModel):
    approve: bool = Field(description="Launch this run and pay its quote?")


class ConfirmCancel(BaseModel):
    cancel: bool = Field(description="Cancel the run? Checkpoints already saved are kept.")


@dataclass
class Deps:
    """What the run tools share: the settings and the planes (each built on first use, with its spend gate)."""

    settings: ServerSettings
    plane: Planes

    @property
    def gate(self) -> Gate:
        return self.plane.gate()


def register(server: MCPServer, settings: ServerSettings, plane: Planes) -> None:
    deps = Deps(settings, plane)
    proposal = _proposal_resource(deps)
    server.resource(
        "flash://proposals/{proposal_id}", name="proposal", description=proposal.__doc__, mime_type="application/json"
    )(translate_errors(proposal, ResourceError))
    remote = True  # any of these may reach Flash (an outside service) through its `plane` argument
    read = {"read_only": True, "destructive": False, "idempotent": True, "open_world": remote}
    add_tool(server, _list_proposals(deps), title="List launch proposals", **{**read, "open_world": False})
    add_tool(server, _whoami(deps), title="Who pays on this plane", **read)
    add_tool(server, _push_environment(deps), title="Push an environment", read_only=False, destructive=False,
             idempotent=True, open_world=remote)  # fmt: skip
    add_tool(server, _dry_run(deps), title="Dry-run a config", **read)
    add_tool(server, _estimate_cost(deps), title="Estimate a run's cost", **read)
    add_tool(server, _launch_training(deps), title="Launch training", read_only=False, destructive=False,
             idempotent=False, open_world=remote)  # fmt: skip
    add_tool(server, _list_runs(deps), title="List runs", **read)
    add_tool(server, _get_run(deps), title="Get a run", **read)
    add_tool(server, _read_run_logs(deps), title="Read run logs", **read)
    add_tool(server, _get_run_metrics(deps), title="Get run metrics", **read)
    add_tool(server, _get_run_samples(deps), title="Get run samples", **read)
    add_tool(server, _list_checkpoints(deps), title="List checkpoints", **read)
    add_tool(server, _cancel_run(deps), title="Cancel a run", read_only=False, destructive=True, idempotent=True,
             open_world=remote)  # fmt: skip


def _proposal_resource(deps: Deps):
    def proposal_resource(proposal_id: str) -> str:
        """A launch proposal: what would run, the quote, the digests it was made against, and its status."""
        return approvals.proposal_json(deps.gate, proposal_id)

    return proposal_resource


def _push_environment(deps: Deps):
    def push_environment(
        name: Annotated[str, Field(description="Environment name, e.g. 'math-env'")],
        directory: Annotated[
            str, Field(description="Folder with environment.py, or one .py file (single-file push)")
        ] = ".",
        project: Annotated[str | None, Field(description="Project UUID (default: the configs' project)")] = None,
        update_configs: Annotated[bool, Field(description="Write the new id into the project's configs")] = True,
        plane: PlaneChoice = None,
    ) -> PushReport:
        """Package the environment as `flash env push` does and push it; the new id goes into every project
        config that names no other environment."""
        on = deps.plane.bind(plane)
        return push.push_environment(on.settings.workspace, on.plane, directory, name, project, update_configs)

    return push_environment


def _dry_run(deps: Deps):
    def dry_run(config: ConfigPath, overrides: Overrides = {}, plane: PlaneChoice = None) -> DryRunReport:  # noqa: B006
        """Plan a config's run without starting it: rows after max_examples, steps, the model that would
        train, expected wall time and the quote."""
        on = deps.plane.bind(plane)
        return quote.dry_run(on.settings, on.plane, config, overrides)

    return dry_run


def _estimate_cost(deps: Deps):
    def estimate_cost(config: ConfigPath, overrides: Overrides = {}, plane: PlaneChoice = None) -> CostReport:  # noqa: B006
        """What a config costs on the current plane, and Flash's own offline estimate for running it hosted."""
        on = deps.plane.bind(plane)
        return quote.estimate_cost(on.settings, on.plane, config, overrides)

    return estimate_cost


def _launch_training(deps: Deps):
    # The resolver's launch, for the body of the same call. A call that ends in an elicitation request
    # (modern era) never reaches the body, so only the newest few are kept.
    prepared: dict[Any, Launch | LaunchReport] = {}

    async def approve_launch(
        config: str, ctx: Context, overrides: dict[str, Any] | None = None, plane: str | None = None
    ) -> ApproveLaunch | Elicit[ApproveLaunch]:
        try:
            on = deps.plane.bind(plane)
        except PlaneUnavailable as why:  # not logged in: a proposal the human approves once they are
            settings, capabilities = deps.plane.settings_for(plane), capabilities_of(deps.plane.name(plane))
            offer = functools.partial(offline.propose, settings, capabilities, config, overrides or {},
                                      client_info(ctx), str(why))  # fmt: skip
            prepared[ctx.request_id] = await anyio.to_thread.run_sync(offer)
            return ApproveLaunch(approve=False)
        prepare = functools.partial(launch.prepare_launch, on.settings, on.plane, on.gate)
        ready = await anyio.to_thread.run_sync(prepare, config, overrides or {})
        prepared[ctx.request_id] = ready
        while len(prepared) > PREPARED_KEPT:
            prepared.pop(next(iter(prepared)))
        if ready.approval_reason is None or not can_elicit(ctx):
            return ApproveLaunch(approve=False)
        question = await anyio.to_thread.run_sync(launch.approval_question, on.gate, ready)  # state-dir reads
        return Elicit(question, ApproveLaunch)

    async def launch_training(
        config: ConfigPath,
        decision: Annotated[ElicitationResult[ApproveLaunch], Resolve(translate_errors(approve_launch))],
        ctx: Context,
        overrides: Overrides = {},  # noqa: B006
        plane: PlaneChoice = None,
    ) -> LaunchReport:
        """Start a training run after a preflight (valid config, no check_project errors, environment unchanged
        since its push), a quote and the budgets. A paid run needs the human: asked in the client when it can
        ask, otherwise a proposal waits for `flash-mcp approve` (not logged in to Flash: proposed offline with the
        package digest and Flash's offline estimate). Returns at once."""
        ready, can_ask = prepared.pop(ctx.request_id), can_elicit(ctx)
        if isinstance(ready, LaunchReport):
            return ready
        approved = isinstance(decision, AcceptedElicitation) and decision.data.approve
        decide = functools.partial(launch.decide, can_ask=can_ask, approved=approved, client=client_info(ctx))
        return await anyio.to_thread.run_sync(decide, deps.plane.bind(plane).gate, ready)

    return launch_training


def _list_proposals(deps: Deps):
    def list_proposals(
        status: Annotated[str | None, Field(description="pending, submitted, denied, refused or approved")] = None,
    ) -> ProposalList:
        """Launches waiting for (or given) a human's decision. Read-only: the human approves outside MCP,
        with `flash-mcp approve ID`."""
        return approvals.list_proposals(deps.gate, status)

    return list_proposals


def _whoami(deps: Deps):
    def whoami(plane: PlaneChoice = None) -> Identity:
        """The plane this server acts on and as whom (on Flash, the org that pays for runs), and the sandbox
        agent-written code runs in (detail.sandbox)."""
        identity = deps.plane.bind(plane).plane.identity()
        identity.detail["sandbox"] = sandbox_status(deps.settings.home)
        return identity

    return whoami


def _list_runs(deps: Deps):
    def list_runs(
        state: Annotated[str | None, Field(description="Only runs in this state")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page")] = None,
        plane: PlaneChoice = None,
    ) -> RunPage:
        """Runs on the current plane, newest first, a page at a time."""
        return runs.list_runs(deps.plane.bind(plane).plane, state, limit, cursor)

    return list_runs


def _get_run(deps: Deps):
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
        on = await anyio.to_thread.run_sync(deps.plane.bind, plane)
        return await runs.get_run(on.plane, on.gate.spend, on.settings.home, run_id, wait_s, until)

    return get_run


def _read_run_logs(deps: Deps):
    def read_run_logs(
        run_id: RunId,
        offset: Annotated[int, Field(ge=0, description="Byte offset to read from")] = 0,
        max_bytes: Annotated[int, Field(ge=1, le=LOG_MAX)] = LOG_DEFAULT,
        plane: PlaneChoice = None,
    ) -> LogWindow:
        """A window of the run's log by byte offset; continue from next_offset."""
        return runs.read_logs(deps.plane.bind(plane).plane, run_id, offset, max_bytes)

    return read_run_logs


def _get_run_metrics(deps: Deps):
    def get_run_metrics(
        run_id: RunId,
        names: Annotated[list[str] | None, Field(description="Only these metrics, e.g. ['loss', 'reward']")] = None,
        since_step: Annotated[int, Field(ge=0)] = 0,
        plane: PlaneChoice = None,
    ) -> MetricsReport:
        """Metric series in Flash's names (loss, reward, reward_std, kl, …) with a trend per metric."""
        return runs.metrics(deps.plane.bind(plane).plane, run_id, names, since_step)

    return get_run_metrics


def _get_run_samples(deps: Deps):
    def get_run_samples(
        run_id: RunId,
        step: Annotated[int | None, Field(description="Only this step's samples")] = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        plane: PlaneChoice = None,
    ) -> SampleList:
        """Sampled rollouts the run recorded: prompt, completion, reward and reason (the most recent `limit`)."""
        return runs.samples(deps.plane.bind(plane).plane, run_id, step, limit)

    return get_run_samples


def _list_checkpoints(deps: Deps):
    def list_checkpoints(run_id: RunId, plane: PlaneChoice = None) -> CheckpointList:
        """LoRA adapters the run saved, as RUN/step-N and RUN/final."""
        return runs.checkpoints(deps.plane.bind(plane).plane, run_id)

    return list_checkpoints


def _cancel_run(deps: Deps):
    async def confirm_cancel(
        run_id: str, ctx: Context, plane: str | None = None
    ) -> ConfirmCancel | Elicit[ConfirmCancel]:
        if not can_elicit(ctx):
            return ConfirmCancel(cancel=True)
        question = await anyio.to_thread.run_sync(cancel.cancel_question, deps.plane(plane), run_id)
        return Elicit(question, ConfirmCancel)

    async def cancel_run(
        run_id: RunId,
        decision: Annotated[ElicitationResult[ConfirmCancel], Resolve(confirm_cancel)],
        plane: PlaneChoice = None,
    ) -> RunReport:
        """Cancel a run; the human confirms when the client can ask. Saved checkpoints survive."""
        confirmed = isinstance(decision, AcceptedElicitation) and decision.data.cancel
        if not confirmed:
            raise UserError(f"not cancelled: the human declined; {run_id} keeps running")
        return await anyio.to_thread.run_sync(cancel.cancel_run, deps.plane(plane), run_id)

    return cancel_run
