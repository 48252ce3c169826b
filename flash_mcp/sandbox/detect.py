"""Is this process inside a sandbox? `flash-mcp approve` refuses to run in one."""

from __future__ import annotations

import os
from pathlib import Path


def confined_reason() -> str | None:
    """Why this process looks sandboxed (our sandbox, or any agent sandbox like it), else None.

    Checked: the marker every sandboxed program gets (FLASH_MCP_SANDBOXED); no_new_privs, which a
    sandbox sets and no process can clear; and a single-id user namespace (how unprivileged sandboxes,
    ours included, map their user). An agent can unset the marker, but not the other two.
    """
    if os.environ.get("FLASH_MCP_SANDBOXED"):
        return "FLASH_MCP_SANDBOXED is set"
    if "\nNoNewPrivs:\t1" in _read("/proc/self/status"):
        return "no_new_privs is set"
    mapped = [line.split() for line in _read("/proc/self/uid_map").splitlines() if line.strip()]
    if len(mapped) == 1 and mapped[0][2] == "1":
        return "this process runs in a user namespace that maps one user"
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""
