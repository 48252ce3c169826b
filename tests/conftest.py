"""Shared fixtures: an isolated workspace and state directory, and in-process MCP clients."""

from __future__ import annotations

import json
import os
import socketserver
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server

PROJECT = "0b5e4f0e-6a2a-4b8e-9a11-0c1d2e3f4a5b"
ERAS = ("legacy", "2026-07-28")

# The README runs two pytest workers, which start training and evaluation jobs side by side: each job's torch runs
# on one thread (the sandbox passes OMP_NUM_THREADS through), not one per core against the other worker's job; the
# tiny model gains nothing from more, and the oversubscribed threads cost the suite about a fifth of its CPU time.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _preloaded_jobs() -> None:
    """Start this worker's fork servers now, so its first training job and its first environment test start warm
    too (they run no test code)."""
    from flash_mcp.sandbox import warm_up_env_tests, warm_up_jobs

    warm_up_jobs()
    warm_up_env_tests()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches the real ~/.flash-mcp or ~/.flash."""
    home = tmp_path / "state"
    monkeypatch.setenv("FLASH_MCP_HOME", str(home))
    monkeypatch.setenv("FLASH_DATA_DIR", str(tmp_path / "flash-data"))
    monkeypatch.delenv("FLASH_MCP_PLANE", raising=False)
    return home


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def settings(workspace: Path, isolated_home: Path) -> ServerSettings:
    return ServerSettings.create(workspace, home=isolated_home)


@pytest.fixture(params=ERAS)
async def client(request: pytest.FixtureRequest, settings: ServerSettings) -> AsyncIterator[Client]:
    """An in-process client, once per protocol era."""
    async with Client(build_server(settings), mode=request.param) as connected:
        yield connected


async def call(client: Client, tool: str, **arguments) -> dict:
    """Call a tool that must succeed; return its structured content."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments) -> str:
    """Call a tool that must fail with a refusal it explains; return the error text the model sees.

    A crash (any exception but a refusal) reaches the model as only "Error executing tool <name>": never a pass."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert ":" in text.removeprefix(f"Error executing tool {tool}"), f"{tool} crashed instead of refusing: {text}"
    return text


def jsonrpc_lines(stdout: str) -> list[dict]:
    """Parse every stdout line as JSON-RPC, failing on anything else."""
    messages = []
    for line in stdout.splitlines():
        message = json.loads(line)
        assert message.get("jsonrpc") == "2.0", line
        messages.append(message)
    return messages


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[socketserver.BaseServer]:
    """A socketserver serving in a daemon thread for the test, shut down and closed after it."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
