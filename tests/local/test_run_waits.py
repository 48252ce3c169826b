"""get_run(wait_s=…) waits for what the caller names (a new state by default, a step, new metrics), and a
run's updated_at follows its latest change: through a real MCP client on the local plane."""

from __future__ import annotations

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import call
from tests.local.conftest import FAST_SFT, TERMINAL, pushed_project, wait_for_step

pytestmark = pytest.mark.anyio
LONG_SFT = {**FAST_SFT, "train.epochs": 10}  # 40 steps: long enough to be seen running
WAIT = 300  # the tool's ceiling; each call here returns on a change long before it


async def test_a_wait_returns_on_what_it_names_and_updated_at_follows_the_run(settings: ServerSettings) -> None:
    async with Client(build_server(settings)) as client:
        await pushed_project(client)
        launched = await call(client, "launch_training", config="p/configs/sft.toml", overrides=LONG_SFT)
        run_id = launched["run_id"]
        running = await wait_for_step(client, run_id, 1)
        assert running["state"] == "running" and running["total_steps"] == 40, running
        assert running["updated_at"] > running["created_at"], "the trainer's progress moves updated_at"

        stepped = await call(client, "get_run", run_id=run_id, wait_s=WAIT, until="step")
        assert stepped["step"] != running["step"] or stepped["state"] in TERMINAL, stepped
        assert stepped["updated_at"] >= running["updated_at"]
        measured = await call(client, "get_run", run_id=run_id, wait_s=WAIT, until="metric")
        assert measured["latest_metrics"] != stepped["latest_metrics"] or measured["state"] in TERMINAL, measured

        ended = await call(client, "get_run", run_id=run_id, wait_s=WAIT)  # until="state": not after one step
        assert ended["state"] == "done" and ended["step"] == 40, ended
        assert ended["updated_at"] >= ended["finished_at"] > running["updated_at"]
        again = await call(client, "get_run", run_id=run_id, wait_s=WAIT)
        assert again["state"] == "done", "a run that can no longer change returns at once"
