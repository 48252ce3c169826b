"""An agent finishing the local loop reads less than half the tokens it read when results were pretty JSON."""

from __future__ import annotations

import pytest
from mcp import Client

from bench.agent_loop_tokens import scripted_loop
from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.architecture.test_docs import _readme_number

pytestmark = pytest.mark.anyio


async def test_the_scripted_local_loop_reads_less_than_half_the_tokens(settings: ServerSettings) -> None:
    async with Client(build_server(settings)) as client:
        reading = await scripted_loop(client, train=True)
    print(reading.report())
    assert sum(tool == "get_run" for tool, _, _ in reading.calls) >= 12, "the loop polls a fixed 12 times or more"
    assert reading.after * 2 < reading.before, reading.report()
    once = reading.without_repeated_polls()  # the README's figures: the same on every machine
    stated = (
        _readme_number(r"about ([\d,]+) tokens against [\d,]+ with one `get_run` counted"),
        _readme_number(r"about [\d,]+ tokens against ([\d,]+) with one `get_run` counted"),
    )
    for said, live in zip(stated, (once.after, once.before), strict=True):
        assert abs(said - live) <= 0.1 * live, f"README.md: say about {once.after:,} tokens against {once.before:,}"


def test_wall_time_separates_start_up_from_the_per_step_rate(tmp_path) -> None:
    """A 3-step run that spent 15 s loading must not predict 12 steps as 4 x its wall time."""
    from flash_mcp.domain.runs import rundir
    from flash_mcp.planes.local.jobs import run_timing

    for step in (1, 2, 3):
        rundir.append_jsonl(tmp_path / rundir.METRICS, {"step": step, "time": 1000.0 + 15 + step, "loss": 1.0})
    run = {"run_dir": str(tmp_path), "created_at": 1000.0, "finished_at": 1000.0 + 15 + 3 + 2}
    startup, per_step = run_timing(run)
    assert per_step == 1.0 and startup == 17.0  # 15 s before step 1 less one step, plus 2 s saving at the end
    assert startup + per_step * 12 < 4 * (run["finished_at"] - run["created_at"])
