"""The local plane: environments pushed to this machine, runs trained here with TRL + PEFT."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flash_mcp.planes.local.capabilities import CAPABILITIES

if TYPE_CHECKING:
    from flash_mcp.planes.base import Plane

__all__ = ["CAPABILITIES", "make"]


def make(home: Path) -> Plane:
    from flash_mcp.planes.local.plane import LocalPlane

    return LocalPlane(home)
