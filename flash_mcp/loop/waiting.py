"""Waiting for a change: the one long-poll behind get_run(wait_s=…) and get_evaluation(wait_s=…).

A wait ends at the first change the caller asked for, when the thing can no longer change, or at the
deadline, whichever comes first. Reads run in a worker thread; the wait itself sleeps on the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

import anyio
import anyio.to_thread

from flash_mcp.domain.evaluation.record import FINAL_STATES
from flash_mcp.loop import evaluate
from flash_mcp.planes.base import TERMINAL, Plane, RunView

RunUntil = Literal["state", "step", "metric"]
EvalUntil = Literal["state", "progress"]
POLL_SECONDS = 0.5
T = TypeVar("T")


async def poll(read: Callable[[], T], moved: Callable[[T, T], bool], wait_s: float) -> T:
    """`read()` until `moved(first, now)` or `wait_s` seconds have passed; the last reading."""
    deadline = time.monotonic() + wait_s
    first = now = await anyio.to_thread.run_sync(read)
    while not moved(first, now) and (left := deadline - time.monotonic()) > 0:
        await anyio.sleep(min(POLL_SECONDS, left))
        now = await anyio.to_thread.run_sync(read)
    return now


def run_moved(first: RunView, now: RunView, until: RunUntil = "state") -> bool:
    """Whether the run did what the caller waits for: a new state (always), a new step, or new metrics."""
    if now.state != first.state or now.state in TERMINAL:
        return True
    if until == "step":
        return now.step != first.step
    if until == "metric":
        return now.latest_metrics != first.latest_metrics
    return False


async def wait_for_run(plane: Plane, run_id: str, wait_s: float, until: RunUntil = "state") -> RunView:
    """The run once it moved as asked (see `run_moved`), or as it stands at the deadline."""
    return await poll(lambda: plane.get_run(run_id), lambda a, b: run_moved(a, b, until), wait_s)


def evaluation_moved(first: tuple[str, int], now: tuple[str, int], until: EvalUntil = "state") -> bool:
    """(state, answers done) readings: a new state (always), or newly scored answers when asked."""
    if now[0] != first[0] or now[0] in FINAL_STATES:
        return True
    return until == "progress" and now[1] != first[1]


async def wait_for_evaluation(home: Path, eval_id: str, wait_s: float, until: EvalUntil = "state") -> None:
    """Return once the evaluation moved as asked (see `evaluation_moved`) or at the deadline."""
    await poll(lambda: evaluate.progress_of(home, eval_id), lambda a, b: evaluation_moved(a, b, until), wait_s)
