"""Launch proposals: listed for the agent (read-only), approved or denied by the human (CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from flash_mcp import planes
from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings, default_home
from flash_mcp.domain.approval.store import ApprovalStore, Proposal, ProposalView
from flash_mcp.loop.gate import Gate
from flash_mcp.planes.base import Plane, RunView


class GuardProposalView(BaseModel):
    """A proposal the spend guard holds (guarded mode): the guard keeps its exact request and submits it once the
    human approves it there."""

    id: str
    kind: str = Field(description="launch (a training run) or deployment (serving a checkpoint, billed per token)")
    status: str = Field(description="pending (waiting for the human), submitting, submitted, denied, failed or unknown")
    live: bool = Field(description="Pending and not expired: the human can still approve it")
    quote_usd: float = Field(description="Flash's dry-run quote the guard priced it at (0 for a deployment)")
    summary: str
    path: str = Field(description="The Flash route the guard submits to")
    digest: str = Field(description="sha256 of the exact request the human approves")
    run_id: str | None = None
    error: str | None = None
    created_at: float
    expires_at: float
    approve_with: str | None = Field(default=None, description="How the human approves it (while it is live)")
    denied_reason: str | None = Field(default=None, description="Why the human denied it, in their words")


class ProposalList(BaseModel):
    proposals: list[ProposalView]
    guard: list[GuardProposalView] = Field(
        default_factory=list, description="Where a spend guard holds the key: the proposals it holds"
    )


def list_proposals(gate: Gate, status: str | None) -> ProposalList:
    guarded = gate.plane.guard_proposals(status)
    return ProposalList(
        proposals=[p.public() for p in gate.store.list(status)],
        guard=[GuardProposalView(**g, kind="launch" if g["path"] == "/v1/runs" else "deployment")
                         for g in guarded],
    )  # fmt: skip


def proposal_json(gate: Gate, proposal_id: str) -> str:
    proposal = gate.store.get(proposal_id)
    if proposal is None:
        raise UserError(f"no proposal {proposal_id!r}; list_proposals shows them")
    return proposal.public().model_dump_json(indent=1)


def waiting(include_decided: bool) -> list[Proposal]:
    """Live pending proposals in the human's state directory; with `include_decided`, every proposal."""
    found = ApprovalStore(default_home()).list(None if include_decided else "pending")
    return [p for p in found if include_decided or p.live]


def find(proposal_id: str) -> Proposal | None:
    return ApprovalStore(default_home()).get(proposal_id)


def approve(proposal: Proposal, client: dict[str, Any], plane: Plane | None = None, how: str = "cli") -> RunView | None:
    """The human's yes: single use, re-checked against the config and environment it was made for.
    A launch is submitted (its run returned); a deployment is marked approved for the agent's next `evaluate`.
    Building the plane raises `PlaneUnavailable` while the human is not logged in: the proposal stays pending."""
    gate, config_file = _gate_for(proposal, plane), Path(proposal.workspace) / proposal.config
    if proposal.offline is not None:  # proposed before the login: push, live quote, then submit
        from flash_mcp.loop import offline

        return offline.approve(gate, proposal, config_file, how=how, client=client)
    return gate.approve(proposal, config_file, how=how, client=client)


def deny(proposal: Proposal, client: dict[str, Any], reason: str | None = None) -> None:
    """The human's no, with the reason the agent reads in list_proposals."""
    _gate_for(proposal, None).deny(proposal, client=client, reason=reason)


def _gate_for(proposal: Proposal, plane: Plane | None) -> Gate:
    """The gate for the proposal's plane: `plane` where the caller built it for that plane (the review page)."""
    settings = ServerSettings.create(workspace=proposal.workspace, plane=proposal.plane)
    return Gate(settings.home, plane or planes.make_plane(settings), Path(proposal.workspace))
