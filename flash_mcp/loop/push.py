"""Push an environment to the current plane and point the project's configs at the new id."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.workspace import Workspace
from flash_mcp.domain.config.edit import apply_edits
from flash_mcp.domain.config.validate import MAX_CONFIG_BYTES
from flash_mcp.domain.project import safe_fs
from flash_mcp.domain.project.files import list_files, locked
from flash_mcp.planes.base import Plane, PushResult


class PushReport(PushResult):
    configs_updated: list[str] = Field(description="Configs whose [environment] id now names this push")
    configs_kept: list[str] = Field(description="Configs that name another environment, left alone")


def push_environment(
    workspace: Workspace, plane: Plane, directory: str, name: str, project: str | None, update_configs: bool
) -> PushReport:
    """Package as `flash env push` does, push, then write the id into configs that name no other environment.
    A `configs/` that is a symlink (or has one above it) refuses the push before anything is sent."""
    target = workspace.resolve(directory)
    project_dir = target if target.is_dir() else target.parent
    configs = list_files(project_dir / "configs", ".toml", workspace.label(project_dir / "configs"))
    project_id = project or _configs_project(configs)
    result = plane.push(target, name, project_id)
    updated, kept = _update_configs(workspace, configs, result.environment_id) if update_configs else ([], [])
    return PushReport(**result.model_dump(), configs_updated=updated, configs_kept=kept)


def _configs_project(configs: list[Path]) -> str | None:
    for config in configs:
        try:
            value = tomllib.loads(safe_fs.read_text(config, MAX_CONFIG_BYTES, config.name)).get("project")
        except (OSError, UnicodeDecodeError, UserError, tomllib.TOMLDecodeError):
            continue
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _update_configs(workspace: Workspace, configs: list[Path], environment_id: str) -> tuple[list[str], list[str]]:
    """Point configs at the new push unless they already name a different environment. Each config is
    read and replaced by descriptor under its folder's cross-process lock."""
    updated, kept = [], []
    prefix = environment_id.rsplit("/", 1)[0] + "/"
    for config in configs:
        rel = workspace.relative(config)
        with locked(config, rel) as folder:
            try:
                text = folder.read_bytes(config.name, MAX_CONFIG_BYTES, rel).decode("utf-8")
                env = tomllib.loads(text).get("environment") or {}
            except (UnicodeDecodeError, UserError, tomllib.TOMLDecodeError):
                kept.append(rel)
                continue
            current = str(env.get("id") or "") if isinstance(env, dict) else ""
            if current and current != environment_id and not current.startswith(prefix):
                kept.append(rel)
                continue
            if current != environment_id:
                folder.replace(config.name, apply_edits(text, {"environment.id": environment_id}, []).encode("utf-8"))
            updated.append(rel)
    return updated, kept
