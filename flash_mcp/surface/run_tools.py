"""Run tools: push an environment, dry-run and cost a config, launch, read and cancel runs.

No `from __future__ import annotations` here: the cancel resolver is a closure that the
SDK must see as a live object in `Resolve(...)`, not as a string to evaluate later.
"""

import functools
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.resolve import AcceptedElicitation
from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.approval.store import Proposal, ProposalView
from flash_mcp.domain.config.edit import apply_edits
from flash_mcp.domain.config.fit import hosted_estimate
from flash_mcp.domain.config.resolve import apply_overrides
from flash_mcp.domain.config.validate import load_toml, validate_raw
from flash_mcp.domain.project.files import atomic_write, locked
from flash_mcp.domain.project.preflight import check_project
from flash_mcp.domain.runs import health as run_health
from flash_mcp.loop.gate import Gate, Launch, environment_digest, environment_unchanged
from flash_mcp.planes.base import (
    TERMINAL,
    Checkpoint,
    DryRun,
    Identity,
    LogWindow,
    Plane,
    PushResult,
    RunView,
    SubmitRequest,
)
from flash_mcp.surface.config_tools import ConfigIssue, config_issue, project_dir_of
from flash_mcp.surface.registry import add_tool, translate_errors

ConfigPath = Annotated[str, Field(description="Config file relative to the workspace, e.g. 'configs/sft.toml'")]
Overrides = Annotated[dict[str, Any], Field(description="Dotted keys to override, like `flash train --set`")]
RunId = Annotated[str, Field(description="A run id from list_runs or launch_training")]
LOG_DEFAULT, LOG_MAX = 8_000, 40_000
POINTS_PER_METRIC = 100
POLL_SECONDS = 0.5
PREPARED_KEPT = 64


class PushReport(PushResult):
    configs_updated: list[str] = Field(description="Configs whose [environment] id now names this push")
    configs_kept: list[str] = Field(description="Configs that name another environment, left alone")


class DryRunReport(BaseModel):
    plane: str
    valid: bool
    errors: list[ConfigIssue]
    warnings: list[ConfigIssue]
    dry_run: DryRun | None = Field(description="Rows, steps, model, wall time and quote; null when invalid")


class CostReport(BaseModel):
    plane: str
    usd: float = Field(description="Expected cost on this plane")
    label: str
    hosted_estimate: dict[str, Any] | None = Field(
        description="Flash's own offline estimate for running this config hosted (GRPO/OPD), labelled an estimate"
    )


class RunSummary(BaseModel):
    run_id: str
    state: str
    algorithm: str
    model: str
    step: int | None
    total_steps: int | None
    cost_usd: float | None
    created_at: float


class RunPage(BaseModel):
    plane: str
    runs: list[RunSummary]
    total: int
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class RunReport(RunView):
    next: list[str] = Field(description="What to read next")
    account: str | None = Field(default=None, description="Who pays for this run on its plane")


class MetricsReport(BaseModel):
    plane: str
    run_id: str
    series: dict[str, list[tuple[int, float]]] = Field(
        description=f"[step, value] pairs per metric, thinned to at most {POINTS_PER_METRIC} points"
    )
    trends: list[run_health.Trend]


class SampleList(BaseModel):
    plane: str
    run_id: str
    total: int = Field(description="Samples recorded for the requested step(s)")
    samples: list[dict[str, Any]] = Field(description="prompt, completion, reward, reason, step, row_id; newest last")


class CheckpointList(BaseModel):
    plane: str
    run_id: str
    checkpoints: list[Checkpoint]


class ApproveLaunch(BaseModel):
    approve: bool = Field(description="Launch this run and pay its quote?")


class ProposalList(BaseModel):
    proposals: list[ProposalView]


class LaunchReport(BaseModel):
    status: str = Field(description="launched, existing_run (the same launch minutes ago) or awaiting_approval")
    plane: str
    state: str = Field(description="The run's state, or awaiting_approval")
    run_id: str | None = None
    config: str
    quote_usd: float
    account: str | None = Field(description="Who pays for this run on its plane")
    approved_by: str | None = Field(default=None, description="policy, elicitation, or 'not needed' (local)")
    proposal: ProposalView | None = None
    approve_command: str | None = Field(default=None, description="What the human runs to approve the proposal")
    run: RunReport | None = None
    next: list[str]


