"""Launch limits that hold across server processes: one run per launch, and max_concurrent_runs counting
local runs that needed approval."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import call, call_error
from tests.entry.test_two_servers import _at_once
from tests.local.conftest import FAST_SFT, pushed_project, wait_for_end

pytestmark = pytest.mark.anyio
LONG_RUN = {**FAST_SFT, "train.max_steps": 100_000}


def _add_settings(home: Path, text: str) -> None:
    with (home / "settings.toml").open("a", encoding="utf-8") as handle:
        handle.write(text)


async def _cancel(client: Client, run_id: str) -> None:
    await call(client, "cancel_run", run_id=run_id)
    assert (await wait_for_end(client, run_id))["state"] == "cancelled"


async def test_local_runs_needing_approval_count_toward_max_concurrent_runs(
    settings: ServerSettings, isolated_home: Path
) -> None:
    _add_settings(isolated_home, '[approval]\nmode = "above_threshold"\nauto_approve_usd = 0.0\nlocal_runs = true\n'
                                 "[budget]\nmax_concurrent_runs = 1\n")  # fmt: skip
    async with Client(build_server(settings)) as client:
        await pushed_project(client)
        first = await call(client, "launch_training", config="p/configs/sft.toml", overrides=LONG_RUN)
        assert first["approved_by"] == "policy" and first["quote_usd"] == 0
        other = {**LONG_RUN, "train.learning_rate": 0.02}
        refused = await call_error(client, "launch_training", config="p/configs/sft.toml", overrides=other)
        assert "max_concurrent_runs is 1" in refused and first["run_id"] in refused
        assert (await call(client, "list_runs"))["total"] == 1
        await _cancel(client, first["run_id"])


async def test_the_same_launch_from_two_server_processes_starts_one_run(
    settings: ServerSettings, workspace: Path, isolated_home: Path
) -> None:
    async with Client(build_server(settings)) as client:
        await pushed_project(client)
    arguments = {"config": "p/configs/sft.toml", "overrides": LONG_RUN}
    results = await _at_once(workspace, isolated_home, "launch_training", arguments)
    assert not any(result.is_error for result in results), [r.content for r in results]
    run_ids = {result.structured_content["run_id"] for result in results}
    async with Client(build_server(settings)) as client:
        assert len(run_ids) == 1 and (await call(client, "list_runs"))["total"] == 1
        await _cancel(client, run_ids.pop())
