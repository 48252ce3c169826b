"""Run the environment test in child processes: timeouts, restarts, bounded output capture.

Each child (`flash_mcp/jobs/envtest_child.py`) reports rows in batches and records which row it is running, and since
when, in a shared 16-byte file. The parent watches that clock: a row that runs past its timeout
gets the child's whole process group killed, the row is recorded as hung, and a fresh child
resumes with the first row it had not reported (skipping the lost one). A child that dies
(`os._exit`, a signal, a segfault) is handled the same way.

Large datasets are split across lanes, one child per CPU core (two at most): lane k checks the
rows whose index is k modulo the lane count.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.domain.envtest.protocol import LOADING, PROGRESS
from flash_mcp.domain.envtest.report import Tally
from flash_mcp.domain.project import safe_fs

LOAD_TIMEOUT_S = 120.0
MAX_RESTARTS = 5
CAPTURE_BYTES = 2048
POLL_SECONDS = 0.1
PARALLEL_MIN_ROWS = 2000
MAX_LANES = 2
# Credentials of this server that user code has no business reading.
_WITHHELD_ENV = ("FLASH_MCP_TOKEN", "FREESOLO_API_KEY", "FREESOLO_INTERNAL_KEY")

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class EnvTestJob:
    entrypoint: Path
    params: dict[str, Any]
    limit: int | None
    responses: list[dict[str, Any]]
    row_timeout_s: float
    total_timeout_s: float


@dataclass
class Capture:
    """The first and last bytes of everything user code printed."""

    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = CAPTURE_BYTES - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail = (self.tail + data)[-CAPTURE_BYTES:]

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        if not self.tail:
            return head
        skipped = self.total - len(self.head) - len(self.tail)
        gap = f"\n… {skipped} bytes not shown …\n" if skipped > 0 else ""
        return head + gap + self.tail.decode("utf-8", "replace")


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


def run_env_test(job: EnvTestJob, tally: Tally, on_progress: ProgressFn | None = None) -> Capture:
    """Check every requested row, across lanes, until done or a limit is hit."""
    lanes = _lane_count(job)
    with tempfile.TemporaryDirectory(prefix="flash-mcp-envtest-") as scratch:
        shared = _Shared(job, tally, Capture(), on_progress, time.monotonic() + job.total_timeout_s, Path(scratch))
        if lanes == 1:
            _Lane(shared, 0, 1).run()
        else:
            with ThreadPoolExecutor(max_workers=lanes) as pool:
                for future in [pool.submit(_Lane(shared, k, lanes).run) for k in range(lanes)]:
                    future.result()
        return shared.capture


def _lane_count(job: EnvTestJob) -> int:
    """Parallel lanes only when the packaged dataset is big enough to repay a second load."""
    if (os.cpu_count() or 1) < 2 or (job.limit is not None and job.limit < PARALLEL_MIN_ROWS):
        return 1
    base = job.entrypoint.parent
    split = job.params.get("split") if isinstance(job.params.get("split"), str) else "train"
    candidate = job.params.get("dataset_path") or f"dataset/{split.strip() or 'train'}.jsonl"
    path = base / str(candidate)
    try:
        with safe_fs.open_binary(path, str(candidate)) as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except (OSError, UserError):
        return 1
    return min(MAX_LANES, os.cpu_count() or 1) if lines >= PARALLEL_MIN_ROWS else 1


class _Lane:
    """One sequence of children checking rows offset, offset + stride, …"""

    def __init__(self, shared: _Shared, offset: int, stride: int):
        self.shared, self.offset, self.stride = shared, offset, stride
        self.next_row = offset
        self.skip: set[int] = set()
        self.progress_path = shared.scratch / f"progress-{offset}"

    def run(self) -> None:
        shared = self.shared
        while True:
            self.progress_path.write_bytes(PROGRESS.pack(LOADING, 0.0))
            ended = _Child(self).run()
            if ended.kind in ("done", "load_error", "deadline"):
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

    def run(self) -> _Ended:
        read_fd, write_fd = os.pipe()
        self.spawned = time.monotonic()
        process = self._spawn(write_fd)
        os.close(write_fd)
        selector = selectors.DefaultSelector()
        selector.register(read_fd, selectors.EVENT_READ, "results")
        selector.register(process.stdout, selectors.EVENT_READ, "output")
        with open(self.lane.progress_path, "r+b") as handle, mmap.mmap(handle.fileno(), PROGRESS.size) as progress:
            try:
                return self._watch(process, selector, progress)
            finally:
                _kill(process)
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
        }
        env = {k: v for k, v in os.environ.items() if k not in _WITHHELD_ENV}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        command = [
            sys.executable, "-P", "-m", "flash_mcp.jobs.envtest_child", str(write_fd), str(lane.progress_path)
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=job.entrypoint.parent,
            env=env,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(json.dumps(payload).encode("utf-8"))
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        process.stdin = None
        return process

    def _watch(self, process: subprocess.Popen, selector: selectors.BaseSelector, progress: mmap.mmap) -> _Ended:
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
            overdue = self._overdue(progress)
            if overdue:
                return overdue
            if self.shared.tally.load_error:
                return _Ended("load_error")
        self._drain_output(process)
        if self.finished:
            return _Ended("done")
        row, _ = PROGRESS.unpack_from(progress, 0)
        code = process.wait()
        if row == LOADING:
            with self.shared.lock:
                self.shared.tally.load_failed(
                    f"the environment process exited with code {code} while loading environment.py"
                )
            return _Ended("load_error")
        return _Ended("crash", row, f"the environment process exited with code {code} while running this row")

    def _overdue(self, progress: mmap.mmap) -> _Ended | None:
        now = time.monotonic()
        row, started = PROGRESS.unpack_from(progress, 0)
        if row == LOADING and (now > self.shared.deadline or now - self.spawned > LOAD_TIMEOUT_S):
            with self.shared.lock:
                self.shared.tally.load_failed(f"loading environment.py did not finish within {now - self.spawned:.0f}s")
            return _Ended("load_error")
        if now > self.shared.deadline:
            return _Ended("deadline")
        timeout = self.shared.job.row_timeout_s
        if started > 0 and now - started > timeout:
            return _Ended("timeout", row, f"did not finish within the row timeout of {timeout:g}s")
        return None

    def _events(self, chunk: bytes) -> None:
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        tally = self.shared.tally
        for line in lines:
            event = json.loads(line)
            kind = event.pop("type")
            with self.shared.lock:
                if kind == "rows":
                    for row in event["rows"]:
                        tally.add_row(row)
                    if event["rows"]:
                        self.lane.next_row = event["rows"][-1]["i"] + self.lane.stride
                    if self.shared.on_progress:  # under the lock, so progress only ever rises
                        self.shared.on_progress(tally.checked, tally.target_rows(self.shared.job.limit))
                elif kind == "loaded":
                    tally.loaded(event)
                elif kind == "load_error":
                    tally.load_failed(event["message"], event.get("trace", ""))
                elif kind == "response":
                    tally.add_response(event)
                elif kind == "done":
                    self.finished = True

    def _drain_output(self, process: subprocess.Popen) -> None:
        try:
            rest, _ = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            return
        if rest:
            with self.shared.lock:
                self.shared.capture.feed(rest)


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    if process.stdout:
        process.stdout.close()