class ConfirmCancel(BaseModel):
    cancel: bool = Field(description="Cancel the run? Checkpoints already saved are kept.")


def register(server: MCPServer, settings: ServerSettings, plane: Callable[[], Plane]) -> None:
    workspace = settings.workspace

    @functools.cache
    def gate() -> Gate:
        return Gate(settings.home, plane(), workspace.root)

    def request_for(config: str, overrides: dict[str, Any]) -> tuple[SubmitRequest, Any, dict[str, Any]]:
        path = workspace.resolve(config)
        raw = load_toml(path)
        validation = validate_raw(
            raw, overrides=overrides, project_required=settings.plane == "flash", project_dir=project_dir_of(path)
        )
        spec = validation.resolved.model_dump() if validation.resolved else {}
        merged = apply_overrides(raw, overrides)
        request = SubmitRequest(
            config_path=workspace.relative(path),
            project_dir=project_dir_of(path),
            spec=spec,
            authored_train_keys=validation.resolved.authored_keys if validation.resolved else [],
            raw=merged,
            secret_folders=list(dict.fromkeys([workspace.root, path.parent])),
        )
        return request, validation, merged

    def push_environment(
        name: Annotated[str, Field(description="Environment name, e.g. 'math-env'")],
        directory: Annotated[
            str, Field(description="Project folder with environment.py, or one .py entrypoint (single-file push)")
        ] = ".",
        project: Annotated[str | None, Field(description="Project UUID (default: the configs' project)")] = None,
        update_configs: Annotated[bool, Field(description="Write the new id into the project's configs")] = True,
    ) -> PushReport:
        """Package the environment as `flash env push` does and push it to the current plane; the returned
        id is written into every config of the project that does not name another environment."""
        target = workspace.resolve(directory)
        project_dir = target if target.is_dir() else target.parent
        project_id = project or _configs_project(project_dir)
        result = plane().push(target, name, project_id)
        updated, kept = _update_configs(workspace, project_dir, result.environment_id) if update_configs else ([], [])
        return PushReport(**result.model_dump(), configs_updated=updated, configs_kept=kept)

    def dry_run(config: ConfigPath, overrides: Overrides = {}) -> DryRunReport:  # noqa: B006
        """Validate a config and plan its run on the current plane without starting anything: rows after
        max_examples, steps, the model that would train, expected wall time and the quote."""
        request, validation, merged = request_for(config, overrides)
        planned = plane().dry_run(request) if validation.valid else None
        if planned is not None:
            hosted = hosted_estimate(merged)
            planned.quote.hosted_estimate_usd = hosted["usd"] if hosted else None
        return DryRunReport(
            plane=plane().name,
            valid=validation.valid,
            errors=[config_issue(e) for e in validation.errors],
            warnings=[config_issue(w) for w in validation.warnings],
            dry_run=planned,
        )

    def estimate_cost(config: ConfigPath, overrides: Overrides = {}) -> CostReport:  # noqa: B006
        """What a config costs on the current plane, and Flash's own offline estimate for running it hosted."""
        request, validation, merged = request_for(config, overrides)
        if not validation.valid:
            raise UserError(_invalid(config, validation.errors))
        quote = plane().dry_run(request).quote
        return CostReport(plane=quote.plane, usd=quote.usd, label=quote.label, hosted_estimate=hosted_estimate(merged))

    def prepare_launch(config: str, overrides: dict[str, Any]) -> Launch:
        """Validate, preflight, check the push is fresh, quote, check budgets: everything before a decision."""
        request, validation, _ = request_for(config, overrides)
        if not validation.valid:
            raise UserError(_invalid(config, validation.errors))
        project_errors = [
            f for f in check_project(request.project_dir, [workspace.resolve(config)], workspace.relative)
            if f.severity == "error" and f.code not in ("environment-id-missing", "config-invalid")
        ]  # fmt: skip
        if project_errors:
            listed = "; ".join(f"{f.code}: {f.message} (fix: {f.fix})" for f in project_errors)
            raise UserError(f"check_project found errors, nothing was launched: {listed}")
        _require_fresh_push(plane(), request.spec["environment"]["id"])
        quote = plane().dry_run(request).quote
        quote.account = quote.account or plane().identity().who
        return gate().assess(request, quote, workspace.resolve(config))

    # The resolver's launch, for the body of the same call. A call that ends in an elicitation request
    # (modern era) never reaches the body, so only the newest few are kept.
    prepared: dict[str, Launch] = {}

    async def approve_launch(
        config: str, ctx: Context, overrides: dict[str, Any] | None = None
    ) -> ApproveLaunch | Elicit[ApproveLaunch]:
        launch = await anyio.to_thread.run_sync(prepare_launch, config, overrides or {})
        prepared[ctx.request_id] = launch
        while len(prepared) > PREPARED_KEPT:
            prepared.pop(next(iter(prepared)))
        if launch.approval_reason is None or not _can_ask(ctx):
            return ApproveLaunch(approve=False)
        today, _ = gate().store.spent()
        return Elicit(launch.summary(today, gate().settings.budget.daily_usd), ApproveLaunch)

    async def launch_training(
        config: ConfigPath,
        decision: Annotated[ElicitationResult[ApproveLaunch], Resolve(translate_errors(approve_launch))],
        ctx: Context,
        overrides: Overrides = {},  # noqa: B006
    ) -> LaunchReport:
        """Start a training run after a preflight (valid config, no check_project errors, environment unchanged
        since its push), a quote and the budgets. A run that costs money needs the human: they are asked when
        the client can ask, otherwise a proposal waits for `flash-mcp approve`. Returns at once."""
        launch, client = prepared.pop(ctx.request_id), _client_info(ctx)
        existing = await anyio.to_thread.run_sync(gate().existing, launch)
        if isinstance(existing, RunView):
            return _launch_report("existing_run", launch, run=_report(existing))
        if launch.approval_reason is None:
            how = "policy" if launch.paid else "not needed"
        elif not _can_ask(ctx):
            proposal = existing or await anyio.to_thread.run_sync(gate().propose, launch, client)
            return _launch_report("awaiting_approval", launch, proposal=proposal, reason=launch.approval_reason)
        elif isinstance(decision, AcceptedElicitation) and decision.data.approve:
            how = "elicitation"
        else:
            gate().store.audit("decline", how="elicitation", config=launch.request.config_path,
                               quote_usd=launch.quote.usd, client=client)  # fmt: skip
            raise UserError(f"not launched: the human declined the ${launch.quote.usd:.2f} run; nothing was submitted")
        view = await anyio.to_thread.run_sync(lambda: gate().submit(launch, how=how, client=client))
        return _launch_report("launched", launch, run=_report(view), approved_by=how)

    def list_proposals(
        status: Annotated[str | None, Field(description="pending, submitted, denied, refused or approved")] = None,
    ) -> ProposalList:
        """Launches waiting for (or given) a human's decision. Read-only: approving happens outside MCP,
        with `flash-mcp approve ID` run by the human."""
        return ProposalList(proposals=[p.public() for p in gate().store.list(status)])

    def whoami() -> Identity:
        """The plane this server acts on and who it acts as: on Flash, the org that pays for runs."""
        return plane().identity()

    def list_runs(
        state: Annotated[str | None, Field(description="Only runs in this state")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page")] = None,
    ) -> RunPage:
        """Runs on the current plane, newest first, a page at a time."""
        offset = _offset(cursor)
        runs, total = plane().list_runs(state, limit, offset)
        following = offset + len(runs)
        summaries = [RunSummary(**run.model_dump(include=set(RunSummary.model_fields))) for run in runs]
        return RunPage(
            plane=plane().name, runs=summaries, total=total, next_cursor=str(following) if following < total else None
        )

    async def get_run(
        run_id: RunId,
        wait_s: Annotated[
            float, Field(ge=0, le=300, description="Wait up to this long for the run to change state or step")
        ] = 0,
    ) -> RunReport:
        """A run's state, progress, latest metrics, cost and heartbeat age, and what to read next."""
        deadline = time.monotonic() + wait_s
        first = view = await anyio.to_thread.run_sync(plane().get_run, run_id)
        while _unchanged(first, view) and view.state not in TERMINAL and time.monotonic() < deadline:
            await anyio.sleep(POLL_SECONDS)
            view = await anyio.to_thread.run_sync(plane().get_run, run_id)
        return _report(view)

    def read_run_logs(
        run_id: RunId,
        offset: Annotated[int, Field(ge=0, description="Byte offset to read from")] = 0,
        max_bytes: Annotated[int, Field(ge=1, le=LOG_MAX)] = LOG_DEFAULT,
    ) -> LogWindow:
        """A window of the run's log by byte offset; continue from next_offset."""
        return plane().read_logs(run_id, offset, max_bytes)

    def get_run_metrics(
        run_id: RunId,
        names: Annotated[list[str] | None, Field(description="Only these metrics, e.g. ['loss', 'reward']")] = None,
        since_step: Annotated[int, Field(ge=0)] = 0,
    ) -> MetricsReport:
        """Metric series in Flash's names (loss, reward, reward_std, kl, …) with a trend per metric."""
        rows = [row for row in plane().metrics(run_id) if row.get("step", 0) >= since_step]
        found = {k: v for k, v in run_health.series(rows).items() if names is None or k in names}
        return MetricsReport(
            plane=plane().name,
            run_id=run_id,
            series={k: run_health.thin(v, POINTS_PER_METRIC) for k, v in found.items()},
            trends=[run_health.trend(k, [value for _, value in v]) for k, v in found.items()],
        )

    def get_run_samples(
        run_id: RunId,
        step: Annotated[int | None, Field(description="Only this step's samples")] = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
    ) -> SampleList:
        """Sampled rollouts the run recorded: prompt, completion, reward and reason (the most recent `limit`)."""
        rows = plane().samples(run_id, step)
        return SampleList(
            plane=plane().name, run_id=run_id, total=len(rows), samples=[_clip_sample(r) for r in rows[-limit:]]
        )

    def list_checkpoints(run_id: RunId) -> CheckpointList:
        """LoRA adapters the run saved, as RUN/step-N and RUN/final."""
        return CheckpointList(plane=plane().name, run_id=run_id, checkpoints=plane().checkpoints(run_id))

    async def confirm_cancel(run_id: str, ctx: Context) -> ConfirmCancel | Elicit[ConfirmCancel]:
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            return ConfirmCancel(cancel=True)
        view = await anyio.to_thread.run_sync(plane().get_run, run_id)
        # Only fields that cannot change while the question is pending: the SDK matches the answer
        # to the exact question, and a retried call must ask the same one.
        return Elicit(f"Cancel {view.plane} {view.algorithm} run {run_id} ({view.model})?", ConfirmCancel)

    async def cancel_run(
        run_id: RunId,
        decision: Annotated[ElicitationResult[ConfirmCancel], Resolve(confirm_cancel)],
    ) -> RunReport:
        """Cancel a run; the human confirms when the client can ask. Saved checkpoints survive."""
        confirmed = isinstance(decision, AcceptedElicitation) and decision.data.cancel
        if not confirmed:
            raise UserError(f"not cancelled: the human declined; {run_id} keeps running")
        return _report(await anyio.to_thread.run_sync(plane().cancel, run_id))

    def proposal_resource(proposal_id: str) -> str:
        """A launch proposal: what would run, the quote, the digests it was made against, and its status."""
        proposal = gate().store.get(proposal_id)
        if proposal is None:
            raise UserError(f"no proposal {proposal_id!r}; list_proposals shows them")
        return proposal.public().model_dump_json(indent=1)

    server.resource(
        "flash://proposals/{proposal_id}", name="proposal", description=proposal_resource.__doc__,
        mime_type="application/json",
    )(translate_errors(proposal_resource, ResourceError))  # fmt: skip

    remote = settings.plane == "flash"  # the Flash plane is an outside service: open-world
    read = {"read_only": True, "destructive": False, "idempotent": True, "open_world": remote}
    add_tool(server, list_proposals, title="List launch proposals", **{**read, "open_world": False})
    add_tool(server, whoami, title="Who pays on this plane", **read)
    add_tool(server, push_environment, title="Push an environment", read_only=False, destructive=False,
             idempotent=True, open_world=remote)  # fmt: skip
    add_tool(server, dry_run, title="Dry-run a config", **read)
    add_tool(server, estimate_cost, title="Estimate a run's cost", **read)
    add_tool(server, launch_training, title="Launch training", read_only=False, destructive=False, idempotent=False,
             open_world=remote)  # fmt: skip
    add_tool(server, list_runs, title="List runs", **read)
    add_tool(server, get_run, title="Get a run", **read)
    add_tool(server, read_run_logs, title="Read run logs", **read)
    add_tool(server, get_run_metrics, title="Get run metrics", **read)
    add_tool(server, get_run_samples, title="Get run samples", **read)
    add_tool(server, list_checkpoints, title="List checkpoints", **read)
    add_tool(server, cancel_run, title="Cancel a run", read_only=False, destructive=True, idempotent=True,
             open_world=remote)  # fmt: skip


def _configs_project(project_dir: Path) -> str | None:
    for config in sorted((project_dir / "configs").glob("*.toml")):
        try:
            value = tomllib.loads(config.read_text(encoding="utf-8")).get("project")
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _update_configs(workspace, project_dir: Path, environment_id: str) -> tuple[list[str], list[str]]:
    """Point configs at the new push unless they already name a different environment."""
    updated, kept = [], []
    prefix = environment_id.rsplit("/", 1)[0] + "/"
    for config in sorted((project_dir / "configs").glob("*.toml")):
        with locked(config):
            text = config.read_text(encoding="utf-8")
            try:
                env = tomllib.loads(text).get("environment") or {}
            except tomllib.TOMLDecodeError:
                kept.append(workspace.relative(config))
                continue
            current = str(env.get("id") or "") if isinstance(env, dict) else ""
            if current and current != environment_id and not current.startswith(prefix):
                kept.append(workspace.relative(config))
                continue
            if current != environment_id:
                atomic_write(config, apply_edits(text, {"environment.id": environment_id}, []).encode("utf-8"))
            updated.append(workspace.relative(config))
    return updated, kept


def _require_fresh_push(plane: Plane, environment_id: str) -> None:
    """The environment a run trains must be the one on disk: pushed from here, and unchanged since."""
    if environment_digest(plane, environment_id) is not None and not environment_unchanged(plane, environment_id):
        raise UserError(
            f"the environment pushed as {environment_id} changed on disk since the push; "
            "call push_environment again so the run trains what you tested"
        )


def _can_ask(ctx: Context) -> bool:
    capabilities = ctx.client_capabilities
    return capabilities is not None and capabilities.elicitation is not None


def _client_info(ctx: Context) -> dict[str, Any]:
    """Which client asked, for the audit trail (name and version as the client reported them)."""
    try:
        info = ctx.session.client_params.client_info
        return {"name": info.name, "version": info.version}
    except AttributeError:
        return {}


def _launch_report(status: str, launch: Launch, *, run: RunReport | None = None, proposal: Proposal | None = None,
                   approved_by: str | None = None, reason: str | None = None) -> LaunchReport:  # fmt: skip
    common = {"status": status, "plane": launch.plane, "config": launch.request.config_path,
              "quote_usd": launch.quote.usd, "account": launch.quote.account}  # fmt: skip
    if run is not None:
        return LaunchReport(**common, state=run.state, run_id=run.run_id, approved_by=approved_by, run=run,
                            next=run.next)  # fmt: skip
    assert proposal is not None
    command = f"flash-mcp approve {proposal.id}"
    return LaunchReport(
        **common, state="awaiting_approval", proposal=proposal.public(), approve_command=command,
        next=[f"ask the human to run `{command}` ({reason}); nothing was submitted",
              f"list_proposals or flash://proposals/{proposal.id} to see whether it was approved"],
    )  # fmt: skip


def _unchanged(first: RunView, now: RunView) -> bool:
    return (first.state, first.step) == (now.state, now.step)


def _invalid(config: str, errors) -> str:
    listed = "; ".join(f"{e.key}: {e.message} (fix: {e.fix})" for e in errors)
    return f"{config} is invalid, nothing was launched: {listed}"


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise UserError(f"cursor {cursor!r} is not one list_runs returned; omit it to start over")
    return int(cursor)


def _report(view: RunView) -> RunReport:
    next_reads = [f"get_run_metrics('{view.run_id}') for the loss/reward curve"]
    if view.state == "failed":
        next_reads.insert(0, f"read_run_logs('{view.run_id}') for why it failed")
    if view.state == "done":
        next_reads.append(f"list_checkpoints('{view.run_id}') for the adapters")
    if view.state not in TERMINAL:
        next_reads.append(f"get_run('{view.run_id}', wait_s=60) to wait for progress")
    return RunReport(**view.model_dump(), next=next_reads)


def _clip_sample(sample: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[:1500] + "…" if isinstance(v, str) and len(v) > 1500 else v) for k, v in sample.items()}
