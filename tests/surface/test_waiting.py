"""The waiting rules as plain functions: what counts as a move for a run and for an evaluation."""

from __future__ import annotations

import anyio
import pytest

from flash_mcp.loop import waiting
from flash_mcp.planes.base import RunView


def view(**fields) -> RunView:
    base = {"run_id": "r", "plane": "local", "state": "running", "algorithm": "sft", "model": "m",
            "created_at": 1.0, "updated_at": 1.0, "step": 1, "latest_metrics": {"loss": 2.0}}  # fmt: skip
    return RunView(**{**base, **fields})


@pytest.mark.parametrize(
    ("now", "until", "moved"),
    [
        ({"step": 2, "latest_metrics": {"loss": 1.0}}, "state", False),
        ({"state": "done"}, "state", True),
        ({"step": 2}, "step", True),
        ({"latest_metrics": {"loss": 1.0}}, "step", False),
        ({"latest_metrics": {"loss": 1.0}}, "metric", True),
        ({"step": 2}, "metric", False),
        ({"state": "failed"}, "metric", True),
    ],
)
def test_run_moved(now: dict, until: waiting.RunUntil, moved: bool) -> None:
    assert waiting.run_moved(view(), view(**now), until) is moved


def test_a_finished_run_has_moved_already() -> None:
    assert waiting.run_moved(view(state="done"), view(state="done"))


@pytest.mark.parametrize(
    ("now", "until", "moved"),
    [
        (("running", 5), "state", False),
        (("running", 5), "progress", True),
        (("running", 1), "progress", False),
        (("done", 1), "state", True),
        (("cancelled", 1), "progress", True),
    ],
)
def test_evaluation_moved(now: tuple[str, int], until: waiting.EvalUntil, moved: bool) -> None:
    assert waiting.evaluation_moved(("running", 1), now, until) is moved


def test_poll_stops_at_the_first_move_and_at_the_deadline() -> None:
    readings = iter(range(100))

    async def main() -> tuple[int, int]:
        moved = await waiting.poll(lambda: next(readings), lambda first, now: now - first >= 2, wait_s=60)
        unmoved = await waiting.poll(lambda: 7, lambda first, now: first != now, wait_s=0)
        return moved, unmoved

    assert anyio.run(main) == (2, 7)
