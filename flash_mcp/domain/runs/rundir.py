"""The run directory contract between the server and a trainer process (no heavy imports)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import tempfile
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


# The run directory is the sandboxed trainer's to write: the server opens what it finds there by
# descriptor, never following a symlink the trainer planted (to settings.toml, Flash's credentials,
# /dev/zero) and never blocking on a FIFO; only regular files of bounded size are read.
_NOFOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_READ_BYTES = 256 << 20


def read_regular(path: Path, limit: int = MAX_READ_BYTES) -> str | None:
    """The text of a regular file in a run directory, or None (absent, a symlink, special, too big)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return handle.read(limit).decode("utf-8", errors="replace")


def touch(path: Path) -> None:
    """Create `path` if absent (a cancel marker), without following a symlink planted in its place."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600))


def write_json(path: Path, value: Any) -> None:
    """Atomic replace, so a reader never sees half a status; the temporary name is created, never reused."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(value))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    text = read_regular(path)
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        return None


def append_jsonl(path: Path, value: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(value) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = read_regular(path)
    if text is None:
        return []
    rows = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def set_status(run_dir: Path, **fields: Any) -> None:
    """Merge `fields` into the status; `changed_at` moves only when a value changed, `heartbeat_at` always."""
    status = read_json(run_dir / STATUS) or {}
    now = time.time()
    if any(status.get(key) != value for key, value in fields.items()):
        status["changed_at"] = now
    status.update(fields)
    status["heartbeat_at"] = now
    write_json(run_dir / STATUS, status)


class TrainerLock:
    """Held by a live trainer for its whole life; the server probes it to tell live from dead."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK
        self.handle = None

    def acquire(self) -> None:
        self.handle = self.path.open("a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)


def trainer_alive(run_dir: Path, name: str = LOCK) -> bool:
    """True while some process holds the run's lock (`name` in `run_dir`)."""
    try:
        fd = os.open(run_dir / name, os.O_WRONLY | os.O_APPEND | _NOFOLLOW)
    except OSError:
        return False
    with os.fdopen(fd, "a") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
