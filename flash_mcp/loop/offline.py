"""A paid run proposed before the human has logged in to the plane, and its approval once they have.

The proposal carries what can be known offline: the environment packaged here exactly as `flash env push`
packages it (its digest), Flash's own offline estimate (or why there is none), and the amount the human
approves. `flash-mcp approve` then needs the login: it re-checks the config, data and package digest, pushes
that package, takes the plane's live quote and submits only when the quote is within the approved amount.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NoReturn

from flash_mcp.core.errors import ConfigInvalid, UserError
from flash_mcp.core.human_settings import load_human_settings
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.approval.store import ApprovalStore, Proposal
from flash_mcp.domain.config.fit import hosted_estimate
from flash_mcp.domain.packaging.package import build_package, current_digest, normalize_name
from flash_mcp.loop.gate import GITHUB_REFS, BudgetRefusal, Gate, Launch, file_digest
from flash_mcp.loop.launch import LaunchReport, launch_report, preflight
from flash_mcp.loop.quote import read_request
from flash_mcp.loop.review import data_drift, review_details
from flash_mcp.planes.base import LaunchPlan, PlaneCapabilities, Quote, RunView, SubmitRequest

QUOTE_SLACK_USD = 0.005  # quotes are whole cents: a live quote equal to the approved amount is within it


def propose(settings: ServerSettings, capabilities: PlaneCapabilities, config: str, overrides: dict[str, Any],
            client: dict[str, Any], why: str) -> LaunchReport:  # fmt: skip
    """The proposal a launch leaves when its plane cannot be reached yet (`why`); nothing is pushed or sent."""
    plan = _plan(settings, capabilities, config, overrides)
    preflight(settings, plan)
    staged = _stage(plan, settings.home)
    estimate = hosted_estimate(plan.request.raw)
    budget = load_human_settings(settings.home).budget
    approved = estimate["usd"] if estimate["usd"] is not None else budget.max_run_usd
    if approved > budget.max_run_usd:
        raise BudgetRefusal(
            f"Flash's offline estimate ${approved:.2f} is over max_run_usd ${budget.max_run_usd:.2f}; nothing was "
            f"proposed. Shrink the run (max_steps, max_examples) or ask the human to raise max_run_usd in "
            f"{settings.home / 'settings.toml'} [budget]"
        )
    offline = {"why": why, "package": staged, "hosted_estimate": estimate, "approved_usd": approved}
    launch = _launch(plan, capabilities.name, settings.workspace.root, offline)
    store = ApprovalStore(settings.home)
    with store.launch_lock():
        found = store.pending_for(launch.fingerprint)
        proposal = found or _store(store, launch, settings.workspace.root, offline)
    if found is None:
        store.audit("propose", proposal_id=proposal.id, plane=launch.plane, config=plan.request.config_path,
                    quote_usd=approved, offline=True, environment_digest=launch.environment_digest,
                    client=client)  # fmt: skip
    return launch_report("awaiting_approval", launch, proposal=proposal, reason=_reason(capabilities.name, offline))


def approve(gate: Gate, proposal: Proposal, config_file: Path, *, how: str, client: dict[str, Any]) -> RunView:
    """The human's yes to an offline proposal, with the plane now reachable: push the exact package, take the
    live quote, submit within the approved amount. Single use: any refusal settles the proposal."""
    if not gate.store.decide(proposal.id, "approved"):
        raise UserError(f"{proposal.id} is {gate._state(proposal.id)}; a proposal is approved at most once")
    offline = proposal.offline or {}
    request = SubmitRequest.model_validate_json(proposal.request)
    problem = _drift(proposal, config_file, offline.get("package"))
    if problem is not None:
        _refuse(gate, proposal, problem, client)
    try:
        request = _pushed(gate, request, offline.get("package"))
        quote = gate.plane.dry_run(request).quote
    except UserError as exc:
        _refuse(gate, proposal, str(exc), client)
    approved = float(offline.get("approved_usd") or proposal.quote_usd)
    if quote.usd > approved + QUOTE_SLACK_USD:
        _refuse(gate, proposal, f"Flash's live quote ${quote.usd:.2f} is over the approved ${approved:.2f}; launch "
                "again for a proposal at the live quote", client)  # fmt: skip
    quote.account = quote.account or gate.plane.identity().who
    try:
        launch = Launch.from_proposal(proposal, request, quote)
        view = gate.submit(launch, how=how, client=client, proposal_id=proposal.id)
    except UserError as exc:
        _refuse(gate, proposal, str(exc), client)
    gate.store.settle(proposal.id, "submitted", view.run_id)
    return view


def _plan(settings: ServerSettings, capabilities: PlaneCapabilities, config: str,
          overrides: dict[str, Any]) -> LaunchPlan:  # fmt: skip
    read = read_request(settings, capabilities, config, overrides)
    if not read.validation.valid:
        raise ConfigInvalid(config, read.validation.errors, outcome="nothing was proposed")
    return LaunchPlan(
        config_file=read.path, overrides=dict(overrides), raw=read.raw, validation=read.validation,
        request=read.request, config_digest=hashlib.sha256(read.text.encode("utf-8")).hexdigest(),
        config_text=read.text, push=None, pushed=True, push_fresh=True,
    )  # fmt: skip


def _stage(plan: LaunchPlan, home: Path) -> dict[str, Any] | None:
    """The environment packaged as `flash env push` would package it now; None for a GitHub ref."""
    env_id = plan.environment_id
    if env_id.startswith(GITHUB_REFS):
        return None
    name = normalize_name(env_id.rsplit("/", 1)[-1] if env_id else plan.request.project_dir.name)
    if name is None:
        raise UserError(f"the environment id {env_id!r} has no usable name to push under; set [environment] id")
    package = build_package(plan.request.project_dir, name, exclude=(home,))
    return {"source": str(plan.request.project_dir), "name": name, "project": plan.request.spec.get("project"),
            "digest": package.digest, "files": len(package.members), "bytes": package.total_bytes}  # fmt: skip


def _launch(plan: LaunchPlan, plane: str, root: Path, offline: dict[str, Any]) -> Launch:
    package = offline["package"]
    digest = package["digest"] if package else None
    estimate = offline["hosted_estimate"]
    label = (
        "Flash's offline estimate (the live quote is taken at approval and must be within it)"
        if estimate["usd"] is not None
        else f"no offline estimate ({estimate['reason']}); approving allows up to max_run_usd, the live quote "
        "is taken at approval and must be within it"
    )
    quote = Quote(plane=plane, usd=offline["approved_usd"], label=label, hosted_estimate_usd=estimate["usd"])
    canonical = json.dumps({"plane": plane, "config": plan.request.config_path, "spec": plan.request.spec,
                            "raw": plan.request.raw, "environment": digest, "offline": True},
                           sort_keys=True, default=str)  # fmt: skip
    return Launch(
        request=plan.request, plane=plane, quote=quote, config_digest=plan.config_digest, environment_digest=digest,
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest(), paid=True, approval_reason="offline",
        details=review_details(plan, root),
    )  # fmt: skip


def _store(store: ApprovalStore, launch: Launch, root: Path, offline: dict[str, Any]) -> Proposal:
    return store.propose(
        fingerprint=launch.fingerprint, plane=launch.plane, workspace=str(root), config=launch.request.config_path,
        request=launch.request.model_dump_json(), quote_usd=launch.quote.usd, quote_label=launch.quote.label,
        account=None, config_digest=launch.config_digest, environment_id=launch.request.environment_id,
        environment_digest=launch.environment_digest, details={**launch.details, "offline": offline},
    )  # fmt: skip


def _reason(plane: str, offline: dict[str, Any]) -> str:
    package = offline["package"]
    pushed = f"pushes the package packaged here (digest {package['digest'][:12]}), " if package else ""
    return (
        f"{offline['why'].split(':')[0]}, so this was proposed offline: approving asks the human to log in to the "
        f"{plane} plane if needed, {pushed}takes the live quote and submits only within ${offline['approved_usd']:.2f}"
    )


def _drift(proposal: Proposal, config_file: Path, package: dict[str, Any] | None) -> str | None:
    if file_digest(config_file) != proposal.config_digest:
        return f"{proposal.config} changed since the proposal; launch again for a fresh proposal"
    if package is not None:
        try:
            now = current_digest(Path(package["source"]))
        except (UserError, OSError) as exc:
            return f"the environment at {package['source']} cannot be packaged as it was at the proposal ({exc})"
        if now != package["digest"]:
            return (f"the environment changed since the proposal (digest {package['digest'][:12]} -> {now[:12]}); "
                    "launch again for a fresh proposal")  # fmt: skip
    return data_drift(proposal)


def _pushed(gate: Gate, request: SubmitRequest, package: dict[str, Any] | None) -> SubmitRequest:
    """Push the staged package and point the request at the id the plane gave it (a GitHub ref: unchanged)."""
    if package is None:
        return request
    result = gate.plane.push(Path(package["source"]), package["name"], package["project"])
    if result.digest != package["digest"]:
        raise UserError(
            f"the pushed package's digest {result.digest[:12]} is not the approved {package['digest'][:12]} "
            "(the environment changed during the push); launch again"
        )
    spec, raw = dict(request.spec), dict(request.raw)
    spec["environment"] = {**(spec.get("environment") or {}), "id": result.environment_id}
    raw["environment"] = {**(raw.get("environment") or {}), "id": result.environment_id}
    return request.model_copy(update={"spec": spec, "raw": raw})


def _refuse(gate: Gate, proposal: Proposal, problem: str, client: dict[str, Any]) -> NoReturn:
    gate._refuse(proposal, problem, client)
