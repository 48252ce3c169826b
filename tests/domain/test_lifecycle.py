"""The one detached-job lifecycle, as plain functions: liveness from the server's record, the settle rules, cancel."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from flash_mcp.domain import lifecycle
from flash_mcp.domain.lifecycle import JobRecord, Settled, settle
from flash_mcp.sandbox.process import Spawned, running, signal_job, spawned, start_time

ACTIVE = ("queued", "running")


@pytest.fixture
def sleeper():
    """A harmless process group of its own (`sleep`), killed however the test ends."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_a_live_job_reporting_an_end_stays_live() -> None:
    assert settle(True, "done", False, "trainer", ACTIVE) == Settled(None, False)
    assert settle(True, "cancelled", True, "trainer", ACTIVE) == Settled(None, False)
    assert settle(True, "running", False, "trainer", ACTIVE) == Settled("running", False)
    assert settle(True, {"state": "done"}, False, "trainer", ACTIVE) == Settled(None, False)


def test_a_dead_job_ends_as_it_reported_or_failed() -> None:
    assert settle(False, "done", False, "trainer", ACTIVE) == Settled("done", True)
    assert settle(False, "running", True, "trainer", ACTIVE) == Settled("cancelled", True)
    failed = settle(False, "running", False, "evaluator", ACTIVE)
    assert failed.state == "failed" and failed.final and "evaluator process exited without finishing" in failed.error
    assert settle(False, None, False, "trainer", ACTIVE).state == "failed"


def test_a_spawn_in_flight_is_alive_for_its_grace_only() -> None:
    record = JobRecord(None, at=1000.0)
    assert lifecycle.is_alive(record, now=1000.0 + lifecycle.SPAWN_GRACE_S - 1)
    assert not lifecycle.is_alive(record, now=1000.0 + lifecycle.SPAWN_GRACE_S + 1)


def test_liveness_is_the_recorded_process_with_its_start_time(sleeper: subprocess.Popen) -> None:
    record = spawned(sleeper.pid)
    assert record.start is not None and running(record)
    assert not running(Spawned(sleeper.pid, record.start + 1)), "a reused pid (another start time) is not the job"
    assert not running(Spawned(1, start_time(1)))
    sleeper.kill()
    sleeper.wait()
    assert not running(record)


def test_a_zombie_is_dead(sleeper: subprocess.Popen) -> None:
    record = spawned(sleeper.pid)
    os.kill(sleeper.pid, signal.SIGKILL)
    while (start_time(sleeper.pid) is not None) and running(record):
        os.sched_yield()  # until the kernel marks it a zombie; nobody has reaped it yet
    assert os.path.exists(f"/proc/{sleeper.pid}") and not running(record)


def test_cancel_signals_only_the_recorded_process(sleeper: subprocess.Popen) -> None:
    forged = JobRecord(Spawned(sleeper.pid, (start_time(sleeper.pid) or 0) + 7), at=0.0)
    assert not lifecycle.cancel(forged) and sleeper.poll() is None
    assert not lifecycle.cancel(JobRecord(Spawned(1, start_time(1)), at=0.0))
    assert not signal_job(Spawned(0, None))
    assert lifecycle.cancel(JobRecord(spawned(sleeper.pid), at=0.0))
    assert sleeper.wait(timeout=30) == -signal.SIGTERM


@pytest.mark.parametrize(
    "data", [None, {}, {"pid": "1"}, {"pid": True}, {"pid": 5, "start": "x", "at": "y", "ended": "won"}, {"pid": []}]
)
def test_a_record_that_is_not_one_reads_as_an_empty_one(data: object) -> None:
    record = JobRecord.from_json(data)  # type: ignore[arg-type]
    assert record.ended is None and record.at in (0.0,) and (record.process is None or record.process.start is None)


def test_the_record_lives_beside_the_job_directory_and_round_trips(tmp_path) -> None:
    job_dir = tmp_path / "evals" / "eval-1"
    job_dir.mkdir(parents=True)
    lifecycle.write_record(job_dir, JobRecord(Spawned(os.getpid(), start_time(os.getpid())), at=5.0))
    assert lifecycle.sealed_path(job_dir).parent == job_dir.parent
    assert lifecycle.is_alive(lifecycle.read_record(job_dir))
    ended = lifecycle.record_end(job_dir, "failed", "why")
    assert lifecycle.read_record(job_dir) == ended and ended.ended == "failed" and ended.at == 5.0


def test_only_the_sandbox_signals_processes() -> None:
    """The server signals a job only through the lifecycle's verified record (sandbox/process.py), never a pid
    it found elsewhere: no other module of the server calls os.kill or os.killpg. (The spend guard's uninstall, a
    root command of its own, stops the guard it started, checked to run as the guard's user.)"""
    package = Path(lifecycle.__file__).parents[1]
    found = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"os\.kill(pg)?\(", path.read_text(encoding="utf-8"))
        and path.parent.name not in ("sandbox", "jobs", "trainer", "evaluator", "harness", "guard")
    ]
    assert not found, found
