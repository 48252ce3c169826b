"""Validate a training config, and edit it without losing comments."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from flash_mcp.core.errors import EditRefused, UserError
from flash_mcp.core.findings import Finding
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.config.edit import apply_edits, unified_diff
from flash_mcp.domain.config.resolve import ResolvedSpec
from flash_mcp.domain.config.validate import MAX_CONFIG_BYTES, Validation, load_toml, validate_raw
from flash_mcp.domain.project.files import locked
from flash_mcp.planes import capabilities_of


class ConfigIssue(BaseModel):
    """A config finding as the agent reads it: the dotted key it is about, what is wrong, the fix."""

    key: str = Field(description="Dotted key, e.g. 'train.group_size'")
    message: str = Field(description="What is wrong, in Flash's own words where Flash has them")
    fix: str = Field(description="A concrete change that resolves it")

    @classmethod
    def of(cls, finding: Finding) -> ConfigIssue:
        return cls(key=finding.where, message=finding.message, fix=finding.fix)


class ConfigReport(BaseModel):
    config: str = Field(description="The config file, relative to the workspace")
    valid: bool = Field(description="True when Flash 1.3.28 would accept this config")
    errors: list[ConfigIssue]
    warnings: list[ConfigIssue] = Field(description="Accepted by Flash, but likely to waste a run")
    resolved: ResolvedSpec | None = Field(description="What the run would train with, recipe defaults filled in")


class EditResult(BaseModel):
    config: str = Field(description="The config file, relative to the workspace")
    written: bool = Field(description="False for a preview; an edit that adds errors raises instead")
    diff: str = Field(description="Unified diff of the edit")
    validation: ConfigReport = Field(description="Validation of the edited config")


def project_dir_of(config: Path) -> Path:
    """configs/x.toml belongs to the project above configs/; a config elsewhere to its own folder."""
    return config.parent.parent if config.parent.name == "configs" else config.parent


def check(
    settings: ServerSettings, path: Path, raw: dict[str, Any], overrides: dict[str, Any] | None = None
) -> Validation:
    """Validate `raw` (read from `path`) as the current plane would: Flash requires a project."""
    return validate_raw(
        raw,
        overrides=overrides,
        project_required=capabilities_of(settings.plane).requires_project,
        project_dir=project_dir_of(path),
    )


def validate_config(settings: ServerSettings, path: str, overrides: dict[str, Any]) -> ConfigReport:
    real = settings.workspace.resolve(path)
    rel = settings.workspace.relative(real)
    return report(rel, check(settings, real, load_toml(real, rel), overrides))


def edit_config(
    settings: ServerSettings, path: str, set_keys: dict[str, Any], unset: list[str], preview: bool
) -> EditResult:
    """Apply the edit atomically, and only when it adds no error (errors already present are reported)."""
    if not set_keys and not unset:
        raise UserError("nothing to edit: pass set={'train.epochs': 3} and/or unset=['train.max_steps']")
    if any(value is None for value in set_keys.values()):
        raise UserError("a value of null cannot be written to TOML; use unset to remove a key")
    workspace = settings.workspace
    real = workspace.resolve(path, write=True)
    rel = workspace.relative(real)
    with locked(real, rel) as folder:  # read, check and replace as one step, across server processes
        exists = folder.lstat(real.name) is not None
        before = _decode(folder.read_bytes(real.name, MAX_CONFIG_BYTES, rel), rel) if exists else ""
        old = check(settings, real, _parse(before, rel)) if exists else None
        after = apply_edits(before, dict(set_keys), list(unset))
        new = check(settings, real, tomllib.loads(after))
        added = [e for e in new.errors if old is None or e not in old.errors]
        if added and not preview:
            raise EditRefused(path, added)
        diff = unified_diff(before, after, rel)
        if not preview:
            folder.replace(real.name, after.encode("utf-8"))
    return EditResult(config=rel, written=not preview, diff=diff, validation=report(rel, new))


def _decode(data: bytes, rel: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{rel} is not UTF-8 text; a config must be a UTF-8 TOML file") from None


def _parse(text: str, rel: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{rel} is not valid TOML: {exc}; fix the syntax first") from None


def report(path: str, validation: Validation) -> ConfigReport:
    return ConfigReport(
        config=path,
        valid=validation.valid,
        errors=[ConfigIssue.of(e) for e in validation.errors],
        warnings=[ConfigIssue.of(w) for w in validation.warnings],
        resolved=validation.resolved,
    )
