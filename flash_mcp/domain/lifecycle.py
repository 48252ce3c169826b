"""One lifecycle for every detached job (training runs, local evaluations, the server driving a Flash evaluation).

The server records, out of the job's reach, the process it spawned (pid and start time) and when. Liveness is
decided from that record only, never from a pid, lock or state named in a file the job wrote:

- a job whose process is not known yet (the spawn in flight) is alive for `SPAWN_GRACE_S`, then dead;
- while the spawned process lives, a terminal state the job reports counts for nothing (a forged `done` stops
  no watch and frees no slot); once it has exited, the state it reported last is its end;
- dead without a terminal state means failed (or cancelled, when a cancel was asked for);
- a cancel signals only the recorded process, verified by its start time.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flash_mcp.domain.runs import rundir
from flash_mcp.sandbox.process import Spawned, running, signal_job

SPAWN_GRACE_S = 10.0
MAX_ENTRIES = 20_000
ENDED = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class JobRecord:
    """What the server knows of a job it started: the process (None while the spawn is in flight), when, whether
    it is this server's own thread driving a remote job (`driver`), and, once settled, how it ended."""

    process: Spawned | None
    at: float
    driver: bool = False
    ended: str | None = None
    error: str | None = None
    recorded: bool = True  # False: a job from before the server kept records (its reported end is believed)
    notes: tuple[str, ...] = ()  # the server's own, e.g. what it removed from the job's directory at the end

    def to_json(self) -> dict[str, Any]:
        pid, start = (self.process.pid, self.process.start) if self.process else (None, None)
        return {"pid": pid, "start": start, "at": self.at, "driver": self.driver, "ended": self.ended,
                "error": self.error, "notes": list(self.notes)}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> JobRecord:
        data = data or {}
        pid, start, at = data.get("pid"), data.get("start"), data.get("at")
        process = Spawned(pid, start if _int(start) else None) if _int(pid) else None
        ended, error, notes = data.get("ended"), data.get("error"), data.get("notes")
        return cls(
            process, float(at) if _int(at) or isinstance(at, float) else 0.0, data.get("driver") is True,
            ended if ended in ENDED else None, error if isinstance(error, str) else None,
            notes=tuple(n for n in notes if isinstance(n, str)) if isinstance(notes, list) else (),
        )  # fmt: skip


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Settled:
    """A job's state as the server decides it: `state` (None = keep what it was), `final`, an error if it failed."""

    state: str | None
    final: bool
    error: str | None = None


def is_alive(record: JobRecord, now: float | None = None) -> bool:
    """The one liveness rule: the recorded process runs, or the spawn is in flight and within its grace."""
    if record.process is None:
        return (time.time() if now is None else now) - record.at < SPAWN_GRACE_S
    return running(record.process)


def settle(alive: bool, reported: object, cancel_requested: bool, what: str, active: tuple[str, ...]) -> Settled:
    """Decide a job's state from its liveness (the server's) and the state it reported (the job's).

    `active` are the states a live job may report; `what` names the process in the error ("trainer")."""
    if alive:
        return Settled(reported if reported in active else None, False)
    if reported in ENDED:
        return Settled(str(reported), True)
    if cancel_requested:
        return Settled("cancelled", True)
    return Settled("failed", True, f"the {what} process exited without finishing")


def cancel(record: JobRecord) -> bool:
    """SIGTERM to the process the server spawned (a graceful cancel); False if it is not running."""
    return record.process is not None and signal_job(record.process)


def disk_used(job_dir: Path, limit: int) -> int:
    """Bytes under `job_dir` (no symlink followed), counting stops once past `limit` or MAX_ENTRIES files."""
    total, entries, pending = 0, 0, [str(job_dir)]
    while pending and total <= limit:
        try:
            scan = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in scan:
            entries += 1
            if entries > MAX_ENTRIES:
                return limit + 1
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
    return total


def over_quota(job_dir: Path, limit: int | None) -> str | None:
    """Why a live job must be stopped for what it wrote into its directory, or None."""
    if not limit or disk_used(job_dir, limit) <= limit:
        return None
    return f"stopped: it wrote more than {limit >> 20} MiB into its directory (job_disk_mb in settings.toml)"


def sealed_path(job_dir: Path) -> Path:
    """The server's record of the job in `job_dir`, beside the directory: out of the sandboxed job's reach."""
    return job_dir.parent / f".{job_dir.name}.process.json"


def write_record(job_dir: Path, record: JobRecord) -> None:
    rundir.write_json(sealed_path(job_dir), record.to_json())


def read_record(job_dir: Path, born: float = 0.0) -> JobRecord:
    """The server's record of the job in `job_dir`; without one, a spawn not yet recorded since `born`."""
    data = rundir.read_json(sealed_path(job_dir))
    return JobRecord.from_json(data) if data is not None else JobRecord(None, born, recorded=False)


def record_end(job_dir: Path, state: str, error: str | None, notes: list[str] | None = None) -> JobRecord:
    """Seal how the job ended (and the server's `notes` on it): from now on the server reads its end from here, not
    from the job's files."""
    record = read_record(job_dir)
    record = replace(record, ended=state, error=error, notes=tuple(dict.fromkeys([*record.notes, *(notes or ())])))
    write_record(job_dir, record)
    return record
