"""A preloaded interpreter that starts the trainer and the evaluator without paying their imports each time.

A job (`python -P -m flash_mcp.jobs.trainer …`) spends about 8 s on a 2-core machine importing torch,
transformers, peft and trl before it does anything. The fork server imports them once, then forks one process per
job; that process sets up the very sandbox `init.py` sets up (`init.run`: namespaces, Landlock, capabilities,
seccomp, rlimits, cgroups) and runs the job module in place of the exec.

What keeps it equal to a cold start:
- it is started by the server like any sandboxed program would be, from the clean allow-listed environment
  (`base_env`) the job gets, cwd `/`, `-P`; it runs only installed, trusted code and never agent code;
- its HOME and TMPDIR are a directory of its own, and each job mounts its directory over that one, so every
  path a library cached at import (Hugging Face caches, `tempfile`) is the job's own;
- each job gets its own environment (`os.environ` replaced), fresh random seeds, its descriptors at the numbers
  its argv names, and the interpreter's exit handlers at its end;
- only detached jobs of this interpreter's `-P -m module` form, with the sandbox available and no GPU on the
  machine (CUDA is not fork-safe), start here; anything else, or a fork server that is not ready, starts cold.

Server side: `FORK_SERVER.spawn(config, fds)`. Fork server side: `python -P -m flash_mcp.sandbox.forkserver FD`.
"""

from __future__ import annotations

import atexit
import contextlib
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
from typing import NoReturn

READY = b"R"
REPLY = struct.Struct("!qq")  # pid, start time (-1: none)
HEADER = struct.Struct("!I")
MAX_FDS = 64
MAX_REQUEST = 16 << 20
# What the trainer and the evaluator import; lazy attributes are read so their submodules load too.
PRELOAD = (
    ("torch", ()),
    ("transformers", ("AutoModelForCausalLM", "AutoTokenizer", "TrainerCallback")),
    ("peft", ("LoraConfig", "PeftModel")),
    ("datasets", ("Dataset",)),
    ("trl", ("GRPOConfig", "GRPOTrainer", "SFTConfig", "SFTTrainer")),
)


# -- server side ------------------------------------------------------------------------------------


class ForkServer:
    """This server process's fork server: started on the first job, used once it has preloaded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._socket: socket.socket | None = None
        self._ready = False
        self._env_key: dict[str, str] | None = None
        self.home: str | None = None

    def spawn(self, config: dict, fds: list[int]) -> tuple[int, int]:
        """Fork a sandboxed job from the preloaded interpreter: (pid, start time); LookupError when none is ready.

        `fds` are the status pipe's write end, the job's log, a pipe holding the job's secrets (read by the job, never
        by the fork server, so no later job's memory holds them) and its pass_fds (sent, not given away).
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
                python_argv(__name__, str(theirs.fileno())), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
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


FORK_SERVER = ForkServer()


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("the peer closed the socket")
        data += chunk
    return data


# -- fork server side -------------------------------------------------------------------------------


def serve(sock: socket.socket) -> None:
    """Preload, say ready, then fork one sandboxed job per request until the server closes the socket."""
    home = os.environ["HOME"]
    try:
        _preload()
        signal.signal(signal.SIGCHLD, _reap)
        sock.sendall(READY)
        while (request := _request(sock)) is not None:
            config, fds = request
            sock.sendall(REPLY.pack(*_fork_job(sock, config, fds)))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _preload() -> None:
    for module, names in PRELOAD:
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
        config["status_fd"] = _place_descriptors([fds[0], fds[1], *fds[3:]], config["pass_fds"])
    except BaseException:
        os._exit(125)
    from flash_mcp.sandbox import init

    init.run(config, _run_job)


def _place_descriptors(fds: list[int], targets: list[int]) -> int:
    """stdin /dev/null, stdout and stderr the log, each pass_fd at the number the job's argv names; the status fd
    above them all. Returns the status fd."""
    received_status, log, *passed = fds
    floor = max([*targets, *fds, 2]) + 1
    status = fcntl.fcntl(received_status, fcntl.F_DUPFD_CLOEXEC, floor)
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in passed]
    os.dup2(log, 1)
    os.dup2(log, 2)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    if null != 0:
        os.close(null)
    for source, target in zip(moved, targets, strict=True):
        os.dup2(source, target)
        os.close(source)
    return status


def _run_job(config: dict) -> NoReturn:
    """The program step, inside the sandbox: `python -P -m MODULE ARGS…`, run in this interpreter."""
    import random
    import runpy

    module, args = config["argv"][3], config["argv"][4:]
    os.environ.clear()
    os.environ.update(config["env"])
    sys.argv = [module, *args]
    random.seed()
    with contextlib.suppress(ImportError):
        import numpy

        numpy.random.seed()
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
    serve(socket.socket(fileno=int(sys.argv[1])))
