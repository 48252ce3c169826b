"""The planes one server acts on: its `--plane` by default, the other built the first time a tool names it.

Every plane-bound tool takes the same optional `plane` argument (`PlaneChoice`) and resolves it here, so an
agent rehearses on the local plane and validates, prices and proposes the same config on Flash in one session.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import PLANES, ServerSettings

if TYPE_CHECKING:
    from flash_mcp.loop.gate import Gate
    from flash_mcp.planes.base import Plane

# Described once, in the server's instructions: omitted, the server's --plane.
PlaneChoice = Annotated[Literal["local", "flash"] | None, Field()]


@dataclasses.dataclass(frozen=True)
class Bound:
    """One plane and what acts on it: settings naming that plane, and its spend gate."""

    settings: ServerSettings
    plane: Plane
    gate: Gate


class Planes:
    """The server's planes, built lazily by name; calling it with no name gives the server's `--plane`."""

    def __init__(self, settings: ServerSettings, factories: Mapping[str, Callable[[], Plane]] | None = None) -> None:
        self.settings = settings
        self._factories = dict(factories or {})
        self._planes: dict[str, Plane] = {}
        self._gates: dict[str, Gate] = {}
        self._lock = threading.Lock()

    def name(self, plane: str | None = None) -> str:
        chosen = plane or self.settings.plane
        if chosen not in PLANES:
            raise UserError(f"unknown plane {chosen!r}; choose one of: {', '.join(PLANES)}")
        return chosen

    def settings_for(self, plane: str | None = None) -> ServerSettings:
        return dataclasses.replace(self.settings, plane=self.name(plane))

    def __call__(self, plane: str | None = None) -> Plane:
        chosen = self.name(plane)
        with self._lock:
            if chosen not in self._planes:
                self._planes[chosen] = self._build(chosen)
            return self._planes[chosen]

    def gate(self, plane: str | None = None) -> Gate:
        from flash_mcp.loop.gate import Gate

        chosen, built = self.name(plane), self(plane)
        with self._lock:
            if chosen not in self._gates:
                self._gates[chosen] = Gate(self.settings.home, built, self.settings.workspace.root)
            return self._gates[chosen]

    def built(self) -> list[Plane]:
        """The planes already built; asking never builds one."""
        with self._lock:
            return list(self._planes.values())

    def bind(self, plane: str | None = None) -> Bound:
        """The one call a plane-bound tool makes with its `plane` argument."""
        return Bound(self.settings_for(plane), self(plane), self.gate(plane))

    def _build(self, name: str) -> Plane:
        factory = self._factories.get(name)
        if factory is not None:
            return factory()
        from flash_mcp.planes import make_plane

        return make_plane(self.settings_for(name))
