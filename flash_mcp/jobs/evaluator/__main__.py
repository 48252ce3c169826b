"""Run one local evaluation: `python -m flash_mcp.jobs.evaluator EVAL_DIR RENDER_TO RENDER_FROM SCORE_TO SCORE_FROM`
(the pipe ends of its two environment workers). See __init__.py."""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path

from flash_mcp.domain.evaluation.record import CANCEL, update_status
from flash_mcp.runtime.worker import WorkerClient


def main() -> int:
    eval_dir = Path(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: (eval_dir / CANCEL).touch())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    update_status(eval_dir, state="running", stage="loading", started_at=time.time())
    fds = [int(fd) for fd in sys.argv[2:6]]
    workers = [WorkerClient(fds[0], fds[1]), WorkerClient(fds[2], fds[3])] if len(fds) == 4 else []
    try:
        if not workers:
            raise RuntimeError("the evaluator was started without its environment workers")
        from flash_mcp.jobs.evaluator.run import evaluate

        outcome = evaluate(eval_dir, *workers)
    except BaseException as exc:  # the evaluation's verdict, whatever happened
        traceback.print_exc()
        update_status(eval_dir, state="failed", stage="error", error=f"{type(exc).__name__}: {exc}"[:2000],
                      finished_at=time.time())  # fmt: skip
        return 1
    finally:
        for worker in workers:
            worker.close()
    update_status(eval_dir, **outcome, finished_at=time.time())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
