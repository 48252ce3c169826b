"""What a human approves: the resolved run as it will be submitted, the overrides as a diff against the
config file, and the data it trains on by digest; re-checked before an approved proposal is submitted."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.domain.approval.store import DataFile, Proposal
from flash_mcp.domain.config.edit import apply_edits, unified_diff
from flash_mcp.domain.project import safe_fs
from flash_mcp.domain.project.dataset import dataset_file
from flash_mcp.planes.base import LaunchPlan, SubmitRequest

DIFF_SHOWN = 2000


def review_details(plan: LaunchPlan, workspace_root: Path) -> dict[str, Any]:
    """The facts a proposal stores and every approval surface shows."""
    request = plan.request
    return {
        "overrides": dict(plan.overrides),
        "config_diff": config_diff(plan.config_text, plan.overrides, request.config_path),
        "data": [entry.model_dump() for entry in data_files(request, workspace_root)],
        "run": request.spec,
    }


def config_diff(text: str, overrides: dict[str, Any], rel: str) -> str | None:
    """The overrides written into the config text, as a unified diff; None when there are none."""
    if not overrides:
        return None
    try:
        after = apply_edits(text, dict(overrides), [])
    except (UserError, ValueError) as exc:
        return f"(the overrides cannot be shown as a diff: {exc}) overrides: {json.dumps(overrides, default=str)}"
    return unified_diff(text, after, rel) or None


def data_files(request: SubmitRequest, workspace_root: Path) -> list[DataFile]:
    """The dataset file the run trains on, by digest (none when the environment brings its own data)."""
    path = dataset_file(request.project_dir, request.environment_params)
    if path is None:
        return []
    rel = path.relative_to(workspace_root).as_posix() if workspace_root in path.parents else str(path)
    digest, size = file_digest(path, rel)
    return [DataFile(path=rel, sha256=digest, bytes=size)]


def file_digest(path: Path, label: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with safe_fs.open_binary(path, label) as handle:
        for chunk in iter(lambda: handle.read(safe_fs.COPY_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def data_drift(proposal: Proposal) -> str | None:
    """Why the data no longer matches the proposal, or None."""
    root = Path(proposal.workspace)
    for entry in proposal.data:
        path = Path(entry.path) if Path(entry.path).is_absolute() else root / entry.path
        try:
            digest, _ = file_digest(path, entry.path)
        except UserError as exc:
            return f"the data {entry.path} cannot be read as it was at the proposal ({exc}); launch again"
        if digest != entry.sha256:
            return (
                f"the data {entry.path} changed since the proposal (sha256 {entry.sha256[:12]} -> {digest[:12]}); "
                "launch again for a fresh proposal"
            )
    return None


def describe_request(overrides: dict[str, Any], diff: str | None, data: list[DataFile] | list[dict], run: dict) -> str:
    """The request in lines a human reads before saying yes: overrides and diff, data digests, the run."""
    lines = []
    if overrides:
        lines.append(f"overrides: {json.dumps(overrides, sort_keys=True, default=str)}")
        if diff:
            shown = diff if len(diff) <= DIFF_SHOWN else diff[:DIFF_SHOWN] + "\n… (diff cut)"
            lines.append("diff against the config file:\n" + shown.rstrip("\n"))
    for entry in data:
        item = entry if isinstance(entry, DataFile) else DataFile.model_validate(entry)
        lines.append(f"data: {item.path} sha256 {item.sha256[:16]} ({item.bytes} bytes)")
    if not data:
        lines.append("data: the environment's own (no dataset file in the project)")
    if run:
        lines.append("run as submitted: " + json.dumps(_compact(run), sort_keys=True, default=str))
    return "\n".join(lines)


def describe_proposal(proposal: Proposal) -> str:
    return describe_request(proposal.overrides, proposal.config_diff, proposal.data, proposal.run)


def _compact(run: dict[str, Any]) -> dict[str, Any]:
    """The resolved spec without empty values, so the line stays readable."""
    out: dict[str, Any] = {}
    for key, value in run.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v not in (None, "", [], {})}
        if value not in (None, "", [], {}):
            out[key] = value
    return out


def proposal_text(proposal: Proposal) -> str:
    """The proposal as the human reads it at the terminal: what, where, the quote, digests, then the request."""
    billed = f", billed to {proposal.account}" if proposal.account else ""
    return (
        f"{proposal.id}  {proposal.status}{'' if proposal.live or proposal.status != 'pending' else ' (expired)'}\n"
        f"  {proposal.config} on the {proposal.plane} plane, workspace {proposal.workspace}\n"
        f"  quote ${proposal.quote_usd:.2f} ({proposal.quote_label}){billed}\n"
        f"  environment {proposal.environment_id} digest {(proposal.environment_digest or 'n/a')[:12]}, "
        f"config digest {proposal.config_digest[:12]}"
        + (f"\n  run {proposal.run_id}" if proposal.run_id else "")
        + (f"\n  {_offline_line(proposal.offline)}" if proposal.offline else "")
        + "\n"
        + textwrap.indent(describe_proposal(proposal), "  ")
    )


def _offline_line(offline: dict) -> str:
    package = offline.get("package")
    pushed = (
        f"push the package packaged at the proposal ({package['files']} files, digest "
        f"{package['digest'][:12]}) as {package['name']}, "
        if package
        else ""
    )
    return (f"proposed before the Flash login: approving will {pushed}take Flash's live quote and submit only if "
            f"it is at most ${float(offline.get('approved_usd') or 0):.2f}")  # fmt: skip
