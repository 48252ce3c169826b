"""Run one local evaluation: `python -m flash_mcp.jobs.evaluator EVAL_DIR`. See __init__.py."""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path

from flash_mcp.domain.evaluation.record import CANCEL, update_status


def main() -> int:
    eval_dir = Path(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: (eval_dir / CANCEL).touch())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    update_status(eval_dir, state="running", stage="loading", started_at=time.time())
    try:
        from flash_mcp.jobs.evaluator.run import evaluate

        outcome = evaluate(eval_dir)
    except BaseException as exc:  # the evaluation's verdict, whatever happened
        traceback.print_exc()
        update_status(eval_dir, state="failed", stage="error", error=f"{type(exc).__name__}: {exc}"[:2000],
                      finished_at=time.time())  # fmt: skip
        return 1
    update_status(eval_dir, **outcome, finished_at=time.time())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
