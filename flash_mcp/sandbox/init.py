"""The sandbox supervisor: `python -I -S init.py CONFIG_FD`, started by `flash_mcp.sandbox.launch`.

Outer process (visible to the server): joins the pids cgroup, unshares user, mount, PID, IPC, UTS
and network namespaces, forks the inner process and waits for it. Inner process (PID 1 of the new
namespace): mounts a fresh /proc, a private /dev/shm, /dev/null over masked files; sets rlimits;
applies Landlock; drops every capability; forks the program and reaps. When PID 1 exits, the kernel
kills everything left in the namespace, so the program's whole tree ends with it.

Signals: SIGTERM/SIGINT/SIGHUP to the outer process are forwarded to the program; after
`grace` seconds the namespace is killed. SIGUSR1 kills the namespace at once (`kill_tree`).
Status lines on the status descriptor: `ok` once the program is exec'd, or `error <reason>`. A supervisor forked by
a fork server (whose parent is not the server) also writes `exit <code>` on `exit_fd` as it ends.

The fork server (`forkserver.py`) runs the same steps in a process forked from its preloaded interpreter:
`run(config, program)` with `program` (a job module run in place) instead of the exec, and `home_alias`, the
fork server's own HOME, bind-mounted over by the job's directory so every path it cached at import is the job's.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

try:
    from flash_mcp.sandbox import kernel
except ImportError:  # run as a script under -I -S: only this directory
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import kernel  # type: ignore[no-redef]

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main() -> None:
    with os.fdopen(int(sys.argv[1]), "rb") as handle:
        config = json.loads(handle.read())
    run(config)


def run(config: dict, program: Callable[[dict], NoReturn] | None = None) -> NoReturn:
    """Set up the sandbox and run the program in it: `config["argv"]` exec'd, or `program(config)` in place."""
    status = config["status_fd"]
    try:
        outer_setup(config)
        alive_r, alive_w = os.pipe()
        inner = os.fork()
    except BaseException as exc:
        report(status, f"error {type(exc).__name__}: {exc}")
        os._exit(125)
    if inner == 0:
        os.close(alive_w)
        inner_main(config, alive_r, program)
    os.close(alive_r)
    os.close(status)
    supervise_outer(config, inner)


def report(fd: int, line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (line.replace("\n", " ")[:2000] + "\n").encode())


def outer_setup(config: dict) -> None:
    for key in ("cgroup", "memory_cgroup"):
        if config.get(key):
            with open(os.path.join(config[key], "cgroup.procs"), "w") as handle:
                handle.write(str(os.getpid()))
    if not config["sandboxed"]:
        return
    uid, gid = os.getuid(), os.getgid()
    flags = kernel.CLONE_NEWUSER | kernel.CLONE_NEWNS | kernel.CLONE_NEWPID | kernel.CLONE_NEWIPC | kernel.CLONE_NEWUTS
    if not config["network"]:
        flags |= kernel.CLONE_NEWNET
    kernel.unshare(flags)
    kernel.map_root(uid, gid)


def supervise_outer(config: dict, inner: int) -> NoReturn:
    def forward(signum: int, _frame: object) -> None:
        _signal(inner, signal.SIGTERM)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    signal.signal(signal.SIGUSR1, lambda *_: _signal(inner, signal.SIGKILL))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    watched = [wake_r] + ([config["lifeline_fd"]] if config.get("lifeline_fd") is not None else [])
    while True:
        pid, code = os.waitpid(inner, os.WNOHANG)
        if pid == inner:
            ended = os.waitstatus_to_exitcode(code) if os.WIFEXITED(code) else 128 + os.WTERMSIG(code)
            if config.get("exit_fd") is not None:  # a forked supervisor: its parent, not the server, reaps it
                report(config["exit_fd"], f"exit {ended}")
            _exit_like(ended)
        for fd in select.select(watched, [], [], 5.0)[0]:
            if not os.read(fd, 512) and fd != wake_r:  # lifeline EOF: the server is gone, so is the tree
                _signal(inner, signal.SIGKILL)
                watched.remove(fd)


def _exit_like(code: int) -> NoReturn:
    """The program's end, as the server should see it: killed by signal N (PID 1 reports 128+N) or a code."""
    if 128 < code < 128 + signal.NSIG:
        with contextlib.suppress(OSError, ValueError):
            if code - 128 not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(code - 128, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [code - 128])
            os.kill(os.getpid(), code - 128)
    os._exit(code)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


