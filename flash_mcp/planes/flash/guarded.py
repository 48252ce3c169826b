"""Guarded mode, the MCP server's side: where a spend guard is installed, Flash is reached only through it.

The guard (flash_mcp/guard/, its own OS user) holds the Flash key; this server talks to its Unix socket with no
key, and a paid submit becomes a guard proposal that only the human can approve
(`sudo /opt/flash-mcp-guard/bin/flash-mcp guard approve`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx

from flash_mcp.core.advice import guard_command, guard_install_command
from flash_mcp.core.errors import UserError
from flash_mcp.planes.flash.client import FlashClient, guard_down
from flash_mcp.planes.flash.credentials import GUARD_SOURCE, Credentials

SOCKET_ENV = "FLASH_MCP_GUARD_SOCKET"
DEFAULT_SOCKET = Path("/run/flash-mcp-guard/guard.sock")
GUARD_URL = "http://flash-guard"
APPROVAL_REQUIRED = "guard_approval_required"

GUARDED = "guarded: the spend guard holds the key and budgets; a paid run starts only when the human approves it"


def unguarded() -> str:
    """What unguarded mode leaves open, and the command that installs the guard."""
    return (
        "unguarded: an agent with a shell as this user can approve runs, raise budgets and read the Flash key; "
        f"the human installs the guard with `{guard_install_command()}` (README: The spend guard)"
    )


def guard_socket() -> Path | None:
    """The guard's socket when one is installed here (FLASH_MCP_GUARD_SOCKET names another); None: unguarded.

    Fails closed: a guard that is installed (its folder exists, or the variable names it) but not serving is an
    error, never a quiet fallback to the human's own key."""
    named = os.environ.get(SOCKET_ENV)
    path = Path(named or DEFAULT_SOCKET)
    try:
        if stat.S_ISSOCK(path.stat().st_mode):
            return path
    except OSError:
        pass
    if named or path.parent.is_dir():
        raise UserError(guard_down())
    return None


def guarded_credentials() -> Credentials:
    return Credentials(GUARD_URL, "", key_source=GUARD_SOURCE)


def guard_transport(path: Path) -> httpx.HTTPTransport:
    return httpx.HTTPTransport(uds=str(path))


def approve_command(proposal_id: str) -> str:
    return guard_command("approve", proposal_id)


def propose(client: FlashClient, path: str, body: dict[str, Any], summary: str) -> dict[str, Any]:
    """Hand a spending request to the guard, which keeps the exact body: the proposal once the guard's own policy
    approved and submitted it; otherwise an error saying nothing was submitted and how the human approves."""
    proposal = client.request("POST", "/guard/v1/proposals", body={"path": path, "body": body, "summary": summary},
                              require={"id": str, "quote_usd": (int, float)})  # fmt: skip
    if proposal.get("status") == "submitted":
        return proposal
    how = proposal.get("approve_with") or f"`{approve_command(proposal['id'])}`"
    page = proposal.get("page")
    listed = f"; the guard's page {page} shows all it holds" if isinstance(page, str) and page else ""
    raise UserError(
        f"the spend guard holds this as proposal {proposal['id']} (${proposal['quote_usd']:.2f}); nothing was "
        f"submitted. The human approves it with {how}, then the same call finds it done{listed}"
    )


def proposals(client: FlashClient, status: str | None) -> list[dict[str, Any]]:
    """The guard's proposals (read over its socket; the human's user may read, never decide): for each its status,
    quote and, while it waits, how the human approves it."""
    path = "/guard/v1/proposals" + (f"?status={status}" if status else "")
    listed = client.request("GET", path, require={"proposals": list})["proposals"]
    return [p for p in listed if isinstance(p, dict)]
