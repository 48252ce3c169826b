"""Launch proposals: listed for the agent (read-only), approved or denied by the human (CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from flash_mcp import planes
from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings, default_home
from flash_mcp.domain.approval.store import ApprovalStore, Proposal, ProposalView
from flash_mcp.loop.gate import Gate
from flash_mcp.planes.base import Plane, RunView


class ProposalList(BaseModel):
    proposals: list[ProposalView]


def list_proposals(gate: Gate, status: str | None) -> ProposalList:
    return ProposalList(proposals=[p.public() for p in gate.store.list(status)])


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
