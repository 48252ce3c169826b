"""Environment-test children forked from a preloaded interpreter (forkserver.py), and the server's handle on them.

A child spends about 0.15 s of its start importing the SDK and the harness before it reads environment.py. The
environment-test fork server (`ENV_TEST_FORK_SERVER`) imports them once. `launch`, the package's launcher, forks
each child from it where it can (`SandboxSpec.preload`; `api.launch` otherwise), in the sandbox `init.run` sets up
for a cold start, tied to this server by the same lifeline. The server is not the child's parent, so
`ForkedProcess` stands in for the `subprocess.Popen` a cold start returns: the exit code arrives on a pipe the
supervisor writes as it ends, and signals go by pidfd to the process the server recorded (`signal_job`), never to
a pid it may have left behind.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from typing import IO, Any

from flash_mcp.sandbox import api
from flash_mcp.sandbox.api import SandboxSpec, read_status, supervisor_config
from flash_mcp.sandbox.forkserver import ENV_TEST_FORK_SERVER
from flash_mcp.sandbox.job_launch import pipe_holding
from flash_mcp.sandbox.policy import base_env, python_argv
from flash_mcp.sandbox.process import Spawned, signal_job

EXIT_LINE = 64


class ForkedProcess:
    """What the environment test's runner uses of a `Popen`, for a supervisor a fork server forked."""

    def __init__(self, job: Spawned, stdout: int | None, exit_r: int):
        self.job, self.pid = job, job.pid
        self.stdout: IO[bytes] | None = os.fdopen(stdout, "rb") if stdout is not None else None
        self.returncode: int | None = None
        self._exit = exit_r

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._exit], [], [], 0)[0]:
            self._read_exit()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._exit], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            self._read_exit()
        return self.returncode  # type: ignore[return-value]  # set by _read_exit

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            signal_job(self.job, signum)

    def communicate(self, timeout: float | None = None) -> tuple[bytes, None]:
        """The rest of stdout until EOF (within `timeout`), then the exit; TimeoutExpired as Popen raises it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        chunks = []
        while self.stdout is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.stdout], [], [], left)[0]:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            chunk = os.read(self.stdout.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return b"".join(chunks), None

    def kill_tree(self, timeout: float = 10.0) -> None:
        """`api.kill_tree` for this process: SIGUSR1 kills the namespace; SIGKILL the supervisor if it lingers."""
        if self.poll() is not None:
            return  # its PDEATHSIG took the namespace with it; its pid may already be another process's
        self.send_signal(signal.SIGUSR1)
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            self.wait()

    def _read_exit(self) -> None:
        """The supervisor's `exit N` (N as init.py exits: 128 + a signal it died of), or nothing: it was killed."""
        data = b""
        while len(data) < EXIT_LINE and (chunk := os.read(self._exit, EXIT_LINE)):
            data += chunk
        os.close(self._exit)
        words = data.decode("ascii", "replace").split()
        code = int(words[1]) if len(words) == 2 and words[0] == "exit" and words[1].isdecimal() else 128 + 9
        self.returncode = -(code - 128) if 128 < code < 128 + signal.NSIG else code  # as Popen reports a signal


def launch(spec: SandboxSpec) -> subprocess.Popen | ForkedProcess:
    """`api.launch`, but forked from the environment-test fork server where `spec.preload` asks and it can."""
    if spec.preload and api.unavailable_reason() is None:
        read_only, read_write = api.checked_grants(spec)
        with contextlib.suppress(LookupError):
            return launch_forked(spec, read_only, read_write)
    return api.launch(spec)


def warm_up_env_tests(wait_s: float = 0.0) -> bool:
    """Start the environment-test fork server now rather than at the first test; whether it is ready (waiting up to
    `wait_s`)."""
    return ENV_TEST_FORK_SERVER.warm(base_env("/"), wait_s)


def launch_forked(spec: SandboxSpec, read_only: list[str], read_write: list[str]) -> ForkedProcess:
    """`spec` (a `python -P -m module` program tied to this server, no secrets, no GPU) forked from the
    environment-test fork server; LookupError where it cannot be (not ready yet, its setup failed): start it cold."""
    plain = spec.stderr == subprocess.STDOUT and not (spec.detached or spec.secrets or spec.gpu)
    if list(spec.argv[:3]) != python_argv("")[:3] or not plain:
        raise LookupError("this program starts cold")
    if not ENV_TEST_FORK_SERVER.warm(base_env("/", dict(spec.env))):
        raise LookupError("the environment-test fork server is not ready yet")
    config = supervisor_config(spec, read_only, read_write, sandboxed=True)
    config["supervisor_fds"] = ["lifeline_fd", "exit_fd"]
    out_r, log = _output(spec.stdout)
    status_r, status_w = os.pipe()
    exit_r, exit_w = os.pipe()
    secrets_r = pipe_holding(b"{}")  # no secrets: an environment test gets none
    config["status_fd"] = status_w
    sent = [status_w, log, secrets_r, api.lifeline(), exit_w, *spec.pass_fds]
    try:
        pid, start = ENV_TEST_FORK_SERVER.spawn(config, sent)
    except LookupError:
        for fd in (status_r, exit_r, *([out_r] if out_r is not None else [])):
            os.close(fd)
        raise
    finally:
        for fd in (status_w, exit_w, secrets_r, *([log] if log != _fileno(spec.stdout) else [])):
            os.close(fd)
    process = ForkedProcess(Spawned(pid, start if start >= 0 else None), out_r, exit_r)
    if read_status(status_r) != "ok":
        process.kill_tree()
        if process.stdout is not None:
            process.stdout.close()
        raise LookupError("the fork server's program did not start")
    return process


def _output(stdout: Any) -> tuple[int | None, int]:
    """(the server's read end or None, the descriptor the program writes its output to)."""
    if stdout == subprocess.PIPE:
        return os.pipe()
    if stdout == subprocess.DEVNULL or stdout is None:
        return None, os.open(os.devnull, os.O_WRONLY)
    return None, _fileno(stdout)


def _fileno(stdout: Any) -> int | None:
    if isinstance(stdout, int) and stdout >= 0:
        return stdout
    return stdout.fileno() if hasattr(stdout, "fileno") else None
