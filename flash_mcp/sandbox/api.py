"""launch / kill_tree / sandbox_status: see the package docstring (flash_mcp/sandbox/__init__.py)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets as tokens
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from flash_mcp.core.errors import UserError
from flash_mcp.sandbox import kernel, policy
from flash_mcp.sandbox.policy import base_env, gpu_device_nodes, model_tree, python_argv

GRACE_SECONDS = 10.0
SETUP_TIMEOUT_S = 60.0
INIT = Path(__file__).with_name("init.py")
PIDS_CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")
_LIFELINE: tuple[int, int] | None = None
SECCOMP = "no unix sockets, no io_uring, no keyrings"
NAMESPACES = ["user", "pid (fresh /proc)", "mount", "ipc", "uts", "net (no network unless a spec asks)"]

__all__ = ["base_env", "gpu_device_nodes", "model_tree", "python_argv"]


class SandboxUnavailable(UserError):
    """No sandbox can be set up here, and the human has not allowed running without one."""


@dataclass(frozen=True)
class Limits:
    """Per-program bounds; None means no limit. RLIMIT_AS, RLIMIT_NPROC (+ pids cgroup), RLIMIT_CPU,
    RLIMIT_FSIZE (the largest file it may write: a bound per file, not a quota on its directory)."""

    memory_bytes: int | None = 2048 << 20
    max_processes: int | None = 256
    cpu_seconds: int | None = 3600
    file_bytes: int | None = 1024 << 20
    tree_memory_bytes: int | None = None  # the whole tree, by a memory cgroup where one is writable


@dataclass(frozen=True)
class SandboxSettings:
    """`[sandbox]` in settings.toml: limits for env tests and evaluations, for training, and the escape hatch."""

    limits: Limits = Limits()
    training_limits: Limits = Limits(16384 << 20, 256, 2_592_000, 16384 << 20, 65536 << 20)
    job_disk_bytes: int | None = 65536 << 20
    allow_unsandboxed: bool = False
    state_dir: Path | None = None  # the human's FLASH_MCP_HOME these settings came from
    preload_jobs: bool = True  # fork jobs and environment-test children from their fork servers where they can


@dataclass(frozen=True)
class SandboxSpec:
    argv: Sequence[str]
    read_only: Sequence[Path | str] = ()
    read_write: Sequence[Path | str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = Limits()
    network: bool = False
    pass_fds: tuple[int, ...] = ()
    detached: bool = False
    cwd: Path | str | None = None
    stdout: int | IO[Any] = subprocess.DEVNULL
    stderr: int | IO[Any] = subprocess.STDOUT
    allow_unsandboxed: bool = False
    home: Path | str | None = None  # HOME/TMPDIR for the program; default: the first read_write path
    state_dir: Path | str | None = None  # the human's state dir, kept out of reach; default FLASH_MCP_HOME
    gpu: bool = False  # grant the GPU's device nodes (the trainer and the evaluator only)
    preload: bool = False  # fork it from the environment-test fork server where it can (forked.launch)


def sandbox_settings(home: Path) -> SandboxSettings:
    """The human's `[sandbox]` table (FLASH_MCP_HOME/settings.toml), reread on every call."""
    from flash_mcp.core.human_settings import load_human_settings

    raw = load_human_settings(home).sandbox
    return SandboxSettings(
        limits=Limits(_mb(raw.memory_mb), raw.max_processes or None, raw.cpu_seconds or None, _mb(raw.file_mb)),
        training_limits=Limits(
            _mb(raw.training_memory_mb),
            raw.max_processes or None,
            raw.training_cpu_seconds or None,
            _mb(raw.training_file_mb),
            _mb(raw.training_tree_memory_mb),
        ),
        job_disk_bytes=_mb(raw.job_disk_mb),
        allow_unsandboxed=raw.allow_unsandboxed,
        state_dir=home,
        preload_jobs=raw.preload_jobs,
    )


def _mb(value: int) -> int | None:
    return value << 20 if value else None


def launch(spec: SandboxSpec) -> subprocess.Popen:
    """Start `spec.argv` inside the sandbox; return once it is exec'd (or raise with the reason)."""
    read_only, read_write = checked_grants(spec)
    reason = unavailable_reason()
    if reason is None:
        try:
            return _start(spec, read_only, read_write, sandboxed=True)
        except SandboxUnavailable as exc:
            reason = str(exc)
    if not spec.allow_unsandboxed:
        raise SandboxUnavailable(
            f"agent-written code runs only inside the sandbox, and none can be set up here ({reason}). "
            "To run it without one, the human adds `[sandbox] allow_unsandboxed = true` to settings.toml "
            "in the flash-mcp home"
        )
    return _start(spec, read_only, read_write, sandboxed=False)


