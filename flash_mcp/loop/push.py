"""Push an environment to the current plane and point the project's configs at the new id."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field

from flash_mcp.core.workspace import Workspace
from flash_mcp.domain.config.edit import apply_edits
from flash_mcp.domain.project.files import atomic_write, locked
from flash_mcp.planes.base import Plane, PushResult


class PushReport(PushResult):
    configs_updated: list[str] = Field(description="Configs whose [environment] id now names this push")
    configs_kept: list[str] = Field(description="Configs that name another environment, left alone")


def push_environment(
    workspace: Workspace, plane: Plane, directory: str, name: str, project: str | None, update_configs: bool
) -> PushReport:
    """Package as `flash env push` does, push, then write the id into configs that name no other environment."""
    target = workspace.resolve(directory)
    project_dir = target if target.is_dir() else target.parent
    project_id = project or _configs_project(project_dir)
    result = plane.push(target, name, project_id)
    updated, kept = _update_configs(workspace, project_dir, result.environment_id) if update_configs else ([], [])
    return PushReport(**result.model_dump(), configs_updated=updated, configs_kept=kept)


def _configs_project(project_dir: Path) -> str | None:
    for config in sorted((project_dir / "configs").glob("*.toml")):
        try:
            value = tomllib.loads(config.read_text(encoding="utf-8")).get("project")
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _update_configs(workspace: Workspace, project_dir: Path, environment_id: str) -> tuple[list[str], list[str]]:
    """Point configs at the new push unless they already name a different environment."""
    updated, kept = [], []
    prefix = environment_id.rsplit("/", 1)[0] + "/"
    for config in sorted((project_dir / "configs").glob("*.toml")):
        with locked(config):
            text = config.read_text(encoding="utf-8")
            try:
                env = tomllib.loads(text).get("environment") or {}
            except tomllib.TOMLDecodeError:
                kept.append(workspace.relative(config))
                continue
            current = str(env.get("id") or "") if isinstance(env, dict) else ""
            if current and current != environment_id and not current.startswith(prefix):
                kept.append(workspace.relative(config))
                continue
            if current != environment_id:
                atomic_write(config, apply_edits(text, {"environment.id": environment_id}, []).encode("utf-8"))
            updated.append(workspace.relative(config))
    return updated, kept
