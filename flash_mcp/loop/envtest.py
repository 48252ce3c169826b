"""Test an environment on every row out of process, and check a project statically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.findings import Finding
from flash_mcp.core.workspace import Workspace
from flash_mcp.domain.config.validate import load_toml
from flash_mcp.domain.envtest.report import EnvTestReport, Tally, build_report
from flash_mcp.domain.project import safe_fs
from flash_mcp.domain.project.dataset import dataset_file, params_problems
from flash_mcp.domain.project.preflight import check_project as preflight
from flash_mcp.harness.runner import EnvTestJob, run_env_test
from flash_mcp.sandbox import sandbox_settings

MAX_RESPONSES = 50
MAX_CONTRACT_BYTES = 1024 * 1024


class ProjectCheck(BaseModel):
    directory: str
    ok: bool = Field(description="True when there are no errors")
    errors: int
    warnings: int
    findings: list[Finding]


def prepare_test(
    workspace: Workspace,
    directory: str,
    config: str | None,
    rows: Literal["all"] | int,
    params: dict[str, Any],
    responses: list[dict[str, Any]],
    timeouts: tuple[float, float],
) -> tuple[EnvTestJob, Tally]:
    """Check the request and build the job: which rows, which params, what the report needs to know.
    Data outside the project and files a child would block on (a FIFO, a device) are refused here."""
    project = _project(workspace.resolve_dir(directory))
    if isinstance(rows, int) and rows < 1:
        raise UserError('rows must be "all" or a positive number')
    if len(responses) > MAX_RESPONSES:
        raise UserError(f"at most {MAX_RESPONSES} candidate responses per call")
    algorithm, thinking, merged = "grpo", False, dict(params)
    if config:
        real = workspace.resolve(config)
        algorithm, thinking, merged = _from_config(load_toml(real, workspace.relative(real)), params)
    _check_inputs(workspace, project, merged)
    total_timeout_s, row_timeout_s = timeouts
    job = EnvTestJob(
        entrypoint=project / "environment.py",
        params=merged,
        limit=None if rows == "all" else rows,
        responses=responses,
        row_timeout_s=row_timeout_s,
        total_timeout_s=total_timeout_s,
        sandbox=sandbox_settings(workspace.state_dir),
    )
    return job, Tally(algorithm=algorithm, thinking=thinking, configured=bool(config))


def run_test(job: EnvTestJob, tally: Tally, progress: Callable[[int, int], None]) -> EnvTestReport:
    """Run every requested row in child processes (blocking); `progress(done, total)` as rows finish."""
    capture = run_env_test(job, tally, progress)
    return build_report(tally, capture.text(), capture.total, job.params)


def check_project(workspace: Workspace, directory: str, config: str | None) -> ProjectCheck:
    project = workspace.resolve_dir(directory)
    if not project.is_dir():
        raise UserError(f"{directory!r} is not a directory; pass the project folder")
    configs = [workspace.resolve(config)] if config else []
    findings = preflight(project, configs, workspace.relative)
    errors = sum(f.severity == "error" for f in findings)
    return ProjectCheck(
        directory=workspace.relative(project),
        ok=errors == 0,
        errors=errors,
        warnings=len(findings) - errors,
        findings=findings,
    )


def _project(directory: Path) -> Path:
    if not safe_fs.is_regular(directory / "environment.py"):
        raise UserError(
            f"no environment.py (a regular file) in {directory.name or 'the workspace'}; run setup_project first"
        )
    return directory


def _check_inputs(workspace: Workspace, project: Path, params: dict[str, Any]) -> None:
    """dataset_path, contract_path and split stay inside the project; the files they name are regular."""
    problems = params_problems(params)
    if problems:
        key, problem = problems[0]
        raise UserError(f"{key}: {problem}; nothing was run")
    dataset = dataset_file(project, params)
    if dataset is not None:
        with safe_fs.open_binary(dataset, workspace.label(dataset)):
            pass  # a regular, singly linked file: the child may read it
    contract = params.get("contract_path") if isinstance(params.get("contract_path"), str) else None
    contract = contract or "TRAINING_CONTRACT.md"
    if contract != "TRAINING_CONTRACT.md" or safe_fs.lstat(project / contract) is not None:
        safe_fs.read_bytes(project / contract, MAX_CONTRACT_BYTES, contract)  # regular, single link, small


def _from_config(raw: dict[str, Any], params: dict[str, Any]) -> tuple[str, bool, dict[str, Any]]:
    env = raw.get("environment") if isinstance(raw.get("environment"), dict) else {}
    configured = env.get("params") if isinstance(env.get("params"), dict) else {}
    algorithm = str(raw.get("algorithm") or "sft").lower()
    return algorithm, raw.get("thinking") is True, {**configured, **params}