def checked_grants(spec: SandboxSpec) -> tuple[list[str], list[str]]:
    """The spec's read-only and read-write paths, resolved, refused where they expose the human's state."""
    # Resolved before the check: a granted path that is (or passes through) a symlink, e.g. a checkpoint
    # a trainer replaced with a link to the state dir, is checked and granted as what it points at.
    read_only = [os.path.realpath(p) for p in spec.read_only]
    read_write = [os.path.realpath(p) for p in spec.read_write]
    home, credentials = _protected()
    granted = [*read_only, *read_write]
    clash = policy.overlaps(granted, home, credentials)
    if spec.state_dir is not None:
        clash += policy.overlaps(granted, Path(spec.state_dir).resolve(), credentials)
    if clash:
        raise UserError(f"refusing to expose the human's state to agent code: {', '.join(sorted(set(clash)))}")
    return read_only, read_write


def _protected() -> tuple[Path, Path]:
    from flash_mcp.core.settings import default_home
    from flash_mcp.core.workspace import flash_data_dir

    return default_home().resolve(), flash_data_dir().resolve()


def unavailable_reason() -> str | None:
    if sys.platform != "linux":
        return f"{sys.platform} has no sandbox in flash-mcp yet (macOS Seatbelt is not implemented)"
    if kernel.landlock_abi() < 1:
        return "the kernel has no Landlock (Linux 5.13+ with landlock in the lsm= boot list)"
    return None


def supervisor_config(
    spec: SandboxSpec, read_only: list[str], read_write: list[str], *, sandboxed: bool
) -> dict[str, Any]:
    """What the supervisor sets up (init.py reads it): grants, environment, limits, cgroups."""
    prefixes, packages, listed = policy.python_read_only()
    return {
        "argv": list(spec.argv), "cwd": str(spec.cwd) if spec.cwd else None, "network": spec.network,
        "env": {**base_env(spec.home or (read_write[0] if read_write else "/nonexistent"), dict(spec.env)),
                **spec.secrets},
        "read_only": _resolved([*prefixes, *packages, *policy.SYSTEM_READ_ONLY, *read_only]),
        "read_write": _resolved(read_write_grants(spec, read_write)), "listed": _resolved(listed),
        "mask": policy.env_files([*read_only, *packages]) if sandboxed else [],
        "limits": spec.limits.__dict__, "pass_fds": list(spec.pass_fds), "sandboxed": sandboxed,
        "abi": kernel.landlock_abi() if sandboxed else 0, "grace": GRACE_SECONDS,
        "seccomp": sandboxed and kernel.seccomp_available(),
        "cgroup": _pids_cgroup(spec.limits.max_processes) if sandboxed else None,
        "memory_cgroup": memory_cgroup(spec.limits.tree_memory_bytes) if sandboxed else None,
    }  # fmt: skip


def _start(spec: SandboxSpec, read_only: list[str], read_write: list[str], *, sandboxed: bool) -> subprocess.Popen:
    config = supervisor_config(spec, read_only, read_write, sandboxed=sandboxed)
    config_r, config_w = os.pipe()
    status_r, status_w = os.pipe()
    fds = [config_r, status_w, *spec.pass_fds]
    config["status_fd"] = status_w
    if not spec.detached:
        config["lifeline_fd"] = lifeline()
        fds.append(config["lifeline_fd"])
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(INIT), str(config_r)], stdin=subprocess.DEVNULL, stdout=spec.stdout,
            stderr=spec.stderr, pass_fds=fds, start_new_session=True, env={}, cwd="/",
        )  # fmt: skip
    finally:
        os.close(config_r)
        os.close(status_w)
    with os.fdopen(config_w, "wb") as handle:
        handle.write(json.dumps(config).encode())
    status = read_status(status_r)
    if status != "ok":
        kill_tree(process)
        if sandboxed and status.startswith("error ") and "cannot start" not in status:
            raise SandboxUnavailable(status.removeprefix("error "))
        raise UserError(f"could not start {spec.argv[0]}: {status.removeprefix('error ')}")
    return process


def read_write_grants(spec: SandboxSpec, read_write: list[str], dev_root: Path | str = "/dev") -> list[str]:
    """What the program may write: the system's sinks, its own paths, and the GPU nodes if it asks for them."""
    return [*policy.SYSTEM_READ_WRITE, *read_write, *(policy.gpu_device_nodes(dev_root) if spec.gpu else [])]


def _resolved(paths: Sequence[str]) -> list[str]:
    """Every grant as its real path: the supervisor refuses to grant one that is not (see kernel._add_rule)."""
    return list(dict.fromkeys(os.path.realpath(path) for path in paths))


def read_status(fd: int) -> str:
    """Lines until EOF (the program's exec closes the last copy); the last one is the verdict."""
    data, deadline = b"", time.monotonic() + SETUP_TIMEOUT_S
    with os.fdopen(fd, "rb", buffering=0) as handle:
        while len(data) < 8192:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([handle], [], [], left)[0]:
                return "error the sandbox did not start within 60s"
            chunk = handle.read(4096)
            if not chunk:
                break
            data += chunk
    lines = data.decode("utf-8", "replace").split("\n")
    errors = [line for line in lines if line.startswith("error ")]
    return errors[0] if errors else ("ok" if "ok" in lines else "error the sandbox exited during setup")


