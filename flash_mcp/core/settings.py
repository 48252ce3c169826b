"""Server settings: where the workspace and the human-owned state directory are."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flash_mcp.core.errors import UserError
from flash_mcp.core.workspace import Workspace

PLANES = ("local", "flash")


def default_home() -> Path:
    """`FLASH_MCP_HOME`, else ~/.flash-mcp."""
    return Path(os.environ.get("FLASH_MCP_HOME") or Path.home() / ".flash-mcp").expanduser()


@dataclass(frozen=True)
class ServerSettings:
    workspace: Workspace
    plane: str = "local"

    @property
    def home(self) -> Path:
        return self.workspace.state_dir

    @classmethod
    def create(cls, workspace: Path | str = ".", home: Path | str | None = None, plane: str | None = None):
        chosen = plane or os.environ.get("FLASH_MCP_PLANE") or "local"
        if chosen not in PLANES:
            source = "" if plane else " (from the FLASH_MCP_PLANE environment variable)"
            raise ValueError(f"unknown plane {chosen!r}{source}; choose one of: {', '.join(PLANES)}")
        return cls(workspace=Workspace.create(workspace, home or default_home()), plane=chosen)


def ensure_state_dir(home: Path) -> None:
    """Create the state directory and prove a file can be written in it, or say in one line why not."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if os.path.isfile(home):
            reason = "it is a file"
        raise UserError(
            f"the state directory {home} is unusable ({reason}); set FLASH_MCP_HOME to a folder you can write "
            "(default ~/.flash-mcp)"
        ) from None
