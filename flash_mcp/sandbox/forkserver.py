"""Preloaded interpreters that start sandboxed programs without paying their imports each time.

A job (`python -P -m flash_mcp.jobs.trainer …`) spends about 8 s on a 2-core machine importing torch,
transformers, peft and trl before it does anything. The jobs fork server (`FORK_SERVER`) imports them once, then
forks one process per job; that process sets up the very sandbox `init.py` sets up (`init.run`: namespaces,
Landlock, capabilities, seccomp, rlimits, cgroups) and runs the job module in place of the exec. The
environment-test fork server (`ENV_TEST_FORK_SERVER`, used by forked.py) does the same for environment-test
children with the SDK and the harness preloaded (`PRELOADS`).

What keeps it equal to a cold start:
- it is started by the server like any sandboxed program would be, from the clean allow-listed environment
  (`base_env`) the program gets, cwd `/`, `-P`; it runs only installed, trusted code and never agent code;
- its HOME and TMPDIR are a directory of its own, and each job mounts its directory over that one, so every
  path a library cached at import (Hugging Face caches, `tempfile`) is the job's own;
- each job gets its own environment (`os.environ` replaced), fresh random seeds, its descriptors at the numbers
  its argv names, its own command line in /proc (`_retitle`), and the interpreter's exit handlers at its end;
- only programs of this interpreter's `-P -m module` form, with the sandbox available (and, for jobs, no GPU on the
  machine: CUDA is not fork-safe), start here; anything else, or a fork server that is not ready, starts cold.

Server side: `FORK_SERVER.spawn(config, fds)`. Fork server side:
`python -P -m flash_mcp.sandbox.forkserver FD PRELOAD TITLE_ROOM`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import importlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import NoReturn

READY = b"R"
REPLY = struct.Struct("!qq")  # pid, start time (-1: none)
HEADER = struct.Struct("!I")
MAX_FDS = 64
MAX_REQUEST = 16 << 20
TITLE_ROOM = " " * 4096  # the fork server's last argument: room for a job's command line over its own (_retitle)
# What the trainer and the evaluator import; lazy attributes are read so their submodules load too.
JOBS = (
    ("torch", ()),
    ("transformers", ("AutoModelForCausalLM", "AutoTokenizer", "TrainerCallback")),
    ("peft", ("LoraConfig", "PeftModel")),
    ("datasets", ("Dataset",)),
    ("trl", ("GRPOConfig", "GRPOTrainer", "SFTConfig", "SFTTrainer")),
)
# What an environment-test child imports before it loads environment.py: the SDK and the harness, not the child's
# own module (run as __main__ there as in a cold start), nothing heavy (its address space is capped at 2 GiB).
ENV_TESTS = tuple(
    (module, ())
    for module in ("freesolo.environments", "freesolo.datasets.records", "flash_mcp.runtime.episode",
                   "flash_mcp.domain.envtest.probes", "flash_mcp.domain.envtest.episodes", "flash_mcp.harness.wire")
)  # fmt: skip
PRELOADS = {"jobs": JOBS, "env-tests": ENV_TESTS}


# -- server side ------------------------------------------------------------------------------------


class ForkServer:
    """One of this server process's fork servers (`preload` names what it imports, see PRELOADS): started on the
    first program it could serve, used once it has preloaded."""

    def __init__(self, preload: str) -> None:
        self.preload = preload
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._socket: socket.socket | None = None
        self._ready = False
        self._env_key: dict[str, str] | None = None
        self.home: str | None = None

    def spawn(self, config: dict, fds: list[int]) -> tuple[int, int]:
        """Fork a sandboxed job from the preloaded interpreter: (pid, start time); LookupError when none is ready.

        `fds` are the status pipe's write end, the job's log, a pipe holding the job's secrets (read by the job, never
        by the fork server, so no later job's memory holds them), one descriptor for each name in
        `config["supervisor_fds"]` (the supervisor's own, e.g. `lifeline_fd`) and its pass_fds (sent, not given away).
        `config["env"]` is the job's environment less its secrets: the fork server runs with it (its own HOME and
        TMPDIR) and is started again when a job's differs."""
        with self._lock:
            if not self._is_ready(config["env"]):
                raise LookupError("the fork server is not ready")
            request = json.dumps({**config, "home_alias": self.home}).encode()
            try:
                socket.send_fds(self._socket, [HEADER.pack(len(request))], fds)
                self._socket.sendall(request)
                pid, start = REPLY.unpack(_receive_exactly(self._socket, REPLY.size))
            except OSError:
                self._stop()
                raise LookupError("the fork server is gone") from None
            return pid, start

    def warm(self, env: dict[str, str], wait_s: float = 0.0) -> bool:
        """Start the fork server for jobs with `env` if none runs; whether it is ready (waiting up to `wait_s`)."""
        with self._lock:
            if not self._is_ready(env) and wait_s > 0 and self._socket is not None:
                select.select([self._socket], [], [], wait_s)
                return self._is_ready(env)
            return self._ready

    def _is_ready(self, env: dict[str, str]) -> bool:
        key = {name: value for name, value in env.items() if name not in ("HOME", "TMPDIR")}
        if self._process is not None and (self._process.poll() is not None or key != self._env_key):
            self._stop()
        if self._process is None:
            self._start(key)
            return False
        if not self._ready and select.select([self._socket], [], [], 0)[0]:
            self._ready = self._socket.recv(1) == READY
            if not self._ready:
                self._stop()
        return self._ready

    def _start(self, env: dict[str, str]) -> None:
        from flash_mcp.sandbox.policy import python_argv

        self.home = tempfile.mkdtemp(prefix="flash-mcp-forkserver-")
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                python_argv(__name__, str(theirs.fileno()), self.preload, TITLE_ROOM), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=[theirs.fileno()], start_new_session=True, cwd="/",
                env={**env, "HOME": self.home, "TMPDIR": self.home},
            )  # fmt: skip
        finally:
            theirs.close()
        self._socket, self._env_key, self._ready = ours, env, False

    def stop(self) -> None:
        """End the fork server now (the jobs it started run on); the next job starts a new one."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        if self.home is not None and os.path.islink(self.home):
            os.unlink(self.home)
        elif self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
        self._process = self._socket = self.home = None
        self._ready = False

    def pid(self) -> int | None:
        """The fork server's pid while one runs (tests tell a warm job by its parent)."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None


