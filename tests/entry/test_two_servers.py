"""Two real server processes (stdio) on one workspace and one state directory behave as one."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio
CALLS, ROWS_PER_CALL = 30, 10


def server(workspace: Path, home: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "flash_mcp", "serve", "--workspace", str(workspace)],
        env={**os.environ, "FLASH_MCP_HOME": str(home), "PYTHONUNBUFFERED": "1"},
    )


async def test_two_servers_appending_at_once_lose_no_rows(workspace: Path, isolated_home: Path) -> None:
    (workspace / "d").mkdir()
    (workspace / "d" / "train.jsonl").write_text('{"input": "seed"}\n', encoding="utf-8")
    ready = anyio.Event()
    connected = []

    async def appender(tag: str) -> None:
        async with Client(server(workspace, isolated_home)) as client:
            connected.append(tag)
            if len(connected) == 2:
                ready.set()
            await ready.wait()  # both processes are up before either appends
            for call in range(CALLS):
                rows = [{"input": f"{tag}-{call}-{k}"} for k in range(ROWS_PER_CALL)]
                result = await client.call_tool("append_dataset_rows", {"path": "d/train.jsonl", "rows": rows})
                assert not result.is_error, result.content

    with anyio.fail_after(240):
        async with anyio.create_task_group() as group:
            group.start_soon(appender, "a")
            group.start_soon(appender, "b")
    lines = (workspace / "d" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    inputs = [json.loads(line)["input"] for line in lines]
    expected = {f"{tag}-{call}-{k}" for tag in "ab" for call in range(CALLS) for k in range(ROWS_PER_CALL)}
    assert len(inputs) == 1 + len(expected) and set(inputs) == expected | {"seed"}


async def _at_once(workspace: Path, home: Path, tool: str, arguments: dict) -> list:
    """Two server processes call the same tool with the same arguments at the same moment."""
    ready, connected, results = anyio.Event(), [], []

    async def one() -> None:
        async with Client(server(workspace, home)) as client:
            connected.append(client)
            if len(connected) == 2:
                ready.set()
            await ready.wait()
            results.append(await client.call_tool(tool, arguments))

    with anyio.fail_after(240):
        async with anyio.create_task_group() as group:
            group.start_soon(one)
            group.start_soon(one)
    return results


async def test_the_same_launch_from_two_servers_makes_one_proposal(workspace: Path, isolated_home: Path) -> None:
    from flash_mcp.core.settings import ServerSettings
    from flash_mcp.domain.approval.store import ApprovalStore
    from flash_mcp.server import build_server
    from tests.conftest import PROJECT, call

    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text('[approval]\nmode = "always"\nlocal_runs = true\n', encoding="utf-8")
    async with Client(build_server(ServerSettings.create(workspace, home=isolated_home))) as client:
        await call(client, "setup_project", directory="p", project=PROJECT)
        await call(client, "push_environment", name="starter", directory="p")
    results = await _at_once(workspace, isolated_home, "launch_training", {"config": "p/configs/sft.toml"})
    assert not any(result.is_error for result in results), [r.content for r in results]
    ids = {result.structured_content["proposal"]["id"] for result in results}
    assert len(ids) == 1
    assert [p.id for p in ApprovalStore(isolated_home).list()] == list(ids)
