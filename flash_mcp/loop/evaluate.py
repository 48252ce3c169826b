"""Use cases: evaluate a model target on held-out rows, read, list and cancel evaluations.

Plain Python (no MCP): the `evaluate` tools and the CLI call these. An evaluation is a job of its own
(FLASH_MCP_HOME/evals/<id>/, see domain/evaluation/record.py); `start_evaluation` returns at once.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path

from flash_mcp.core.advice import flash_command
from flash_mcp.core.errors import ConfigInvalid, UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain import job_files, lifecycle
from flash_mcp.domain.config.validate import load_toml, validate_raw
from flash_mcp.domain.evaluation.record import (
    CANCEL,
    FINAL_STATES,
    Evaluation,
    eval_dir,
    judged,
    list_eval_ids,
    load_evaluation,
    read_json,
    read_spec,
    update_status,
    worker_scratch,
)
from flash_mcp.domain.evaluation.request import ConfigView, EvalRequest
from flash_mcp.domain.runs import rundir
from flash_mcp.loop.configs import project_dir_of
from flash_mcp.planes.base import Plane
from flash_mcp.sandbox import remove_scratch, sandbox_settings

__all__ = ["ConfigView", "EvalRequest", "load_config", "read_evaluation", "start_evaluation"]

ACTIVE = ("queued", "running")


def _driver_gone() -> str:
    return (
        "the server driving this evaluation stopped; if its deployment is still listed by "
        f"`{flash_command('models', 'deployments')}`, undeploy it with `{flash_command('models', 'undeploy')}`"
    )


def load_config(settings: ServerSettings, plane: Plane, config: str) -> ConfigView:
    """The resolved config, refusing an invalid one with its errors."""
    path = settings.workspace.resolve(config)
    project_dir = project_dir_of(path)
    validation = validate_raw(
        load_toml(path), project_required=plane.capabilities.requires_project, project_dir=project_dir
    )
    if not validation.valid or validation.resolved is None:
        raise ConfigInvalid(config, validation.errors, outcome="nothing was evaluated")
    return ConfigView(settings.workspace.relative(path), project_dir, validation.resolved.model_dump())


# -- reading, listing, cancelling --------------------------------------------------------------


def read_evaluation(home: Path, eval_id: str) -> Evaluation:
    """The evaluation as it stands; a job that died without finishing is marked failed (or cancelled)."""
    directory = _existing(home, eval_id)
    refresh(directory)
    evaluation = load_evaluation(directory)
    if evaluation is None:
        raise UserError(f"evaluation {eval_id!r} has no readable spec; it cannot be shown")
    return evaluation


def progress_of(home: Path, eval_id: str) -> tuple[str, int]:
    """(state, answers done) from status.json alone: cheap enough to poll while a job writes rows."""
    directory = _existing(home, eval_id)
    refresh(directory)
    status = read_json(directory / "status.json") or {}
    done = status.get("done")
    return judged(directory, status.get("state"), None)[0], done if isinstance(done, int) and done >= 0 else 0


def refresh(directory: Path) -> lifecycle.JobRecord:
    """Settle the evaluation by the lifecycle rules, from the server's record of the process it spawned."""
    spec = read_spec(directory)
    record = lifecycle.read_record(directory, spec.created_at if spec else 0.0)
    if record.ended:
        return record
    status = read_json(directory / "status.json") or {}
    if record.driver:  # this server's own thread drives a Flash-plane evaluation and seals its end itself
        if lifecycle.is_alive(record):
            return record
        return _end(directory, "failed", _driver_gone())
    reported = status.get("state")
    alive = lifecycle.is_alive(record) and (record.recorded or reported not in FINAL_STATES)
    if alive and not record.error and (stopped := lifecycle.over_quota(directory, _disk_limit(directory))):
        lifecycle.cancel(record)
        record = replace(record, error=stopped)
        lifecycle.write_record(directory, record)
    settled = lifecycle.settle(alive, reported, (directory / CANCEL).exists(), "evaluator", ACTIVE)
    if not settled.final or settled.state is None:
        return record
    if record.error:  # the server stopped it (its disk quota)
        return _end(directory, "failed", record.error)
    error = settled.error and f"{settled.error}; its log is in the eval's log"
    if settled.state == "failed" and not error:
        told = status.get("error")
        error = told[:2000] if isinstance(told, str) else "the evaluator reported failure without a reason"
    return _end(directory, settled.state, error)


def _disk_limit(directory: Path) -> int | None:
    return sandbox_settings(directory.parent.parent).job_disk_bytes  # FLASH_MCP_HOME/evals/<id>


def _end(directory: Path, state: str, error: str | None) -> lifecycle.JobRecord:
    status = read_json(directory / "status.json") or {}
    if status.get("state") != state:  # the job is gone: its status is the server's to finish
        update_status(directory, state=state, error=error, finished_at=time.time())
    for scratch in worker_scratch(directory):  # the server's own record, never a path a job wrote
        remove_scratch(scratch)
    return lifecycle.record_end(directory, state, error, job_files.settle_evaluation(directory, _disk_limit(directory)))


def list_evaluations(home: Path, limit: int, offset: int) -> tuple[list[Evaluation], int]:
    ids = list_eval_ids(home)
    page = []
    for eval_id in ids[offset : offset + limit]:
        with contextlib.suppress(UserError):  # one unreadable evaluation never hides the others
            page.append(read_evaluation(home, eval_id))
    return page, len(ids)


def cancel_evaluation(home: Path, eval_id: str) -> Evaluation:
    """The cancel marker, and SIGTERM to the evaluator process the server spawned (verified), nothing else."""
    directory = _existing(home, eval_id)
    record = refresh(directory)
    if record.ended:
        return read_evaluation(home, eval_id)
    rundir.touch(directory / CANCEL)
    if not record.driver and not lifecycle.cancel(record) and not lifecycle.is_alive(record):
        _end(directory, "cancelled", None)
    return read_evaluation(home, eval_id)


def _existing(home: Path, eval_id: str) -> Path:
    try:
        directory = eval_dir(home, eval_id)
    except ValueError as exc:
        raise UserError(f"{exc}; list_evaluations shows the evaluations") from None
    if not (directory / "spec.json").is_file():
        raise UserError(f"no evaluation {eval_id!r}; list_evaluations shows the evaluations")
    return directory


def start_evaluation(settings: ServerSettings, plane: Plane, request: EvalRequest) -> Evaluation:
    """An evaluation on a plane whose evaluation spends nothing (evaluate_flash.start_evaluation gates the rest)."""
    config = load_config(settings, plane, request.config)
    if plane.plan_evaluation(config, request) is not None:
        raise UserError(f"evaluating on the {plane.name} plane needs the human's approval; use the evaluate tool")
    return read_evaluation(settings.home, plane.start_evaluation(config, request, None, None, "not needed"))
