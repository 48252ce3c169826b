"""Test an environment on every row out of process, and check a project statically."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.findings import Finding
from flash_mcp.core.workspace import Workspace
from flash_mcp.domain.approval.store import Proposal
from flash_mcp.domain.config.validate import load_toml
from flash_mcp.domain.envtest.report import EnvTestReport, Tally, build_report
from flash_mcp.domain.envtest.verdicts import EnvTestRecord, EnvTestStore, record_of
from flash_mcp.domain.packaging.package import current_digest
from flash_mcp.domain.project import safe_fs
from flash_mcp.domain.project.dataset import dataset_file, params_problems
from flash_mcp.domain.project.preflight import check_project as preflight
from flash_mcp.harness.runner import EnvTestJob, run_env_test
from flash_mcp.planes.base import SubmitRequest
from flash_mcp.sandbox import sandbox_settings

MAX_RESPONSES = 50
MAX_CONTRACT_BYTES = 1024 * 1024


class ProjectCheck(BaseModel):
    directory: str
    ok: bool = Field(description="True when there are no errors")
    errors: int
    warnings: int
    findings: list[Finding]


@dataclass(frozen=True)
class PreparedTest:
    """A checked request: the job to run, what the report needs, and what the server records afterwards."""

    job: EnvTestJob
    tally: Tally
    home: Path
    project: Path
    label: str
    config: str | None
    digest: str | None  # what a push of the project would record, taken before the test; None: not packageable


class EnvTestStanding(BaseModel):
    """What the server recorded about a package: its newest test, or else the newest test of the same project
    (of another digest: stale)."""

    digest: str | None
    exact: EnvTestRecord | None = None
    stale: EnvTestRecord | None = None


def prepare_test(
    workspace: Workspace,
    directory: str,
    config: str | None,
    rows: Literal["all"] | int,
    params: dict[str, Any],
    responses: list[dict[str, Any]],
    timeouts: tuple[float, float],
) -> PreparedTest:
    """Check the request and build the job: which rows, which params, what the report needs to know.
    Data outside the project and files a child would block on (a FIFO, a device) are refused here."""
    project = _project(workspace.resolve_dir(directory))
    if isinstance(rows, int) and rows < 1:
        raise UserError('rows must be "all" or a positive number')
    if len(responses) > MAX_RESPONSES:
        raise UserError(f"at most {MAX_RESPONSES} candidate responses per call")
    algorithm, thinking, merged, config_label = "grpo", False, dict(params), None
    if config:
        real = workspace.resolve(config)
        config_label = workspace.relative(real)
        algorithm, thinking, merged = _from_config(load_toml(real, config_label), params)
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
    tally = Tally(algorithm=algorithm, thinking=thinking, configured=bool(config))
    home = workspace.state_dir
    label = workspace.relative(project)
    return PreparedTest(job, tally, home, project, label, config_label, _digest(project, home))


def run_test(test: PreparedTest, progress: Callable[[int, int], None]) -> EnvTestReport:
    """Run every requested row in child processes (blocking); `progress(done, total)` as rows finish. The verdict
    is recorded under the package digest when the project still has the digest it had before the test."""
    capture = run_env_test(test.job, test.tally, progress)
    report = build_report(test.tally, capture.text(), capture.total, test.job.params)
    if test.digest is not None and _digest(test.project, test.home) == test.digest:
        record = record_of(report, test.digest, test.project, test.label, test.config, test.tally.algorithm)
        EnvTestStore(test.home).add(record)
    return report


def standing(home: Path, digest: str | None, project: Path | None) -> EnvTestStanding:
    """The newest recorded test of exactly `digest`, or else the newest of `project` (stale)."""
    store = EnvTestStore(home)
    exact = store.latest(digest) if digest else None
    stale = store.latest_of_project(str(project)) if exact is None and project is not None else None
    return EnvTestStanding(digest=digest, exact=exact, stale=stale)


def proposal_standing(home: Path, proposal: Proposal) -> EnvTestStanding:
    """The environment tests recorded for the package a proposal trains on (its pushed digest)."""
    try:
        project: Path | None = SubmitRequest.model_validate_json(proposal.request).project_dir
    except ValueError:
        project = None
    return standing(home, proposal.environment_digest, project)


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


def _digest(project: Path, home: Path) -> str | None:
    """The digest a push of the project would record now (the state directory never ships)."""
    try:
        return current_digest(project, exclude=(home,))
    except (UserError, OSError):
        return None


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
