"""Planes: where runs go. One interface (`Plane`), a local and a Flash implementation."""

from __future__ import annotations

from flash_mcp.core.settings import ServerSettings
from flash_mcp.planes.base import Plane


def make_plane(settings: ServerSettings) -> Plane:
    if settings.plane == "flash":
        from flash_mcp.planes.flash.plane import FlashPlane

        return FlashPlane(settings.home)
    from flash_mcp.planes.local.plane import LocalPlane

    return LocalPlane(settings.home)
