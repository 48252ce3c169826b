"""The Flash plane: the hosted or self-hosted Flash control plane over HTTP, spoken as `flash` 1.3.28 speaks it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flash_mcp.planes.flash.capabilities import CAPABILITIES

if TYPE_CHECKING:
    from flash_mcp.planes.base import Plane

__all__ = ["CAPABILITIES", "make"]


def make(home: Path) -> Plane:
    from flash_mcp.planes.flash.plane import FlashPlane

    return FlashPlane(home)
