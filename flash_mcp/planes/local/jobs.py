"""A local run's lifecycle and view: the trainer's files folded into the store by domain/lifecycle's rules.

The store holds what the trainer cannot touch (the sealed job, the pid and start time the server spawned);
the run directory holds what it reports (status, metrics), read with caps and judged, never obeyed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from flash_mcp.core.visible import clip
from flash_mcp.domain import job_files, lifecycle
from flash_mcp.domain.runs import rundir
from flash_mcp.planes.base import TERMINAL, RunView
from flash_mcp.planes.local.store import Store
from flash_mcp.sandbox import remove_scratch
from flash_mcp.sandbox.process import Spawned

ACTIVE = ("queued", "provisioning", "running")
LATEST_METRICS = 64


def record_of(row: dict[str, Any]) -> lifecycle.JobRecord:
    """The server's record of the run's trainer process, from its own store."""
    process = Spawned(row["pid"], row.get("pid_start")) if row.get("pid") else None
    return lifecycle.JobRecord(process, row["created_at"])


def status_of(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The trainer's status (an empty one if it cannot be read) and why it could not be read."""
    try:
        return rundir.load_json(run_dir / rundir.STATUS) or {}, None
    except rundir.Unreadable as exc:
        return {}, f"the trainer's {exc}"


def refresh(store: Store, row: dict[str, Any], disk_limit: int | None = None) -> dict[str, Any]:
    """Fold the trainer's reported state into the store, as far as the lifecycle rules let it count."""
    if row["state"] in TERMINAL:
        return _cleaned(store, row, disk_limit)
    run_dir = Path(row["run_dir"])
    status, unreadable = status_of(run_dir)
    record = record_of(row)
    alive = lifecycle.is_alive(record)
    update: dict[str, Any] = {}
    stopped = row["error"] if row["error"] and row["error"].startswith("stopped:") else None
    if alive and not stopped and (stopped := lifecycle.over_quota(run_dir, disk_limit)):
        lifecycle.cancel(record)
        update["error"] = stopped
    cancelled = (run_dir / rundir.CANCEL).exists()
    settled = lifecycle.settle(alive, status.get("state"), cancelled, "trainer", ACTIVE)
    if settled.final and stopped:
        settled = lifecycle.Settled("failed", True, stopped)
    if settled.state and settled.state != row["state"]:
        update["state"] = settled.state
    if settled.final:
        error = settled.error and (stopped or f"{settled.error}; read_run_logs shows why")
        if settled.state == "failed" and not error:
            error = _text(status.get("error")) or unreadable or "the trainer reported failure without a reason"
        update.update(finished_at=time.time(), error=error)
    if update:
        update["updated_at"] = update.get("finished_at") or time.time()  # the row handed on says when, too
        store.update_run(row["run_id"], **update)
        row = {**row, **update}
    return _cleaned(store, row, disk_limit) if row["state"] in TERMINAL else row


def _cleaned(store: Store, row: dict[str, Any], disk_limit: int | None) -> dict[str, Any]:
    """Once an ended run's trainer is gone: its environment-worker scratch removed (the server's own record, never a
    path a job wrote), then its directory brought to the run's layout and quota, once (domain/job_files.py)."""
    if (not row.get("worker_scratch") and row.get("files_settled")) or lifecycle.is_alive(record_of(row)):
        return row
    run_dir, update = Path(row["run_dir"]), {}
    if row.get("worker_scratch"):
        _keep_worker_log(Path(row["worker_scratch"]), run_dir)
        remove_scratch(row["worker_scratch"])
        update["worker_scratch"] = None
    claimed = None if row.get("files_settled") else store.claim_files(row["run_id"])  # one server thread settles
    if claimed:
        update["files_settled"] = claimed
        if notes := job_files.settle(run_dir, job_files.RUN_LAYOUT, disk_limit):
            update["notes"] = [*row["notes"], *notes]
    if update:
        store.update_run(row["run_id"], **update, updated_at=row["updated_at"])
    return {**row, **update}


