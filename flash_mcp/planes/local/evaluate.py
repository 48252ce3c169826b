"""A local evaluation: the evaluator job (flash_mcp/jobs/evaluator) in the sandbox, detached, with the config's model
(or its stand-in) and, for a RUN/... target, the run's adapter; beside it two environment workers on the pushed
package (flash_mcp/jobs/env_worker.py), the only processes that run the agent's code. `rescore` scores pairs again
(or replays multi-turn episodes, planes/local/replay.py) through a fresh worker for the comparison's consistency
check."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import load_human_settings
from flash_mcp.domain import lifecycle
from flash_mcp.domain.evaluation.record import (
    EvalSpec,
    eval_dir,
    new_eval_id,
    parse_target,
    update_status,
    write_json,
    write_spec,
    write_workers,
)
from flash_mcp.domain.evaluation.request import JOB, ConfigView, EvalRequest, environment_params, held_out_rows
from flash_mcp.planes.base import Plane, Rescore, Turns
from flash_mcp.planes.local.models import resolve_model
from flash_mcp.planes.local.replay import replay
from flash_mcp.runtime.worker import WorkerClient, WorkerError
from flash_mcp.sandbox import Spawned, kill_tree, launch_job, launch_worker, model_tree, remove_scratch


class LocalPlane(Plane, Protocol):
    """What a local evaluation needs of its plane (planes/local/plane.py)."""

    home: Path
    envs_dir: Path


def start(plane: LocalPlane, config: ConfigView, request: EvalRequest) -> str:
    """Check everything a local evaluation needs, write its spec, start the evaluator process; the eval id."""
    spec = config.spec
    env_id = spec["environment"]["id"]
    push = plane.pushed(env_id)
    if push is None:
        raise UserError(f"{env_id} was never pushed locally; call push_environment first")
    if not plane.push_unchanged(push):
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
    model = resolve_model(spec["model"], load_human_settings(plane.home).local.stand_in_model)
    adapter = _local_adapter(plane, request.target, spec["model"], model.label)
    eval_id = new_eval_id()
    directory = eval_dir(plane.home, eval_id)
    record = EvalSpec(
        eval_id=eval_id, target=request.target, plane="local", config=config.path, model=spec["model"],
        adapter=adapter, environment_id=env_id, environment_digest=push.digest, split=split,
        row_ids=row_ids, sampling=request.sampling, environment_params=params,
    )  # fmt: skip
    write_spec(directory, record)
    write_json(directory / JOB, {
        "entrypoint": str(package / "environment.py"), "params": params, "model_path": str(model.path),
        "adapter_path": adapter, "max_rows": request.max_rows, "notes": model.notes,
    })  # fmt: skip
    lifecycle.write_record(directory, lifecycle.JobRecord(None, time.time()))
    read_only = [model_tree(model.path), *([adapter] if adapter else [])]
    spawned = _spawn_evaluator(plane.home, directory, package, read_only)
    lifecycle.write_record(directory, lifecycle.JobRecord(spawned, time.time()))
    update_status(directory, notes=model.notes)
    return eval_id


def _local_adapter(plane: LocalPlane, target: str, model: str, base_label: str) -> str | None:
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


def _spawn_evaluator(home: Path, directory: Path, package: Path, read_only: list[Path | str]) -> Spawned:
    """Start two environment workers on the pushed package (one renders, one scores) and the evaluator beside
    them, all detached and under the human's training limits: a server restart leaves them running. The
    evaluator reads the model and the adapter, writes only its evaluation directory and runs no agent code; it
    alone holds the workers' pipe ends, and when it ends they see EOF and exit. Neither side can write what the
    other can."""
    workers = [launch_worker(home, package, limits="training", detached=True) for _ in range(2)]
    fds = tuple(fd for worker in workers for fd in (worker.to_worker, worker.from_worker))
    try:
        spawned = launch_job(home, "flash_mcp.jobs.evaluator", directory, read_only, pass_fds=fds,
                         args=[str(fd) for fd in fds])  # fmt: skip
    except BaseException:
        for worker in workers:
            kill_tree(worker.process)
            remove_scratch(worker.scratch)
        raise
    finally:
        for worker in workers:
            worker.close()
    write_workers(directory, [str(worker.scratch) for worker in workers])
    return spawned


RESCORE_BATCH = 256
RESCORE_TIMEOUT_S = 300.0


def rescore(plane: LocalPlane, spec: EvalSpec, pairs: list[tuple[str, str]], turns: Turns = None) -> Rescore:
    """Score the pairs again through a fresh worker on the package `spec` was measured with (kept by digest); a
    multi-turn environment's episodes are replayed from their recorded `turns` instead."""
    package = plane.envs_dir / spec.environment_digest
    if not (package / "environment.py").is_file():
        return Rescore(None, f"the environment {spec.environment_digest[:19]} is no longer kept here")
    suite = spec.split.removeprefix("suite:") if spec.split.startswith("suite:") else None
    if not suite and "split" not in spec.environment_params:
        return Rescore(None, "measured before evaluations recorded their environment params; evaluate again")
    worker = launch_worker(plane.home, package, limits="env_test")  # a short, synchronous re-score
    client = WorkerClient(worker.to_worker, worker.from_worker, timeout_s=RESCORE_TIMEOUT_S)
    try:
        loaded = client.load(entrypoint=str(package / "environment.py"), params=spec.environment_params,
                             split=None if suite else spec.split, suite=suite)  # fmt: skip
        if loaded.get("multi_turn"):
            return replay(client, pairs, turns or [None] * len(pairs), RESCORE_BATCH)
        scored = [s for start in range(0, len(pairs), RESCORE_BATCH) for s in
                  client.score(pairs[start : start + RESCORE_BATCH])]  # fmt: skip
    except WorkerError as exc:  # it scored the same package's rows for the evaluation: failing now refuses
        why = f"the environment's worker failed during the re-score: {exc}"
        return Rescore([None] * len(pairs), why, errors=[why] * len(pairs), failed=True)
    finally:
        client.close()
        kill_tree(worker.process)
        remove_scratch(worker.scratch)
    return Rescore([s.score if s.error is None else None for s in scored], errors=[s.error for s in scored])
