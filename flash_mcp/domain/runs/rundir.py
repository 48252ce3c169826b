"""The run directory contract between the server and a trainer process (no heavy imports)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

JOB = "job.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples.jsonl"
LOG = "log"
LOCK = "lock"
CANCEL = "cancel"
CHECKPOINTS = "checkpoints"


def write_json(path: Path, value: Any) -> None:
    """Atomic replace, so a reader never sees half a status."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def append_jsonl(path: Path, value: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(value) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def set_status(run_dir: Path, **fields: Any) -> None:
    status = read_json(run_dir / STATUS) or {}
    status.update(fields)
    status["heartbeat_at"] = time.time()
    write_json(run_dir / STATUS, status)


class TrainerLock:
    """Held by a live trainer for its whole life; the server probes it to tell live from dead."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK
        self.handle = None

    def acquire(self) -> None:
        self.handle = self.path.open("a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)


def trainer_alive(run_dir: Path) -> bool:
    """True while some process holds the run's lock."""
    path = run_dir / LOCK
    if not path.exists():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