FORK_SERVER = ForkServer("jobs")  # the trainer and the evaluator
ENV_TEST_FORK_SERVER = ForkServer("env-tests")  # environment-test children


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("the peer closed the socket")
        data += chunk
    return data


# -- fork server side -------------------------------------------------------------------------------


def serve(sock: socket.socket, preload: str) -> None:
    """Preload, say ready, then fork one sandboxed job per request until the server closes the socket."""
    home = os.environ["HOME"]
    try:
        _preload(PRELOADS[preload])
        signal.signal(signal.SIGCHLD, _reap)
        sock.sendall(READY)
        while (request := _request(sock)) is not None:
            config, fds = request
            sock.sendall(REPLY.pack(*_fork_job(sock, config, fds)))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _preload(modules: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    for module, names in modules:
        with contextlib.suppress(Exception):
            loaded = importlib.import_module(module)
            for name in names:
                getattr(loaded, name)


def _reap(_signum: int, _frame: object) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _request(sock: socket.socket) -> tuple[dict, list[int]] | None:
    try:
        header, fds, _flags, _address = socket.recv_fds(sock, HEADER.size, MAX_FDS)
        if len(header) < HEADER.size:
            header += _receive_exactly(sock, HEADER.size - len(header))
        (size,) = HEADER.unpack(header)
        if size > MAX_REQUEST:
            raise OSError("request too large")
        return json.loads(_receive_exactly(sock, size)), fds
    except (OSError, ValueError):
        return None


def _fork_job(sock: socket.socket, config: dict, fds: list[int]) -> tuple[int, int]:
    """Fork the job's supervisor; its start time is read before it can be reaped (SIGCHLD is held meanwhile)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
    try:
        pid = os.fork()
        if pid == 0:
            _become_job(sock, config, fds)
        from flash_mcp.sandbox.process import start_time

        return pid, start_time(pid) or -1
    finally:
        for fd in fds:
            os.close(fd)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])


def _become_job(sock: socket.socket, config: dict, fds: list[int]) -> NoReturn:
    """In the forked process: the descriptors a cold start would have, then the sandbox and the job."""
    try:
        sock.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
        os.setsid()
        with open(fds[2], "rb") as secrets:
            config["env"].update(json.loads(secrets.read(MAX_REQUEST)))
        names = ["status_fd", *config.get("supervisor_fds", [])]
        own = [fds[0], *fds[3 : 2 + len(names)]]
        placed = _place_descriptors(own, fds[1], fds[2 + len(names) :], config["pass_fds"])
        config.update(zip(names, placed, strict=True))
        from flash_mcp.sandbox import init

        _retitle([sys.executable, "-I", "-S", init.__file__])  # as a cold start's supervisor
    except BaseException:
        os._exit(125)
    init.run(config, _run_job)


def _retitle(argv: list[str]) -> None:
    """Show `argv` as this process's command line (/proc/PID/cmdline), written over the fork server's own in this
    process's memory (the fork server's argv leaves TITLE_ROOM for it), so nothing names the fork server."""
    fields = Path("/proc/self/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end: fields 48 and 49 of stat
    title = "\0".join(argv).encode()[: end - start - 1]
    ctypes.memmove(start, title.ljust(end - start, b"\0"), end - start)  # NUL-ended: read back as it is


def _place_descriptors(own: list[int], log: int, passed: list[int], targets: list[int]) -> list[int]:
    """stdin /dev/null, stdout and stderr the log, each passed fd at the number the job's argv names; the
    supervisor's `own` descriptors (the status pipe first) above them all. Returns where `own` now are."""
    received = [*own, log, *passed]
    floor = max([*targets, *received, 2]) + 1
    placed = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in own]
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in passed]
    os.dup2(log, 1)
    os.dup2(log, 2)
    for fd in set(received) - {0, 1, 2}:
        os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    if null != 0:
        os.close(null)
    for source, target in zip(moved, targets, strict=True):
        os.dup2(source, target)
        os.close(source)
    return placed


def _run_job(config: dict) -> NoReturn:
    """The program step, inside the sandbox: `python -P -m MODULE ARGS…`, run in this interpreter."""
    import random
    import runpy

    module, args = config["argv"][3], config["argv"][4:]
    _retitle(config["argv"])
    os.environ.clear()
    os.environ.update(config["env"])
    sys.argv = [module, *args]
    random.seed()
    if "numpy" in sys.modules:  # preloaded (by torch): its state was the fork server's
        sys.modules["numpy"].random.seed()
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    with contextlib.suppress(BaseException):
        threading._shutdown()  # type: ignore[attr-defined]  # as the interpreter's own exit would
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os._exit(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])), sys.argv[2])  # sys.argv[3] is TITLE_ROOM