def _keep_worker_log(scratch: Path, run_dir: Path, limit: int = 64 << 10) -> None:
    """The environment's own output (the worker's log: untrusted, its last 64 KiB of a regular file) appended to
    the run's log, so read_run_logs shows what the agent's code printed."""
    tail = rundir.read_regular(scratch / "log", limit) if (scratch / "log").is_file() else None
    if tail:
        with (run_dir / "log").open("a", encoding="utf-8") as log:
            log.write("\n----- the environment worker's output -----\n" + tail[-limit:])


def cancel(store: Store, row: dict[str, Any]) -> None:
    """Ask the trainer to stop: the marker, and SIGTERM to the process the server spawned (verified), only."""
    rundir.touch(Path(row["run_dir"]) / rundir.CANCEL)
    record = record_of(row)
    if not lifecycle.cancel(record) and not lifecycle.is_alive(record):
        store.update_run(row["run_id"], state="cancelled", finished_at=time.time())


def view(plane: str, row: dict[str, Any]) -> RunView:
    run_dir = Path(row["run_dir"])
    status, unreadable = status_of(run_dir)
    metrics = rundir.read_jsonl(run_dir / rundir.METRICS, max_bytes=rundir.MAX_LINE_BYTES * 4, max_rows=1)
    latest = _numbers(metrics[-1] if metrics else {})
    heartbeat = _number(status.get("heartbeat_at"))
    live = row["state"] not in TERMINAL
    return RunView(
        run_id=row["run_id"],
        plane=plane,
        state=row["state"],
        stage=_text(status.get("stage"), 80),
        algorithm=row["algorithm"],
        model=row["model"],
        trained_model=row["trained_model"] if row["trained_model"] != row["model"] else None,
        config=row["config"],
        environment_id=row["environment_id"],
        created_at=row["created_at"],
        updated_at=last_change(row, status, metrics),
        finished_at=row["finished_at"],
        step=_count(status.get("step")),
        total_steps=_count(status.get("total_steps")),
        heartbeat_age_s=round(time.time() - heartbeat, 1) if heartbeat and live else None,
        latest_metrics=latest,
        cost_usd=0.0,
        estimated_cost_usd=0.0,
        error=row["error"] or (unreadable if live else None),
        notes=row["notes"],
    )


def last_change(row: dict[str, Any], status: dict[str, Any], metrics: list[dict[str, Any]]) -> float:
    """When the run last changed: its record, the trainer's status (state, stage, step) or its newest metric.

    The trainer's files are untrusted: a time that is not a number, or lies in the future, counts for nothing.
    """
    now, told = time.time(), [status.get("changed_at"), (metrics[-1] if metrics else {}).get("time")]
    return max([row["updated_at"], *(t for t in map(_number, told) if t is not None and t <= now)])


def metric_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The trainer's metric rows (the file's bounded tail): a step that is a count, and its finite numbers."""
    rows = []
    for row in rundir.read_jsonl(run_dir / rundir.METRICS):
        step = _count(row.get("step"))
        if step is not None:
            stamp = _number(row.get("time"))
            rows.append({"step": step, **({"time": stamp} if stamp is not None else {}), **_numbers(row)})
    return rows


def run_timing(run: dict[str, Any]) -> tuple[float, float] | None:
    """(start-up and wind-down seconds, seconds per step) of a finished run, from its metric timestamps."""
    points = [(row["step"], row["time"]) for row in metric_rows(Path(run["run_dir"])) if "time" in row]
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    (first_step, first_time), (last_step, last_time) = points[0], points[-1]
    per_step = (last_time - first_time) / (last_step - first_step)
    overhead = (first_time - run["created_at"]) - per_step * first_step + (run["finished_at"] - last_time)
    return max(overhead, 0.0), per_step


def _number(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value: object, limit: int = 2000) -> str | None:
    return clip(value, limit) if isinstance(value, str) else None


def _numbers(row: dict[str, Any]) -> dict[str, float]:
    """A metric row's finite numbers (a few dozen at most), without its step and time."""
    found = ((str(k)[:80], _number(v)) for k, v in row.items() if k not in ("step", "time"))
    return dict([(k, v) for k, v in found if v is not None][:LATEST_METRICS])
