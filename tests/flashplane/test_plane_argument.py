"""One session from rehearsal to proposal: a local-plane server validates, prices and proposes on Flash by argument."""

from __future__ import annotations

import dataclasses

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import call, call_error
from tests.flashplane.conftest import ControlPlane
from tests.flashplane.test_flash_plane import rl_project, runs_on_the_plane

pytestmark = pytest.mark.anyio


@pytest.fixture
def local_first(flash_settings: ServerSettings) -> ServerSettings:
    """A server started with --plane local whose human requires approval for every paid run."""
    (flash_settings.home / "settings.toml").write_text("[budget]\nmax_run_usd = 50.0\n", encoding="utf-8")
    return dataclasses.replace(flash_settings, plane="local")


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_local_server_proposes_on_flash_without_a_restart(
    control_plane: ControlPlane, local_first: ServerSettings, mode: str
) -> None:
    built: list[str] = []

    def flash():
        built.append("flash")
        return control_plane.plane(local_first.home)

    server = build_server(local_first, plane_factories={"flash": flash})
    async with Client(server, mode=mode) as client:
        me = await call(client, "whoami")
        config = await rl_project(client)
        assert me["plane"] == "local" and built == []  # the flash plane is built only when a tool names it
        local_check = await call(client, "validate_config", config=config)
        flash_check = await call(client, "validate_config", config=config, plane="flash")
        priced = await call(client, "dry_run", config=config, plane="flash")
        proposed = await call(client, "launch_training", config=config, plane="flash")
        flash_runs = await call(client, "list_runs", plane="flash")
        local_runs = await call(client, "list_runs")
        unknown = await call_error(client, "dry_run", config=config, plane="moon")
    assert local_check["valid"] and flash_check["valid"], (local_check, flash_check)
    assert built == ["flash"]
    assert priced["plane"] == "flash" and priced["dry_run"]["quote"]["usd"] > 0, priced
    assert proposed["status"] == "awaiting_approval" and proposed["proposal"]["plane"] == "flash"
    assert runs_on_the_plane(control_plane) == []  # proposing submits nothing
    assert flash_runs["runs"] and all(run["state"] == "dry_run" for run in flash_runs["runs"])  # its quotes
    assert local_runs["runs"] == []
    assert "plane" in unknown


async def test_every_plane_bound_tool_takes_the_same_plane_argument(local_first: ServerSettings) -> None:
    async with Client(build_server(local_first, tools_cache=False)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    bound = ["whoami", "push_environment", "validate_config", "dry_run", "estimate_cost", "launch_training",
             "list_runs", "get_run", "read_run_logs", "get_run_metrics", "get_run_samples", "list_checkpoints",
             "cancel_run", "evaluate"]  # fmt: skip
    schemas = {name: tools[name].input_schema["properties"]["plane"] for name in bound}
    assert len({str(schema) for schema in schemas.values()}) == 1, schemas
    assert "local" in str(schemas["dry_run"]) and "flash" in str(schemas["dry_run"])
