"""launch_worker: the environment worker (`flash_mcp.jobs.env_worker`) in the sandbox, joined by two pipes.

The worker reads the pushed package only, writes only a private empty scratch (its cwd, HOME and TMPDIR, its
log there), has no network and gets the declared secrets by name. It is given no model and no evaluation or
run directory. Its limits are the caller's explicit choice (`WorkerLimits`): a training run's or an evaluation's
worker runs as long as its job and gets the human's training limits, a re-score's the env-test limits. The
caller talks to it through `flash_mcp.runtime.worker.WorkerClient(w.to_worker, w.from_worker)`, or hands both
ends to another sandboxed job through `pass_fds` and closes its copies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flash_mcp.sandbox.api import Limits, SandboxSettings, SandboxSpec, launch, python_argv, sandbox_settings

WorkerLimits = Literal["training", "env_test"]  # [sandbox] training_* (training runs, evaluations), or the plain ones
MODULE = "flash_mcp.jobs.env_worker"
LOG = "log"
PREFIX = "flash-mcp-worker-"


@dataclass
class Worker:
    process: subprocess.Popen
    to_worker: int  # write requests here
    from_worker: int  # read replies here
    scratch: Path  # the worker's only writable directory; `remove_scratch` once it has ended

    def close(self) -> None:
        """Close this side's pipe ends (the worker sees EOF and exits)."""
        for fd in (self.to_worker, self.from_worker):
            with contextlib.suppress(OSError):
                os.close(fd)


def launch_worker(
    home: Path,
    package: Path | str,
    *,
    limits: WorkerLimits,
    secrets: dict[str, str] | None = None,
    detached: bool = False,
    scratch: Path | None = None,
) -> Worker:
    """Start a worker on the pushed `package` under the human's `limits` ("training": the training_* limits, for
    the worker beside a training run or an evaluation; "env_test": the plain ones); `detached` lets it outlive
    this server (a detached job's worker).

    `scratch` must be an empty directory of its own, never inside an evaluation or run directory; by default a
    fresh one under the system's temporary directory."""
    policy = sandbox_settings(home)
    chosen = worker_limits(policy, limits)
    scratch = Path(scratch or tempfile.mkdtemp(prefix=PREFIX))
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    try:
        with (scratch / LOG).open("ab") as log:
            process = launch(
                SandboxSpec(
                    python_argv(MODULE, str(requests_r), str(replies_w)),
                    read_only=[package],
                    read_write=[scratch],
                    env={"PYTHONUNBUFFERED": "1"},
                    secrets=secrets or {},
                    limits=chosen,
                    pass_fds=(requests_r, replies_w),
                    detached=detached,
                    cwd=scratch,
                    stdout=log,
                    allow_unsandboxed=policy.allow_unsandboxed,
                    state_dir=home,
                )
            )
    except BaseException:
        for fd in (requests_w, replies_r):
            os.close(fd)
        raise
    finally:
        os.close(requests_r)
        os.close(replies_w)
    return Worker(process, requests_w, replies_r, scratch)


def worker_limits(policy: SandboxSettings, limits: WorkerLimits) -> Limits:
    """The human's limits a worker runs under, by the caller's explicit choice."""
    if limits not in ("training", "env_test"):
        raise ValueError(f"worker limits must be 'training' or 'env_test', not {limits!r}")
    return policy.training_limits if limits == "training" else policy.limits


def remove_scratch(scratch: Path | str) -> None:
    """Remove a finished worker's scratch made by `launch_worker` (never follows a link it planted)."""
    path = Path(scratch)
    if path.parent == Path(tempfile.gettempdir()) and path.name.startswith(PREFIX) and path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
