"""Run the environment test in child processes: timeouts, restarts, bounded output capture.

Each child (`flash_mcp/jobs/envtest_child.py`) reports rows in batches and records which row it is running, and
since when, in a shared 16-byte file. A row that runs past its timeout gets the child's process group killed and
is recorded as hung; a fresh child resumes after it. A child that dies (`os._exit`, a signal) is handled the same.

Large datasets are split across lanes (lanes.py), one child per CPU core (two at most): lane k checks the
rows whose index is k modulo the lane count.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_hex
from typing import Any

from flash_mcp.domain.envtest.report import Tally
from flash_mcp.harness.capture import Capture
from flash_mcp.harness.channel import (
    MAX_LINE,
    ProtocolError,
    RowClock,
    loaded_info,
    plain_run,
    response_record,
    row_record,
    text,
)
from flash_mcp.harness.lanes import lane_count
from flash_mcp.harness.probe_check import ProbeCheck
from flash_mcp.harness.scratch import fresh_file
from flash_mcp.harness.wire import KEY, LOADING, PROGRESS, RUN, TYPE, Message
from flash_mcp.sandbox import SandboxSettings, SandboxSpec, kill_tree, launch, python_argv

LOAD_TIMEOUT_S = 120.0
MAX_RESTARTS = 5
POLL_SECONDS = 0.1
PROGRESS_SECONDS = 0.2  # each progress notification waits on the event loop, holding the lanes' lock

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class EnvTestJob:
    entrypoint: Path
    params: dict[str, Any]
    limit: int | None
    responses: list[dict[str, Any]]
    row_timeout_s: float
    total_timeout_s: float
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)


@dataclass
class _Shared:
    """What lanes share, behind one lock."""

    job: EnvTestJob
    tally: Tally
    capture: Capture
    on_progress: ProgressFn | None
    deadline: float
    scratch: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    restarts: int = 0
    reported: float = -PROGRESS_SECONDS  # when on_progress was last called (monotonic)


def run_env_test(job: EnvTestJob, tally: Tally, on_progress: ProgressFn | None = None) -> Capture:
    """Check every requested row, across lanes, until done or a limit is hit."""
    lanes = lane_count(job.entrypoint.parent, job.params, job.limit)
    with tempfile.TemporaryDirectory(prefix="flash-mcp-envtest-") as scratch:
        shared = _Shared(job, tally, Capture(), on_progress, time.monotonic() + job.total_timeout_s, Path(scratch))
        if lanes == 1:
            _Lane(shared, 0, 1).run()
        else:
            with ThreadPoolExecutor(max_workers=lanes) as pool:
                for future in [pool.submit(_Lane(shared, k, lanes).run) for k in range(lanes)]:
                    future.result()
        return shared.capture


class _Lane:
    """One sequence of children checking rows offset, offset + stride, …"""

    def __init__(self, shared: _Shared, offset: int, stride: int):
        self.shared, self.offset, self.stride = shared, offset, stride
        self.next_row = offset
        self.skip: set[int] = set()
        self.scratch = shared.scratch / f"lane-{offset}"
        self.scratch.mkdir()
        self.progress_path = self.scratch / "progress"

    def due(self) -> int:
        """The next row this lane must see reported (rows it skipped after a hang are not due)."""
        row = self.next_row
        while row in self.skip:
            row += self.stride
        return row

    def take(self, count: int) -> Sequence[int]:
        """The next `count` rows due, in order; the lane moves past them."""
        if self.skip:  # a hung row to step over: row by row
            rows = []
            for _ in range(count):
                rows.append(self.due())
                self.next_row = rows[-1] + self.stride
            return rows
        ahead = range(self.next_row, self.next_row + count * self.stride, self.stride)  # the common case
        self.next_row = ahead[-1] + self.stride
        return ahead

    def run(self) -> None:
        shared = self.shared
        while True:
            ended = _Child(self).run()
            if ended.kind in ("done", "load_error", "deadline", "violation"):
                if ended.kind == "deadline":
                    with shared.lock:
                        shared.tally.stopped(f"stopped after the total timeout of {shared.job.total_timeout_s:g}s")
                return
            with shared.lock:
                if ended.row < LOADING:
                    shared.tally.response_lost(-2 - ended.row, ended.detail)
                    return
                shared.tally.lost_row(ended.row, ended.kind, ended.detail)
                shared.restarts += 1
                if shared.restarts > MAX_RESTARTS:
                    shared.tally.stopped(f"stopped after {MAX_RESTARTS} hung or crashed rows")
                    return
            self.skip.add(ended.row)


@dataclass(frozen=True)
class _Ended:
    kind: str  # done | load_error | deadline | timeout | crash
    row: int = -1
    detail: str = ""


class _Child:
    def __init__(self, lane: _Lane):
        self.lane, self.shared = lane, lane.shared
        self.buffer = b""
        self.finished = False
        self.loaded = False
        self.responses = 0
        self.violation: str | None = None
        self.key = token_hex(16)

    def run(self) -> _Ended:
        # Opened before the child starts, by descriptor: what a previous child left in the scratch
        # (a symlink to settings.toml, a FIFO) is removed, never written through or blocked on.
        progress_fd = fresh_file(self.lane.progress_path, PROGRESS.pack(LOADING, 0.0), keep_open=True)
        try:
            return self._run(progress_fd)
        finally:
            os.close(progress_fd)

    def _run(self, progress_fd: int) -> _Ended:
        read_fd, write_fd = os.pipe()
        self.spawned = time.monotonic()
        self.clock, self.probes = RowClock(self.spawned, LOADING), ProbeCheck(self.spawned)
        try:
            process = self._spawn(write_fd)
        finally:
            os.close(write_fd)
        selector = selectors.DefaultSelector()
        selector.register(read_fd, selectors.EVENT_READ, "results")
        selector.register(process.stdout, selectors.EVENT_READ, "output")
        try:
            return self._watch(process, selector, progress_fd)
        finally:
            kill_tree(process)
            if process.stdout:
                process.stdout.close()
            selector.close()
            os.close(read_fd)

    def _spawn(self, write_fd: int) -> subprocess.Popen:
        job, lane = self.shared.job, self.lane
        payload = {
            "entrypoint": str(job.entrypoint),
            "params": job.params,
            "start": lane.next_row,
            "stop": job.limit if job.limit is not None else sys.maxsize,
            "stride": lane.stride,
            "skip": sorted(lane.skip),
            "responses": job.responses if lane.offset == 0 else [],
            "key": self.key,
        }
        job_path = lane.scratch / "job.json"
        fresh_file(job_path, json.dumps(payload).encode())
        policy = job.sandbox
        argv = python_argv("flash_mcp.jobs.envtest_child", str(write_fd), str(lane.progress_path), str(job_path))
        return launch(
            SandboxSpec(
                argv,
                read_only=[job.entrypoint.parent],
                read_write=[lane.scratch],
                limits=policy.limits,
                pass_fds=(write_fd,),
                cwd=job.entrypoint.parent,
                stdout=subprocess.PIPE,
                allow_unsandboxed=policy.allow_unsandboxed,
                state_dir=policy.state_dir,
                preload=policy.preload_jobs,
            )
        )

    def _watch(self, process: subprocess.Popen, selector: selectors.BaseSelector, progress: int) -> _Ended:
        results_open = True
        while results_open:
            for key, _ in selector.select(POLL_SECONDS):
                chunk = os.read(key.fd if key.data == "results" else process.stdout.fileno(), 1 << 16)
                if key.data == "output":
                    if chunk:
                        with self.shared.lock:
                            self.shared.capture.feed(chunk)
                    else:
                        selector.unregister(process.stdout)
                elif chunk:
                    self._events(chunk)
                else:
                    results_open = False
            overdue = None if self.violation else self._overdue(progress)
            if self.violation:
                return self._broken()
            if overdue:
                return overdue
            if self.shared.tally.load_error:
                return _Ended("load_error")
        self._drain_output(process)
        if self.buffer:
            self.violation = "an unterminated message"
        if self.violation:
            return self._broken()
        if self.finished:
            return _Ended("done")
        code = process.wait()
        if self.clock.row == LOADING:
            with self.shared.lock:
                self.shared.tally.load_failed(
                    f"the environment process exited with code {code} while loading environment.py"
                )
            return _Ended("load_error")
        detail = f"the environment process exited with code {code} while running this row"
        return _Ended("crash", self.clock.row, detail)

    def _broken(self) -> _Ended:
        with self.shared.lock:
            self.shared.tally.stopped(
                f"the environment process broke the results protocol ({self.violation}); its results are not "
                "trusted. Environment code must not write to the test's results descriptor or progress file"
            )
        return _Ended("violation")

    def _overdue(self, progress: int) -> _Ended | None:
        """The server's clock: rows are timed from when the server saw them start (see RowClock)."""
        now = time.monotonic()
        data = os.pread(progress, PROGRESS.size, 0)  # never mmap: a file the child truncates would SIGBUS us
        if len(data) < PROGRESS.size:
            self.violation = "the progress file was truncated"
            return None
        self.clock.observe(PROGRESS.unpack(data)[0], now)
        row = self.clock.row
        if row == LOADING and (now > self.shared.deadline or now - self.spawned > LOAD_TIMEOUT_S):
            with self.shared.lock:
                self.shared.tally.load_failed(f"loading environment.py did not finish within {now - self.spawned:.0f}s")
            return _Ended("load_error")
        if now > self.shared.deadline:
            return _Ended("deadline")
        timeout = self.shared.job.row_timeout_s
        if row != LOADING and now - self.clock.since > timeout:
            return _Ended("timeout", row, f"did not finish within the row timeout of {timeout:g}s")
        return None

    def _events(self, chunk: bytes) -> None:
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > MAX_LINE or any(len(line) > MAX_LINE for line in lines):
            self.violation = f"a message longer than {MAX_LINE >> 20} MiB"
            return
        for line in lines:
            if self.violation:
                return
            try:
                self._event(line)
            except ProtocolError as exc:
                self.violation = str(exc)

    def _event(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            raise ProtocolError("a line that is not JSON") from None
        kind = event.get(TYPE) if isinstance(event, dict) else None
        if kind is None or event.pop(KEY, None) != self.key:
            raise ProtocolError("a message without this test's key, so not from the test harness")
        if self.finished:
            raise ProtocolError(f"a message after `{Message.DONE}`")
        if kind == Message.LOADED and self.loaded:
            raise ProtocolError(f"`{Message.LOADED}` twice")
        if kind not in (Message.LOADED, Message.LOAD_ERROR) and not self.loaded:
            raise ProtocolError(f"a {kind!r} message before `{Message.LOADED}`")
        self.clock.message(time.monotonic())
        tally = self.shared.tally
        with self.shared.lock:
            if kind == Message.ROWS:
                self._rows(event.get("rows"))
            elif kind == Message.LOADED:
                tally.loaded(loaded_info(event, tally.rows_total))
                self.loaded = True
            elif kind == Message.LOAD_ERROR:
                tally.load_failed(*(text(event.get(k, ""), what=k) for k in ("message", "trace")))
            elif kind == Message.RESPONSE:
                self._response(event)
            elif kind == Message.DONE:
                self._done()
            else:
                raise ProtocolError(f"an unknown message type {kind!r}")

    def _rows(self, rows: Any) -> None:
        if not isinstance(rows, list) or self.responses:
            raise ProtocolError("a malformed `rows` message")
        lane, tally, end = self.lane, self.shared.tally, self._end()
        for row in rows:
            if type(row) is dict and RUN in row:
                self._plain_run(row, end)
                continue
            checked = self.probes.check(row_record(row, lane.due()), tally)
            if checked["i"] >= end:
                raise ProtocolError(f"row {checked['i']} is past the rows asked for")
            tally.add_row(checked)
            lane.next_row = checked["i"] + lane.stride
        shared = self.shared
        if shared.on_progress:  # under the lock, so progress only ever rises; at most every PROGRESS_SECONDS
            done, target, now = tally.checked, tally.target_rows(shared.job.limit), time.monotonic()
            if done >= target or now - shared.reported >= PROGRESS_SECONDS:
                shared.reported = now
                shared.on_progress(done, target)

    def _plain_run(self, item: dict[str, Any], end: int) -> None:
        """Consecutive plain rows (`wire.packed`): each the row due next, none due every probe."""
        lane, tally = self.lane, self.shared.tally
        values = plain_run(item, lane.due())
        indices = lane.take(len(values) // 4)
        if indices[-1] >= end:
            raise ProtocolError(f"row {next(i for i in indices if i >= end)} is past the rows asked for")
        self.probes.plain(indices, tally)
        tally.add_plain(indices, values)

    def _response(self, event: dict[str, Any]) -> None:
        if self.lane.offset != 0 or self.responses >= len(self.shared.job.responses) or self.lane.due() < self._end():
            raise ProtocolError("a candidate score that was not asked for (or before every row)")
        self.shared.tally.add_response(response_record(event))
        self.responses += 1

    def _done(self) -> None:
        due, end = self.lane.due(), self._end()
        wanted = len(self.shared.job.responses) if self.lane.offset == 0 else 0
        if due < end or self.responses != wanted:
            raise ProtocolError(f"`done` before every row was reported (next due row {due} of {end})")
        self.finished = True

    def _drain_output(self, process: subprocess.Popen) -> None:
        try:
            rest, _ = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            return
        if rest:
            with self.shared.lock:
                self.shared.capture.feed(rest)

    def _end(self) -> int:
        rows = self.shared.tally.rows_total or 0
        limit = self.shared.job.limit
        return min(rows, limit) if limit is not None else rows
