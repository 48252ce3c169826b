"""The server over real transports: stdio subprocesses, streamable HTTP, and the MCP Inspector CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from flash_mcp.surface.server.tools_cache import PACKAGED, fingerprint
from flash_mcp.transport import build_http_app
from tests.conftest import PROJECT, jsonrpc_lines

pytestmark = pytest.mark.anyio
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def _server_env(home: Path) -> dict[str, str]:
    return {**os.environ, "FLASH_MCP_HOME": str(home), "PYTHONUNBUFFERED": "1"}


OPENING = [  # a client's first two messages, as JSON-RPC lines piped at once
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]


def _serve_command(workspace: Path) -> list[str]:
    return [sys.executable, "-m", "flash_mcp", "serve", "--workspace", str(workspace)]


def test_stdio_stdout_carries_only_jsonrpc(workspace: Path, isolated_home: Path) -> None:
    """A legacy client session over a real pipe: every stdout line parses as JSON-RPC."""
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "setup_project", "arguments": {"directory": "p", "project": PROJECT}},
        },
    ]
    process = subprocess.Popen(
        _serve_command(workspace),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_server_env(isolated_home),
    )
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        lines = []
        for request in requests:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            if "id" in request:
                lines.append(process.stdout.readline())
        process.stdin.close()
        lines.append(process.stdout.read())
        assert process.wait() == 0
    finally:
        watchdog.cancel()
        process.kill()
    messages = jsonrpc_lines("".join(lines))
    by_id = {message["id"]: message for message in messages}
    assert by_id[1]["result"]["serverInfo"]["name"] == "flash-mcp"
    assert "setup_project" in {tool["name"] for tool in by_id[2]["result"]["tools"]}
    assert by_id[3]["result"]["structuredContent"]["created"][0] == "p/environment.py"
    assert "workspace" in process.stderr.read(), "logs go to stderr"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_client_over_stdio_in_both_eras(workspace: Path, isolated_home: Path, mode: str) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=_serve_command(workspace)[1:], env=_server_env(isolated_home)
    )
    async with Client(params, mode=mode) as client:
        result = await client.call_tool("setup_project", {"directory": "p"})
        assert not result.is_error
        assert (workspace / "p" / "configs" / "rl.toml").exists()


@asynccontextmanager
async def _http_app(workspace: Path, home: Path, token: str | None) -> AsyncIterator[object]:
    app = build_http_app(build_server(ServerSettings.create(workspace, home=home)), "127.0.0.1", token)
    async with app.router.lifespan_context(app):
        yield app


def _http(app: object, **headers: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:8765", headers=headers
    )


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_streamable_http_serves_both_eras_behind_the_token(
    workspace: Path, isolated_home: Path, mode: str
) -> None:
    async with _http_app(workspace, isolated_home, "s3cret") as app:
        transport = streamable_http_client(
            "http://127.0.0.1:8765/mcp", http_client=_http(app, Authorization="Bearer s3cret")
        )
        async with Client(transport, mode=mode) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "write_project_file" in names


async def test_http_refuses_missing_tokens_foreign_hosts_and_origins(workspace: Path, isolated_home: Path) -> None:
    async with _http_app(workspace, isolated_home, "s3cret") as app:
        anonymous = _http(app)
        assert (await anonymous.get("/health")).json()["ok"] is True
        assert (await anonymous.post("/mcp", json={})).status_code == 401
        wrong = _http(app, Authorization="Bearer guess")
        assert (await wrong.post("/mcp", json={})).status_code == 401
        authed = _http(app, Authorization="Bearer s3cret")
        assert (await authed.post("/mcp", json={}, headers={"Host": "evil.example"})).status_code == 421
        assert (await authed.post("/mcp", json={}, headers={"Origin": "http://evil.example"})).status_code == 403


async def test_http_on_loopback_without_a_token_still_checks_hosts(workspace: Path, isolated_home: Path) -> None:
    async with _http_app(workspace, isolated_home, None) as app:
        client = _http(app)
        assert (await client.post("/mcp", json={}, headers={"Host": "rebind.example"})).status_code == 421


def test_serving_a_public_host_without_a_token_refuses_to_start(workspace: Path, isolated_home: Path) -> None:
    env = {key: value for key, value in _server_env(isolated_home).items() if key != "FLASH_MCP_TOKEN"}
    result = subprocess.run(
        [*_serve_command(workspace), "--http", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "FLASH_MCP_TOKEN" in result.stderr
    assert result.stdout == ""


def test_serve_refuses_a_missing_workspace(tmp_path: Path, isolated_home: Path) -> None:
    result = subprocess.run(
        _serve_command(tmp_path / "nope"), capture_output=True, text=True, timeout=60, env=_server_env(isolated_home)
    )
    assert result.returncode == 2 and "not a directory" in result.stderr


def _inspector(workspace: Path, home: Path, era: str, *method: str) -> dict:
    npx = shutil.which("npx")
    assert npx, "the Inspector CLI needs Node.js and npx on PATH"
    # the Inspector passes the server only the variables it is given: keep it off the real ~/.flash-mcp and ~/.flash
    isolation = ["-e", f"FLASH_MCP_HOME={home}", "-e", f"FLASH_DATA_DIR={os.environ['FLASH_DATA_DIR']}"]
    command = [
        npx,
        "-y",
        INSPECTOR,
        "--cli",
        *isolation,
        "--protocol-era",
        era,
        *method,
        "--",
        *_serve_command(workspace),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_server_env(home))
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_inspector_cli_lists_and_calls_over_stdio(workspace: Path, isolated_home: Path, era: str) -> None:
    listed = _inspector(workspace, isolated_home, era, "--method", "tools/list", "--format", "json")
    tools = listed.get("result", listed)["tools"]
    assert {"setup_project", "read_project_file"} <= {tool["name"] for tool in tools}
    called = _inspector(
        workspace,
        isolated_home,
        era,
        "--method",
        "tools/call",
        "--tool-name",
        "setup_project",
        "--tool-args-json",
        json.dumps({"directory": "insp", "project": PROJECT}),
        "--format",
        "json",
    )
    content = called.get("result", called)["structuredContent"]
    assert content["created"][0] == "insp/environment.py"
    assert (workspace / "insp" / "TRAINING.md").exists()
    shipped = json.loads(PACKAGED.read_text())["keys"] == [fingerprint("local"), fingerprint("flash")]
    saved = bool(list((isolated_home / "cache").glob("tools-*.json")))
    assert saved is not shipped, "a first start answers from the shipped list, or builds and saves its own"
    relisted = _inspector(workspace, isolated_home, era, "--method", "tools/list", "--format", "json")
    assert relisted == listed, "a start that answers from the saved list answers the same"


def test_stdio_answers_the_requests_in_flight_when_stdin_closes(workspace: Path, isolated_home: Path) -> None:
    """Everything is piped at once and stdin closed: every request still gets its reply before the exit."""
    calls = [
        {
            "jsonrpc": "2.0",
            "id": n,
            "method": "tools/call",
            "params": {"name": "setup_project", "arguments": {"directory": f"p{n}"}},
        }
        for n in range(1, 5)
    ]
    lines = [*OPENING, *calls]
    result = subprocess.run(
        _serve_command(workspace),
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
        env=_server_env(isolated_home),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    by_id = {message["id"]: message for message in jsonrpc_lines(result.stdout)}
    assert sorted(by_id) == [0, 1, 2, 3, 4], result.stderr[-2000:]
    for n in range(1, 5):
        assert by_id[n]["result"]["structuredContent"]["created"][0] == f"p{n}/environment.py"


@pytest.mark.parametrize("cancelled", [False, True], ids=["owed", "cancelled"])
def test_stdio_stops_waiting_for_a_reply_that_never_comes_at_the_drain_bound(
    workspace: Path, isolated_home: Path, cancelled: bool
) -> None:
    """Stdin closes while a test of an environment that hangs at import is in flight (its tool thread would hold
    the shutdown for the load timeout, 120 s): the server answers what it can, gives up on that one after the
    drain bound (here 1 s, 30 s in `serve`) and exits; the child's lifeline ends it (tests/sandbox). A request
    the client cancelled is owed no reply, but its thread runs on all the same: the exit does not wait for it."""
    from tests.envs import projects as seeds

    seeds.make_project(
        workspace,
        "hangs",
        seeds.environment(top="\nwhile True:\n    time.sleep(0.05)\n"),
        seeds.rows(4),
    )
    calls = [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
         "params": {"name": "test_environment", "arguments": {"directory": "hangs", "timeout_s": 600}}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "setup_project", "arguments": {"directory": "p"}}},
    ]  # fmt: skip
    serve = (
        "import sys; from pathlib import Path; from flash_mcp.core.settings import ServerSettings; "
        "from flash_mcp.server import build_server; from flash_mcp.transport import run_stdio; "
        "run_stdio(build_server(ServerSettings.create(Path(sys.argv[1]))), drain_s=1.0)"
    )
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    lines = [*OPENING, *calls, *([cancel] * cancelled)]
    result = subprocess.run(
        [sys.executable, "-c", serve, str(workspace)],
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard: the test of that environment alone would run 120 s before its load timeout
        env=_server_env(isolated_home),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    owed = "1 request(s) still running after 1 s: exiting without their replies"
    assert (owed in result.stderr) is not cancelled, result.stderr
    by_id = {message["id"]: message for message in jsonrpc_lines(result.stdout)}
    assert sorted(by_id) == [0, 2], result.stdout[-2000:]
    assert by_id[2]["result"]["structuredContent"]["created"][0] == "p/environment.py"
