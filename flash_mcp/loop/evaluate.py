"""Use cases: evaluate a model target on held-out rows, read, list and cancel evaluations.

Plain Python (no MCP): the `evaluate` tools and the CLI call these. An evaluation is a job of its own
(FLASH_MCP_HOME/evals/<id>/, see domain/evaluation/record.py); `start_evaluation` returns at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import load_human_settings
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.config.validate import load_toml, validate_raw
from flash_mcp.domain.evaluation.record import (
    CANCEL,
    FINAL_STATES,
    EvalSpec,
    Evaluation,
    Sampling,
    eval_dir,
    job_alive,
    list_eval_ids,
    load_evaluation,
    new_eval_id,
    parse_target,
    read_json,
    update_status,
    write_json,
    write_spec,
)
from flash_mcp.domain.packaging.package import current_digest
from flash_mcp.domain.project.dataset import read_rows, row_id
from flash_mcp.domain.runs import rundir
from flash_mcp.loop.configs import project_dir_of
from flash_mcp.planes.base import Plane
from flash_mcp.planes.local.models import resolve_model
from flash_mcp.sandbox import job_running, launch_job, model_tree

JOB = "job.json"
FLASH_ONLY_PARAMS = ("dataset_path", "records")
SPAWN_GRACE_S = 10.0


@dataclass(frozen=True)
class EvalRequest:
    config: str
    target: str = "base"
    split: str = "test"
    suite: str | None = None  # an evaluations.py suite instead of the split's rows
    max_rows: int | None = None
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class ConfigView:
    path: str
    project_dir: Path
    spec: dict[str, Any]


def load_config(settings: ServerSettings, config: str) -> ConfigView:
    """The resolved config, refusing an invalid one with its errors."""
    path = settings.workspace.resolve(config)
    project_dir = project_dir_of(path)
    validation = validate_raw(load_toml(path), project_required=settings.plane == "flash", project_dir=project_dir)
    if not validation.valid or validation.resolved is None:
        listed = "; ".join(f"{e.key}: {e.message} (fix: {e.fix})" for e in validation.errors)
        raise UserError(f"{config} is invalid, nothing was evaluated: {listed}")
    return ConfigView(settings.workspace.relative(path), project_dir, validation.resolved.model_dump())


def held_out_rows(package: Path, split: str, max_rows: int | None) -> list[str]:
    """Split-qualified positional ids of the first max_rows rows of dataset/<split>.jsonl in the package."""
    if not split or not split.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"split {split!r}: use a dataset file name such as 'test' (dataset/test.jsonl)")
    path = next((p for p in (package / "dataset" / f"{split}.jsonl", package / "dataset" / f"{split}.json")
                 if p.is_file()), None)  # fmt: skip
    if path is None:
        raise UserError(
            f"the pushed environment has no dataset/{split}.jsonl: add held-out rows there (append_dataset_rows), "
            "keep them out of train.jsonl, and call push_environment again"
        )
    rows = read_rows(path)
    bad = [row.line for row in rows if row.error]
    if bad:
        raise UserError(f"dataset/{split}.jsonl has rows that are not JSON (lines {bad[:5]}); fix them and push again")
    if not rows:
        raise UserError(f"dataset/{split}.jsonl is empty; add held-out rows and push again")
    count = len(rows) if max_rows is None else min(len(rows), max_rows)
    return [f"{split}:{row_id(index)}" for index in range(count)]


def environment_params(spec: dict[str, Any], split: str | None) -> dict[str, Any]:
    """The config's environment params, reading `split` (when given) from the package, not the train data."""
    params = {k: v for k, v in (spec["environment"].get("params") or {}).items() if k not in FLASH_ONLY_PARAMS}
    if split is not None:
        params["split"] = split
    return params


# -- starting ----------------------------------------------------------------------------------


def start_local(settings: ServerSettings, plane: Any, request: EvalRequest) -> Evaluation:
    """Check everything a local evaluation needs, write its spec, start the evaluator process."""
    config = load_config(settings, request.config)
    spec = config.spec
    env_id = spec["environment"]["id"]
    push = plane.pushed(env_id)
    if push is None:
        raise UserError(f"{env_id} was never pushed locally; call push_environment first")
    if not _unchanged(Path(push.source), push.digest):
        raise UserError(
            f"the environment pushed as {env_id} changed on disk since the push; call push_environment again so "
            "the evaluation scores with the environment you tested"
        )
    package = Path(push.package)
    if request.suite:
        if not (package / "evaluations.py").is_file():
            raise UserError(
                "the pushed environment has no evaluations.py; add the suite beside environment.py and push"
            )
        split, row_ids, params = f"suite:{request.suite}", [], environment_params(spec, None)
    else:
        split, row_ids = request.split, held_out_rows(package, request.split, request.max_rows)
        params = environment_params(spec, request.split)
    model = resolve_model(spec["model"], load_human_settings(settings.home).local.stand_in_model)
    adapter = _local_adapter(plane, request.target, spec["model"], model.label)
    eval_id = new_eval_id()
    directory = eval_dir(settings.home, eval_id)
    record = EvalSpec(
        eval_id=eval_id, target=request.target, plane="local", config=config.path, model=spec["model"],
        adapter=adapter, environment_id=env_id, environment_digest=push.digest, split=split,
        row_ids=row_ids, sampling=request.sampling,
    )  # fmt: skip
    write_spec(directory, record)
    write_json(directory / JOB, {
        "entrypoint": str(package / "environment.py"), "params": params, "model_path": str(model.path),
        "adapter_path": adapter, "max_rows": request.max_rows, "notes": model.notes,
    })  # fmt: skip
    pid = spawn_evaluator(settings.home, directory, [package, model_tree(model.path), *([adapter] if adapter else [])])
    update_status(directory, pid=pid, notes=model.notes)
    return read_evaluation(settings.home, eval_id)


def _local_adapter(plane: Any, target: str, model: str, base_label: str) -> str | None:
    """The adapter directory of a RUN/... target (None for base), refusing one trained on another model."""
    try:
        run_id, _ = parse_target(target)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if run_id is None:
        return None
    run = plane.get_run(run_id)
    if run.model != model:
        raise UserError(f"{run_id} trained {run.model} but the config names {model}; evaluate with the run's config")
    if (run.trained_model or run.model) != base_label:
        raise UserError(
            f"{run_id} trained {run.trained_model or run.model}, but {model} now resolves to {base_label} here; "
            "its adapter would be scored on another base model. Restore the stand-in it trained with"
        )
    checkpoints = plane.checkpoints(run_id)
    for checkpoint in checkpoints:
        if checkpoint.id == target.strip() and checkpoint.path:
            return checkpoint.path
    saved = ", ".join(c.id for c in checkpoints) or "none yet"
    raise UserError(f"{target} is not a saved checkpoint of {run_id} (saved: {saved}); list_checkpoints shows them")


def _unchanged(source: Path, digest: str) -> bool:
    try:
        return current_digest(source) == digest
    except (UserError, OSError):
        return False


def spawn_evaluator(home: Path, directory: Path, read_only: list[Path | str]) -> int:
    """Start the evaluator in the sandbox, detached: a server restart leaves it running, cancel kills its tree.
    It reads the pushed package, the model and the adapter, and writes only its evaluation directory."""
    return launch_job(home, "flash_mcp.jobs.evaluator", directory, read_only)


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
    if status.get("state") in FINAL_STATES or (status.get("remote") and job_running(status.get("driver_pid"))):
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
    if plane.name == "local":
        return start_local(settings, plane, request)
    raise UserError(f"evaluate is not available on the {plane.name} plane; use the local or the flash plane")
