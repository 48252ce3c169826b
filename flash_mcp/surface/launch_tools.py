"""Launch tools: who pays, push an environment, dry-run and cost a config, launch, and the proposals a human
approves (with the flash://proposals/{id} resource). Each tool calls one use case in `flash_mcp.loop`.

No `from __future__ import annotations` here: the resolver is a closure that the SDK must see as a live object
in `Resolve(...)`, not as a string to evaluate later.
"""

import functools
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.resolve import AcceptedElicitation
from pydantic import BaseModel, Field

from flash_mcp.core.settings import ServerSettings
from flash_mcp.loop import approvals, launch, offline, push, quote
from flash_mcp.loop.approvals import ProposalList
from flash_mcp.loop.gate import Launch
from flash_mcp.loop.launch import LaunchReport
from flash_mcp.loop.push import PushReport
from flash_mcp.loop.quote import CostReport, DryRunReport
from flash_mcp.planes import capabilities_of
from flash_mcp.planes.base import Identity, PlaneUnavailable
from flash_mcp.sandbox import sandbox_status
from flash_mcp.surface.apps import PROPOSAL_UI
from flash_mcp.surface.server.planes import PlaneChoice, Planes
from flash_mcp.surface.server.registry import READ, Handoff, add_tool, can_elicit, client_info, translate_errors

ConfigPath = Annotated[str, Field(description="Workspace-relative, e.g. 'configs/sft.toml'")]
Overrides = Annotated[dict[str, Any], Field(description="Dotted-key overrides, as `flash train --set`")]
REMOTE = True  # any of these may reach Flash (an outside service) through its `plane` argument


class ApproveLaunch(BaseModel):
    approve: bool = Field(description="Launch this run and pay its quote?")


def register(server: MCPServer, settings: ServerSettings, planes: Planes) -> None:
    prepared: Handoff[Launch | LaunchReport] = Handoff()  # the resolver's launch, for the body of the same call

    def proposal_resource(proposal_id: str) -> str:
        """A launch proposal: what would run, the quote, the digests it was made against, and its status."""
        return approvals.proposal_json(planes.gate(), proposal_id)

    def whoami(plane: PlaneChoice = None) -> Identity:
        """The plane this server acts on and as whom (on Flash, the org that pays for runs), and the sandbox
        agent-written code runs in (detail.sandbox)."""
        identity = planes.bind(plane).plane.identity()
        return identity.model_copy(update={"detail": {**identity.detail, "sandbox": sandbox_status(settings.home)}})

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
        on = planes.bind(plane)
        return push.push_environment(on.settings.workspace, on.plane, directory, name, project, update_configs)

    def dry_run(config: ConfigPath, overrides: Overrides = {}, plane: PlaneChoice = None) -> DryRunReport:  # noqa: B006
        """Plan a config's run without starting it: rows after max_examples, steps, the model that would
        train, expected wall time and the quote."""
        on = planes.bind(plane)
        return quote.dry_run(on.settings, on.plane, config, overrides)

    def estimate_cost(config: ConfigPath, overrides: Overrides = {}, plane: PlaneChoice = None) -> CostReport:  # noqa: B006
        """What a config costs on the current plane, and Flash's own offline estimate for running it hosted."""
        on = planes.bind(plane)
        return quote.estimate_cost(on.settings, on.plane, config, overrides)

    async def approve_launch(
        config: str, ctx: Context, overrides: dict[str, Any] | None = None, plane: str | None = None
    ) -> ApproveLaunch | Elicit[ApproveLaunch]:
        try:
            on = planes.bind(plane)
        except PlaneUnavailable as why:  # not logged in: a proposal the human approves once they are
            settings, capabilities = planes.settings_for(plane), capabilities_of(planes.name(plane))
            offer = functools.partial(offline.propose, settings, capabilities, config, overrides or {},
                                      client_info(ctx), str(why))  # fmt: skip
            prepared.put(ctx, await anyio.to_thread.run_sync(offer))
            return ApproveLaunch(approve=False)
        prepare = functools.partial(launch.prepare_launch, on.settings, on.plane, on.gate)
        ready = await anyio.to_thread.run_sync(prepare, config, overrides or {})
        prepared.put(ctx, ready)
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
        ready = prepared.take(ctx)
        if isinstance(ready, LaunchReport):  # proposed offline by the resolver
            return ready
        approved = isinstance(decision, AcceptedElicitation) and decision.data.approve
        decide = functools.partial(launch.decide, can_ask=can_elicit(ctx), approved=approved, client=client_info(ctx))
        return await anyio.to_thread.run_sync(decide, planes.bind(plane).gate, ready)

    def list_proposals(
        status: Annotated[str | None, Field(description="pending, submitted, denied, refused or approved")] = None,
    ) -> ProposalList:
        """Launches waiting for (or given) a human's decision; `guard`: the spend guard's. The human approves
        outside MCP."""
        return approvals.list_proposals(planes.gate(), status)

    server.resource(
        "flash://proposals/{proposal_id}", name="proposal", description=proposal_resource.__doc__,
        mime_type="application/json",
    )(translate_errors(proposal_resource, ResourceError))  # fmt: skip
    add_tool(server, list_proposals, title="List launch proposals", **READ)
    add_tool(server, whoami, title="Who pays on this plane", **READ, open_world=REMOTE)
    add_tool(server, push_environment, title="Push an environment", read_only=False, destructive=False,
             idempotent=True, open_world=REMOTE)  # fmt: skip
    add_tool(server, dry_run, title="Dry-run a config", **READ, open_world=REMOTE)
    add_tool(server, estimate_cost, title="Estimate a run's cost", **READ, open_world=REMOTE)
    add_tool(server, launch_training, title="Launch training", read_only=False, destructive=False,
             idempotent=False, open_world=REMOTE, ui=PROPOSAL_UI)  # fmt: skip
