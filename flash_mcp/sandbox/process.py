"""The process the server spawned, as the server recorded it: its pid and its start time.

A pid alone names whichever process holds that number now; the start time (field 22 of /proc/PID/stat,
clock ticks since boot) tells the process the server spawned from a later one that reused its pid. Nothing
here reads a pid from a file a job wrote: callers pass the pid the server got back from `launch`.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Spawned:
    """A process this server started: `pid` and its /proc start time (None where /proc has none)."""

    pid: int
    start: int | None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3, the state, first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None if it is gone."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def spawned(pid: int) -> Spawned:
    """The record of a process just started (its start time read while it surely still exists)."""
    return Spawned(pid, start_time(pid))


def running(job: Spawned) -> bool:
    """Whether the process the server spawned still runs: same pid, same start time, not a zombie."""
    if job.pid <= 1:
        return False
    fields = _stat_fields(job.pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return job.start is None or start_time(job.pid) == job.start


def signal_job(job: Spawned, signum: int = signal.SIGTERM) -> bool:
    """Signal the process the server spawned (the sandbox supervisor, which forwards SIGTERM to its program
    and kills its whole namespace after the grace period); False if it is gone or its pid was reused.

    A pidfd pins the process while its start time is checked, so the signal cannot reach a successor."""
    if job.pid <= 1:
        return False
    try:
        fd = os.pidfd_open(job.pid)
    except (OSError, AttributeError):
        if not running(job):
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(job.pid, signum)
            return True
        return False
    try:
        if not running(job):
            return False
        signal.pidfd_send_signal(fd, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        os.close(fd)
