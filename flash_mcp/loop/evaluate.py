"""Use cases: evaluate a model target on held-out rows, read, list and cancel evaluations.

Plain Python (no MCP): the `evaluate` tools and the CLI call these. An evaluation is a job of its own
(FLASH_MCP_HOME/evals/<id>/, see domain/evaluation/record.py); `start_evaluation` returns at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.config.validate import load_toml, validate_raw
from flash_mcp.domain.evaluation.record import (
    CANCEL,
    FINAL_STATES,
    Evaluation,
    eval_dir,
    job_alive,
    list_eval_ids,
    load_evaluation,
    read_json,
    update_status,
    worker_scratch,
)
from flash_mcp.domain.evaluation.request import ConfigView, EvalRequest
from flash_mcp.domain.runs import rundir
from flash_mcp.loop.configs import project_dir_of
from flash_mcp.planes.base import Plane
from flash_mcp.sandbox import job_running, remove_scratch

__all__ = ["ConfigView", "EvalRequest", "load_config", "read_evaluation", "start_evaluation"]

SPAWN_GRACE_S = 10.0


def load_config(settings: ServerSettings, plane: Plane, config: str) -> ConfigView:
    """The resolved config, refusing an invalid one with its errors."""
    path = settings.workspace.resolve(config)
    project_dir = project_dir_of(path)
    validation = validate_raw(
        load_toml(path), project_required=plane.capabilities.requires_project, project_dir=project_dir
    )
    if not validation.valid or validation.resolved is None:
        listed = "; ".join(f"{e.key}: {e.message} (fix: {e.fix})" for e in validation.errors)
        raise UserError(f"{config} is invalid, nothing was evaluated: {listed}")
    return ConfigView(settings.workspace.relative(path), project_dir, validation.resolved.model_dump())


# -- reading, listing, cancelling --------------------------------------------------------------


def read_evaluation(home: Path, eval_id: str) -> Evaluation:
    """The evaluation as it stands; a job that died without finishing is marked failed (or cancelled)."""
    directory = _existing(home, eval_id)
    refresh(directory)
    evaluation = load_evaluation(directory)
    assert evaluation is not None
    return evaluation


def progress_of(home: Path, eval_id: str) -> tuple[str, int]:
    """(state, answers done) from status.json alone: cheap enough to poll while a job writes rows."""
    directory = _existing(home, eval_id)
    refresh(directory)
    status = read_json(directory / "status.json") or {}
    return str(status.get("state", "queued")), int(status.get("done") or 0)


def refresh(directory: Path) -> None:
    status = read_json(directory / "status.json") or {}
    if status.get("state") in FINAL_STATES:
        if not job_alive(directory):
            for scratch in worker_scratch(directory):  # the server's own record, never a path a job wrote
                remove_scratch(scratch)
        return
    if status.get("remote") and job_running(status.get("driver_pid")):
        return
    if status.get("remote"):  # the server driving a Flash-plane evaluation is gone
        update_status(directory, state="failed", finished_at=time.time(),
                      error="the server driving this evaluation stopped; if its deployment is still listed by "
                            "`flash models deployments`, undeploy it with `flash models undeploy`")  # fmt: skip
        return
    if job_alive(directory) or not _spawn_settled(status):
        return
    cancelled = (directory / CANCEL).exists()
    update_status(
        directory,
        state="cancelled" if cancelled else "failed",
        finished_at=time.time(),
        error=None if cancelled else "the evaluator process exited without finishing; its log is in the eval's log",
    )


def _spawn_settled(status: dict[str, Any]) -> bool:
    """A just-spawned evaluator takes a moment to take its lock; do not call it dead before then."""
    pid = status.get("pid")
    if pid is not None and not job_running(pid):
        return True
    return time.time() - float(status.get("updated_at") or 0) > SPAWN_GRACE_S and pid is None


def list_evaluations(home: Path, limit: int, offset: int) -> tuple[list[Evaluation], int]:
    ids = list_eval_ids(home)
    page = [read_evaluation(home, eval_id) for eval_id in ids[offset : offset + limit]]
    return page, len(ids)


def cancel_evaluation(home: Path, eval_id: str) -> Evaluation:
    directory = _existing(home, eval_id)
    refresh(directory)
    status = read_json(directory / "status.json") or {}
    if status.get("state") in FINAL_STATES:
        return read_evaluation(home, eval_id)
    rundir.touch(directory / CANCEL)
    if job_alive(directory) and status.get("pid"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(status["pid"], signal.SIGTERM)
    elif not status.get("remote"):
        update_status(directory, state="cancelled", finished_at=time.time())
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
