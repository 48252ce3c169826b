"""launch_job: the trainer's and the evaluator's start, detached, from the fork server where it can serve them."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from flash_mcp.sandbox import api
from flash_mcp.sandbox.api import (
    SandboxSpec,
    checked_grants,
    read_status,
    sandbox_settings,
    supervisor_config,
    unavailable_reason,
)
from flash_mcp.sandbox.forkserver import FORK_SERVER
from flash_mcp.sandbox.policy import base_env, gpu_device_nodes, python_argv
from flash_mcp.sandbox.process import Spawned, signal_job, spawned

JOB_ENV = {"PYTHONUNBUFFERED": "1"}  # what launch_job adds to a job's clean environment


def launch_job(
    home: Path,
    module: str,
    job_dir: Path,
    read_only: list[Path | str],
    secrets: dict[str, str] | None = None,
    *,
    pass_fds: tuple[int, ...] = (),
    args: Sequence[str] = (),
) -> Spawned:  # a job gets the GPU's device nodes: only the trainer and the evaluator start this way
    """Start a long job (`python -m module job_dir`) in the sandbox, detached, with the human's training limits.

    A server restart leaves it running; cancel kills its tree. It reads `read_only`, writes only `job_dir`
    (its output goes to `job_dir/log`), has no network, and gets `secrets` by name, nothing of the server's
    environment; `pass_fds` (e.g. its environment workers' pipe ends) and `args` follow `job_dir`. Returns the server's
    record of the process (pid and start time): the only handle on it.
    """
    policy = sandbox_settings(home)
    with (job_dir / "log").open("ab") as log:
        spec = SandboxSpec(
            python_argv(module, str(job_dir), *args),
            read_only=read_only,
            read_write=[job_dir],
            env=JOB_ENV,
            secrets=secrets or {},
            limits=policy.training_limits,
            detached=True,
            cwd=job_dir,
            stdout=log,
            allow_unsandboxed=policy.allow_unsandboxed,
            state_dir=home,
            gpu=True,
            pass_fds=pass_fds,
        )
        if policy.preload_jobs:
            with contextlib.suppress(LookupError):
                return _launch_preloaded(spec, log.fileno())
        return spawned(api.launch(spec).pid)


def pipe_holding(data: bytes) -> int:
    """The read end of a pipe that holds `data` and then EOF (LookupError where it would not fit the pipe)."""
    read_end, write_end = os.pipe()
    try:
        if len(data) > fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ):
            raise LookupError("too many secrets to hand over by pipe")
        os.write(write_end, data)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return read_end


def warm_up_jobs(wait_s: float = 0.0) -> bool:
    """Start the fork server now rather than at the first job; whether it is ready (waiting up to `wait_s`)."""
    return FORK_SERVER.warm(base_env("/", JOB_ENV), wait_s)


def _launch_preloaded(spec: SandboxSpec, log: int) -> Spawned:
    """Start a detached `python -P -m module` job from the fork server (forkserver.py): the same sandbox, without
    the imports. LookupError where it cannot (no sandbox, a GPU here, the fork server not ready, its setup failed):
    the caller starts the job cold."""
    if unavailable_reason() or gpu_device_nodes() or list(spec.argv[:3]) != python_argv("")[:3]:
        raise LookupError("this job starts cold")
    if not warm_up_jobs():
        raise LookupError("the fork server is not ready yet")
    read_only, read_write = checked_grants(spec)
    config = supervisor_config(spec, read_only, read_write, sandboxed=True)
    config["env"] = {name: value for name, value in config["env"].items() if name not in spec.secrets}
    secrets_r = pipe_holding(json.dumps(dict(spec.secrets)).encode())
    status_r, status_w = os.pipe()
    config["status_fd"] = status_w
    try:
        pid, start = FORK_SERVER.spawn(config, [status_w, log, secrets_r, *spec.pass_fds])
    except LookupError:
        os.close(status_r)
        raise
    finally:
        os.close(status_w)
        os.close(secrets_r)
    job = Spawned(pid, start if start >= 0 else None)
    if read_status(status_r) != "ok":
        signal_job(job, signal.SIGKILL)
        raise LookupError("the fork server's job did not start")
    return job
