"""On the local plane the concurrency limit counts the local store's active runs, paid or not."""

from __future__ import annotations

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import call, call_error
from tests.local.conftest import FAST_SFT, pushed_project, wait_for_end, wait_for_step

pytestmark = pytest.mark.anyio


async def test_a_paid_local_launch_counts_every_active_local_run(settings: ServerSettings) -> None:
    stand_in = (settings.home / "settings.toml").read_text()
    async with Client(build_server(settings), mode="legacy") as client:
        await pushed_project(client)
        free = await call(client, "launch_training", config="p/configs/sft.toml",
                          overrides={**FAST_SFT, "train.max_steps": 100_000})  # fmt: skip
        await wait_for_step(client, free["run_id"], 1)
        (settings.home / "settings.toml").write_text(
            stand_in + '[approval]\nmode = "above_threshold"\nlocal_runs = true\n[budget]\nmax_concurrent_runs = 1\n'
        )
        refused = await call_error(client, "launch_training", config="p/configs/sft.toml", overrides=FAST_SFT)
        await call(client, "cancel_run", run_id=free["run_id"])
        assert (await wait_for_end(client, free["run_id"]))["state"] == "cancelled"
    assert free["approved_by"] == "not needed"
    assert f"1 runs are active on the local plane ({free['run_id']};" in refused
    assert "max_concurrent_runs is 1" in refused and "nothing was launched" in refused
