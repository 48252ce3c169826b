"""Planes: where runs go. One interface (`Plane`), a local and a Flash implementation."""

from __future__ import annotations

from flash_mcp.domain.errors import UserError
from flash_mcp.planes.base import Plane
from flash_mcp.settings import ServerSettings


def make_plane(settings: ServerSettings) -> Plane:
    if settings.plane == "local":
        from flash_mcp.planes.local.plane import LocalPlane

        return LocalPlane(settings.home)
    raise UserError("the flash plane is not available in this version of flash-mcp; serve with --plane local")
