"""Plan and price a run without starting it: the submit request, dry_run and estimate_cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, Field

from flash_mcp.core.errors import ConfigInvalid
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.config.fit import hosted_estimate
from flash_mcp.domain.config.resolve import apply_overrides
from flash_mcp.domain.config.validate import Validation, read_config, validate_raw
from flash_mcp.loop.configs import ConfigIssue, project_dir_of
from flash_mcp.planes.base import DryRun, Plane, PlaneCapabilities, SubmitRequest


class DryRunReport(BaseModel):
    plane: str
    valid: bool
    errors: list[ConfigIssue]
    warnings: list[ConfigIssue]
    dry_run: DryRun | None = Field(description="Rows, steps, model, wall time and quote; null when invalid")


class CostReport(BaseModel):
    plane: str
    usd: float = Field(description="Expected cost on this plane")
    label: str
    hosted_estimate: dict[str, Any] = Field(
        description="Flash's own offline estimate for running this config hosted (GRPO/OPD): `usd` and its basis, "
        "or `usd` null and a `reason` (SFT has no offline estimate)"
    )


class ReadConfig(NamedTuple):
    """A config read once: the request a launch would submit, its validation, and what it came from."""

    request: SubmitRequest
    validation: Validation
    merged: dict[str, Any]  # overrides applied
    raw: dict[str, Any]  # as authored
    text: str  # the file as read
    path: Path


def submit_request(settings: ServerSettings, plane: Plane, config: str, overrides: dict[str, Any]) -> ReadConfig:
    """The request a launch of `config` would submit, its validation, and the config with overrides applied."""
    return read_request(settings, plane.capabilities, config, overrides)


def read_request(
    settings: ServerSettings, capabilities: PlaneCapabilities, config: str, overrides: dict[str, Any]
) -> ReadConfig:
    """`submit_request` for a plane known only by its capabilities (one not built yet: no login)."""
    workspace = settings.workspace
    path = workspace.resolve(config)
    text, raw = read_config(path, settings.workspace.relative(path))
    validation = validate_raw(
        raw,
        overrides=overrides,
        project_required=capabilities.requires_project,
        project_dir=project_dir_of(path),
    )
    spec = validation.resolved.model_dump() if validation.resolved else {}
    merged = apply_overrides(raw, overrides)
    request = SubmitRequest(
        config_path=workspace.relative(path),
        project_dir=project_dir_of(path),
        spec=spec,
        authored_train_keys=validation.resolved.authored_keys if validation.resolved else [],
        raw=merged,
        secret_folders=list(dict.fromkeys([workspace.root, path.parent])),
    )
    return ReadConfig(request, validation, merged, raw, text, path)


def dry_run(settings: ServerSettings, plane: Plane, config: str, overrides: dict[str, Any]) -> DryRunReport:
    request, validation, merged, *_ = submit_request(settings, plane, config, overrides)
    planned = plane.dry_run(request) if validation.valid else None
    if planned is not None:
        hosted = hosted_estimate(merged)
        planned.quote.hosted_estimate_usd = hosted["usd"]
        if hosted["usd"] is None and not plane.capabilities.quotes_hosted:
            planned.notes.append(f"hosted estimate: {hosted['reason']}")
    return DryRunReport(
        plane=plane.name,
        valid=validation.valid,
        errors=[ConfigIssue.of(e) for e in validation.errors],
        warnings=[ConfigIssue.of(w) for w in validation.warnings],
        dry_run=planned,
    )


def estimate_cost(settings: ServerSettings, plane: Plane, config: str, overrides: dict[str, Any]) -> CostReport:
    request, validation, merged, *_ = submit_request(settings, plane, config, overrides)
    if not validation.valid:
        raise ConfigInvalid(config, validation.errors, outcome="so it cannot be priced")
    quote = plane.dry_run(request).quote
    return CostReport(plane=quote.plane, usd=quote.usd, label=quote.label, hosted_estimate=hosted_estimate(merged))
