"""Planes: where runs go. One interface (`Plane`, planes/base.py); each plane is a package (or module) that
exposes `CAPABILITIES` and `make(home)`, registered here by one line."""

from __future__ import annotations

import importlib

from flash_mcp.core.settings import ServerSettings
from flash_mcp.planes.base import Plane, PlaneCapabilities

REGISTERED = {
    "local": "flash_mcp.planes.local",
    "flash": "flash_mcp.planes.flash",
    "memory": "flash_mcp.planes.memory",
}


def _module(name: str):
    if name not in REGISTERED:
        raise ValueError(f"unknown plane {name!r}; choose one of: {', '.join(REGISTERED)}")
    return importlib.import_module(REGISTERED[name])


def capabilities_of(name: str) -> PlaneCapabilities:
    """What the plane `name` can do, without building it (no key, no network)."""
    return _module(name).CAPABILITIES


def make_plane(settings: ServerSettings) -> Plane:
    return _module(settings.plane).make(settings.home)
