"""Launch a training run: preflight, push freshness, quote, budgets, then the approval decision.

Every launch goes through the spend gate (`loop/gate.py`): a run that costs money is submitted only
with a human's approval (asked in the client, or a proposal for `flash-mcp approve`) or a policy the
human wrote in settings.toml.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, Field

from flash_mcp.core.advice import human_command
from flash_mcp.core.errors import ConfigInvalid, NotPushed, PreflightFailed, StalePush, UserError, WastedRun
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.approval.store import Proposal, ProposalView
from flash_mcp.domain.config.rules import INVALID
from flash_mcp.domain.project.preflight import check_project
from flash_mcp.loop.gate import GITHUB_REFS, Gate, Launch
from flash_mcp.loop.quote import submit_request
from flash_mcp.loop.runs import RunReport, run_report
from flash_mcp.planes.base import LaunchPlan, Plane, RunView

# check_project findings a launch tolerates: the config's own validation (its overrides applied, certain waste
# included) and the push decide those.
_LAUNCH_TOLERATES = ("environment-id-missing", INVALID)


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


def prepare_launch(
    settings: ServerSettings, plane: Plane, gate: Gate, config: str, overrides: dict[str, Any]
) -> Launch:
    """Validate, preflight, check the push is fresh, quote, check budgets: everything before a decision."""
    plan = plan_launch(settings, plane, config, overrides)
    preflight(settings, plan)
    require_fresh_push(plan, plane.name)
    quote = plane.dry_run(plan.request).quote
    quote.account = quote.account or plane.identity().who
    return gate.assess(plan, quote)


def preflight(settings: ServerSettings, plan: LaunchPlan) -> None:
    """Refuse certain waste and check_project errors, before anything is quoted."""
    if plan.validation.waste:
        raise WastedRun(plan.validation.waste)
    project_errors = [
        f for f in check_project(plan.request.project_dir, [plan.config_file], settings.workspace.relative,
                                 read={plan.config_file: (plan.raw, plan.validation)})
        if f.severity == "error" and f.code not in _LAUNCH_TOLERATES
    ]  # fmt: skip
    if project_errors:
        raise PreflightFailed(project_errors)


def plan_launch(settings: ServerSettings, plane: Plane, config: str, overrides: dict[str, Any]) -> LaunchPlan:
    """Every fact a launch needs, derived once: the config read and validated once, the push record read once."""
    read = submit_request(settings, plane, config, overrides)
    if not read.validation.valid:
        raise ConfigInvalid(config, read.validation.errors)
    env_id = read.request.environment_id
    github = env_id.startswith(GITHUB_REFS)
    push = None if github else plane.pushed(env_id)
    return LaunchPlan(
        config_file=read.path,
        overrides=dict(overrides),
        raw=read.raw,
        validation=read.validation,
        request=read.request.model_copy(update={"push": push}),
        config_digest=hashlib.sha256(read.text.encode("utf-8")).hexdigest(),
        config_text=read.text,
        push=push,
        pushed=github or push is not None,
        push_fresh=push is None or plane.push_unchanged(push),
    )


def approval_question(gate: Gate, launch: Launch) -> str:
    today, _ = gate.store.spent()
    return launch.summary(today, gate.settings.budget.daily_usd)


def decide(gate: Gate, launch: Launch, *, can_ask: bool, approved: bool, client: dict[str, Any]) -> LaunchReport:
    """Submit, return the run this same launch started, or leave a proposal for the human.

    `can_ask`: the client can put a question to the human; `approved`: the human said yes to it.
    """
    existing = gate.existing(launch)
    if isinstance(existing, RunView):
        return launch_report("existing_run", launch, run=run_report(existing))
    if launch.approval_reason is None:
        how = "policy" if launch.paid else "not needed"
    elif not can_ask:
        proposal = existing or gate.propose(launch, client)
        authority = gate.plane.identity().detail.get("spend_authority")
        return launch_report("awaiting_approval", launch, proposal=proposal, reason=launch.approval_reason,
                             authority=authority)  # fmt: skip
    elif approved:
        how = "elicitation"
    else:
        gate.store.audit("decline", how="elicitation", config=launch.request.config_path,
                         quote_usd=launch.quote.usd, client=client)  # fmt: skip
        raise UserError(f"not launched: the human declined the ${launch.quote.usd:.2f} run; nothing was submitted")
    view = gate.submit(launch, how=how, client=client)
    return launch_report("launched", launch, run=run_report(view), approved_by=how)


def require_fresh_push(plan: LaunchPlan, plane: str) -> None:
    """The environment a run trains must be the one on disk: pushed from here, and unchanged since."""
    if not plan.pushed:
        raise NotPushed(plan.environment_id, plane)
    if not plan.push_fresh:
        raise StalePush(plan.environment_id)


def launch_report(status: str, launch: Launch, *, run: RunReport | None = None, proposal: Proposal | None = None,
                   approved_by: str | None = None, reason: str | None = None,
                   authority: str | None = None) -> LaunchReport:  # fmt: skip
    """`authority`: the plane's word on who holds spend (guarded or not), said beside a proposal."""
    common = {"status": status, "plane": launch.plane, "config": launch.request.config_path,
              "quote_usd": launch.quote.usd, "account": launch.quote.account}  # fmt: skip
    if run is not None:
        return LaunchReport(**common, state=run.state, run_id=run.run_id, approved_by=approved_by, run=run,
                            next=run.next)  # fmt: skip
    assert proposal is not None
    command = human_command("approve", proposal.id)
    return LaunchReport(
        **common, state="awaiting_approval", proposal=proposal.public(), approve_command=command,
        next=[f"ask the human to run `{command}` ({reason}); nothing was submitted",
              f"list_proposals or flash://proposals/{proposal.id} to see whether it was approved",
              *([authority] if authority else [])],
    )  # fmt: skip
