"""Config tools: validate a training config, edit it without losing comments."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server import MCPServer
from pydantic import Field

from flash_mcp.core.settings import ServerSettings
from flash_mcp.loop import configs
from flash_mcp.loop.configs import ConfigReport, EditResult
from flash_mcp.surface.server.planes import PlaneChoice, Planes
from flash_mcp.surface.server.registry import READ, add_tool

ConfigPath = Annotated[str, Field(description="Workspace-relative, e.g. 'configs/rl.toml'")]


def register(server: MCPServer, settings: ServerSettings, planes: Planes) -> None:
    def validate_config(
        config: ConfigPath,
        overrides: Annotated[
            dict[str, Any],
            Field(description="Dotted keys to override, like `flash train --set` (e.g. {'train.epochs': 3})"),
        ] = {},  # noqa: B006 - the schema default; never mutated
        plane: PlaneChoice = None,
    ) -> ConfigReport:
        """Check a training config against Flash 1.3.28's rules: each error with its key and a fix, warnings
        for what wastes a run, and the resolved spec."""
        return configs.validate_config(planes.settings_for(plane), config, overrides)

    def edit_config(
        config: ConfigPath,
        set: Annotated[dict[str, Any], Field(description="Dotted keys to set, e.g. {'train.epochs': 3}")] = {},  # noqa: B006
        unset: Annotated[list[str], Field(description="Dotted keys to remove, e.g. ['train.max_steps']")] = [],  # noqa: B006
        preview: Annotated[bool, Field(description="Show the diff and validation without writing")] = False,
    ) -> EditResult:
        """Set or unset a config's dotted keys, keeping every comment and untouched line; written atomically,
        and only when the edit adds no error."""
        return configs.edit_config(settings, config, set, unset, preview)

    add_tool(server, validate_config, title="Validate a training config", **READ)
    add_tool(server, edit_config, title="Edit a training config", read_only=False, destructive=True, idempotent=True)
