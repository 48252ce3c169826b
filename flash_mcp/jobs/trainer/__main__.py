"""Train one local run: `python -m flash_mcp.jobs.trainer RUN_DIR TO_WORKER FROM_WORKER` (the pipe ends of its
environment worker). See flash_mcp/jobs/trainer/__init__.py."""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path

from flash_mcp.domain.runs.rundir import CANCEL, read_json, set_status
from flash_mcp.runtime.worker import WorkerClient


def main() -> int:
    run_dir = Path(sys.argv[1])
    job = read_json(run_dir / "job.json") or {}
    signal.signal(signal.SIGTERM, lambda *_: (run_dir / CANCEL).touch())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    set_status(run_dir, state="provisioning", stage="loading")
    fds = [int(fd) for fd in sys.argv[2:4]]
    env = WorkerClient(*fds) if len(fds) == 2 else None
    try:
        if env is None:
            raise RuntimeError("the trainer was started without its environment worker")
        from flash_mcp.jobs.trainer.train import train

        outcome = train(run_dir, job, env)
    except BaseException as exc:  # the run's verdict, whatever happened
        traceback.print_exc()
        set_status(run_dir, state="failed", stage="error", error=f"{type(exc).__name__}: {exc}"[:2000])
        return 1
    finally:
        if env is not None:
            env.close()  # the worker sees EOF and exits
    set_status(run_dir, **outcome)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
