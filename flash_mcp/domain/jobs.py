"""One lifecycle for a detached job (a local training run, an evaluation): its directory holds `status.json`,
the cancel marker and the lock the job holds while it lives; the server knows its pid. One liveness rule for
both: alive while it holds its lock, or, before it has taken it, while its pid runs within the spawn grace.
A job that is not alive and never wrote a final state ended: cancelled when the marker is there, else failed."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import stat
import time
from pathlib import Path

from flash_mcp.domain.runs.rundir import touch
from flash_mcp.sandbox import job_running

LOCK, CANCEL = "lock", "cancel"
SPAWN_GRACE_S = 10.0  # a just-spawned job takes a moment to take its lock
_NOFOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def holds_lock(directory: Path) -> bool:
    """True while some process holds the job's lock (a symlink or FIFO there is not a lock)."""
    try:
        fd = os.open(directory / LOCK, os.O_WRONLY | os.O_APPEND | _NOFOLLOW)
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


def alive(directory: Path, pid: int | None, spawned_at: float) -> bool:
    """The liveness rule every detached job is judged by."""
    if holds_lock(directory):
        return True
    if pid is not None and not job_running(pid):
        return False
    return time.time() - spawned_at <= SPAWN_GRACE_S


def cancel_requested(directory: Path) -> bool:
    return (directory / CANCEL).exists()


def ended_state(directory: Path) -> str:
    """What a job that stopped without a final state ended as."""
    return "cancelled" if cancel_requested(directory) else "failed"


def cancel(directory: Path, pid: int | None) -> bool:
    """Leave the cancel marker and stop a live job's process group; False when no live job was there to stop
    (the caller records it cancelled)."""
    touch(directory / CANCEL)
    if not (holds_lock(directory) and pid):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    return True