# -- inner: PID 1 of the sandbox ----------------------------------------------------------------


def inner_main(config: dict, alive_r: int, program: Callable[[dict], NoReturn] | None = None) -> NoReturn:
    status = config["status_fd"]
    for name in ("lifeline_fd", "exit_fd"):  # PID 1's descriptors are reachable via /proc/1/fd: keep only the
        if config.get(name) is not None:  # outer's copy, or the program could hold the pipe open (or write to it)
            os.close(config[name])
    try:
        kernel.set_pdeathsig(signal.SIGKILL)
        if _readable(alive_r):  # the outer process died before PDEATHSIG was armed
            os._exit(137)
        if config["sandboxed"]:
            inner_mounts(config)
        set_limits(config["limits"])
        if config["sandboxed"]:
            kernel.landlock_restrict(
                config["read_only"],
                config["read_write"],
                config["listed"],
                abi=config["abi"],
                deny_tcp=not config["network"],
            )
            kernel.drop_capabilities()
            if config["seccomp"]:
                kernel.seccomp_no_unix_sockets()
        os.set_inheritable(status, False)
        child = os.fork()
    except BaseException as exc:
        report(status, f"error {type(exc).__name__}: {exc}")
        os._exit(125)
    if child == 0:
        exec_program(config, status, program)
    os.close(status)
    reap(child, config["grace"])


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def inner_mounts(config: dict) -> None:
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    kernel.mount("proc", "/proc", "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
    if os.path.isdir("/dev/shm"):
        kernel.mount("tmpfs", "/dev/shm", "tmpfs", kernel.MS_NOSUID | kernel.MS_NODEV, "size=268435456,mode=1777")
    for path in config["mask"]:
        kernel.mount("/dev/null", path, None, kernel.MS_BIND)
    if config.get("home_alias"):
        alias_home(config["home_alias"], config["env"]["HOME"])


def alias_home(alias: str, home: str) -> None:
    """Mount the program's HOME over `alias` (the fork server's HOME), in this namespace only."""
    if os.path.realpath(alias) != alias or not os.path.isdir(alias) or os.stat(alias).st_uid != os.getuid():
        raise OSError(f"the fork server's home {alias} is not its own directory")
    kernel.mount(home, alias, None, kernel.MS_BIND | kernel.MS_REC)


def set_limits(limits: dict) -> None:
    for name, value in (("RLIMIT_AS", limits.get("memory_bytes")), ("RLIMIT_CPU", limits.get("cpu_seconds")),
                        ("RLIMIT_NPROC", limits.get("max_processes")), ("RLIMIT_FSIZE", limits.get("file_bytes")),
                        ("RLIMIT_CORE", 0)):  # fmt: skip
        if value is not None:
            resource.setrlimit(getattr(resource, name), (int(value), int(value)))


def exec_program(config: dict, status: int, program: Callable[[dict], NoReturn] | None = None) -> NoReturn:
    try:
        os.setsid()
        keep = sorted({0, 1, 2, status, *config["pass_fds"]})
        for low, high in zip(keep, [*keep[1:], 1 << 16], strict=True):
            os.closerange(low + 1, high)
        for fd in config["pass_fds"]:
            os.set_inheritable(fd, True)
        if config.get("cwd"):
            os.chdir(config["cwd"])
        report(status, "ok")
        if program is not None:
            os.close(status)
            program(config)
        os.execve(config["argv"][0], config["argv"], config["env"])
    except BaseException as exc:
        report(status, f"error cannot start {config['argv'][0]}: {type(exc).__name__}: {exc}")
    os._exit(127)


def reap(program: int, grace: float) -> NoReturn:
    """PID 1: reap every orphan; end (killing the namespace) when the program ends."""

    def terminate(_signum: int, _frame: object) -> None:
        _signal(program, signal.SIGTERM)
        signal.signal(signal.SIGALRM, lambda *_: os._exit(137))
        signal.setitimer(signal.ITIMER_REAL, grace)

    for signum in FORWARDED:
        signal.signal(signum, terminate)
    while True:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == program:
            os._exit(os.waitstatus_to_exitcode(code) if os.WIFEXITED(code) else 128 + os.WTERMSIG(code))


if __name__ == "__main__":
    main()