def lifeline() -> int:
    """A pipe whose write end only this server holds: its EOF tells supervisors the server is gone."""
    global _LIFELINE
    if _LIFELINE is None:
        read_end, write_end = os.pipe()
        _LIFELINE = (read_end, write_end)
    return _LIFELINE[0]


def _pids_cgroup(max_processes: int | None) -> str | None:
    """A fresh pids cgroup (v1 or v2) capping the tree's tasks; None where not writable (not root).

    RLIMIT_NPROC is not enforced for real root, so as root this cgroup is what bounds a fork bomb.
    """
    if not max_processes:
        return None
    for root in PIDS_CGROUP_ROOTS:
        v1 = root.endswith("/pids") and os.path.isfile(os.path.join(root, "cgroup.procs"))
        if not v1 and not _has_pids_v2(root):
            continue
        parent = os.path.join(root, "flash-mcp")
        with contextlib.suppress(OSError):
            os.makedirs(parent, exist_ok=True)
            _sweep(parent)
            path = os.path.join(parent, tokens.token_hex(6))
            os.mkdir(path)
            with open(os.path.join(path, "pids.max"), "w") as handle:
                handle.write(str(max_processes))
            return path
    return None


def memory_cgroup(limit: int | None) -> str | None:
    """A fresh memory cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`) bounding the whole tree's memory;
    None where none is writable (then RLIMIT_AS, per process, is the only bound)."""
    if not limit:
        return None
    for root, name in (("/sys/fs/cgroup", "memory.max"), ("/sys/fs/cgroup/unified", "memory.max"),
                       ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")):  # fmt: skip
        v2 = name == "memory.max"
        if v2 and not _has_controller(root, "memory"):
            continue
        parent = os.path.join(root, "flash-mcp")
        with contextlib.suppress(OSError):
            os.makedirs(parent, exist_ok=True)
            if v2:
                with open(os.path.join(parent, "cgroup.subtree_control"), "w") as handle:
                    handle.write("+memory")
            _sweep(parent)
            path = os.path.join(parent, tokens.token_hex(6))
            os.mkdir(path)
            with open(os.path.join(path, name), "w") as handle:
                handle.write(str(limit))
            return path
    return None


def _has_controller(root: str, controller: str) -> bool:
    try:
        return controller in Path(root, "cgroup.controllers").read_text().split() and os.access(root, os.W_OK)
    except OSError:
        return False


def _has_pids_v2(root: str) -> bool:
    try:
        return "pids" in Path(root, "cgroup.controllers").read_text().split() and os.access(root, os.W_OK)
    except OSError:
        return False


def _sweep(parent: str) -> None:
    """Remove the empty cgroups of finished sandboxes: rmdir fails on a live one, and one younger than
    the setup timeout may be about to be joined by a supervisor that is still starting."""
    for name in os.listdir(parent):
        path = os.path.join(parent, name)
        with contextlib.suppress(OSError):
            if time.time() - os.stat(path).st_mtime > SETUP_TIMEOUT_S:
                os.rmdir(path)


def kill_tree(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Kill the program and every process it started; returns once they are gone."""
    if not isinstance(process, subprocess.Popen):  # forked by a fork server: forked.ForkedProcess
        process.kill_tree(timeout)
        return
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGUSR1)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


_STATUS: dict[str, Any] | None = None


def sandbox_status(home: Path | None = None) -> dict[str, Any]:
    """What confines agent code here: probed once by starting a real sandboxed no-op."""
    global _STATUS
    if _STATUS is None:
        reason = unavailable_reason()
        if reason is None:
            try:
                probe = launch(SandboxSpec([sys.executable, "-S", "-c", "pass"], allow_unsandboxed=False))
                probe.wait()
            except UserError as exc:
                reason = str(exc)
        cgroup = _pids_cgroup(1)
        if cgroup:
            with contextlib.suppress(OSError):
                os.rmdir(cgroup)
        _STATUS = {
            "active": "none" if reason else "linux: landlock + namespaces",
            "landlock_abi": kernel.landlock_abi() if sys.platform == "linux" else 0,
            "namespaces": []
            if reason
            else ["user", "pid (fresh /proc)", "mount", "ipc", "uts", "net (env tests, training)"],
            "process_limit": "pids cgroup + RLIMIT_NPROC" if cgroup else "RLIMIT_NPROC (not enforced for root)",
            "seccomp": SECCOMP if kernel.seccomp_available() and not reason else "none",
            "unavailable_reason": reason,
        }
    out = dict(_STATUS)
    if home is not None:
        chosen = sandbox_settings(home)
        out["limits"] = chosen.limits.__dict__
        out["training_limits"] = chosen.training_limits.__dict__
        out["allow_unsandboxed"] = chosen.allow_unsandboxed
    return out
