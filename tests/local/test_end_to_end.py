"""The main loop end to end over real transports: a stdio server process, and a server process on a loopback socket.

Scaffold, rows, test the environment, validate, push, dry-run, price, propose (the human approves every run
here), the human approves from the command line, and the agent reads the run it trained (the tiny model, a few steps) —
every step through the wire an agent uses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import PROJECT, call
from tests.local.conftest import FAST_SFT, wait_for_end

pytestmark = pytest.mark.anyio


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "FLASH_MCP_HOME": str(home), "PYTHONUNBUFFERED": "1"}


def _serve(workspace: Path) -> list[str]:
    return [sys.executable, "-m", "flash_mcp", "serve", "--workspace", str(workspace)]


@asynccontextmanager
async def _over_stdio(workspace: Path, home: Path) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=_serve(workspace)[1:], env=_env(home))
    async with Client(params) as client:
        yield client


@asynccontextmanager
async def _over_http(workspace: Path, home: Path) -> AsyncIterator[Client]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*_serve(workspace), "--http", "--port", str(port)], env=_env(home), stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with anyio.fail_after(120):  # bounds a server that never comes up; the loop waits on /health answering
            while True:
                assert server.poll() is None, server.stderr.read()
                try:
                    async with httpx.AsyncClient() as health:
                        if (await health.get(f"{url}/health")).status_code == 200:
                            break
                except httpx.TransportError:
                    await anyio.sleep(0.1)
        async with Client(streamable_http_client(f"{url}/mcp")) as client:
            yield client
    finally:
        server.terminate()
        server.wait(timeout=60)


TRANSPORTS = {"stdio": _over_stdio, "http": _over_http}


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_the_loop_from_scaffold_to_a_trained_run(
    workspace: Path, isolated_home: Path, tiny_model: Path, transport: str
) -> None:
    isolated_home.mkdir(parents=True, exist_ok=True)
    settings = f'[approval]\nmode = "always"\nlocal_runs = true\n\n[local]\nstand_in_model = "{tiny_model}"\n'
    (isolated_home / "settings.toml").write_text(settings, encoding="utf-8")
    async with TRANSPORTS[transport](workspace, isolated_home) as client:
        created = await call(client, "setup_project", directory="p", project=PROJECT)
        assert "p/environment.py" in created["created"]
        rows = [{"input": f"What is {i} + 1?", "output": str(i + 1)} for i in range(12)]
        await call(client, "append_dataset_rows", path="p/dataset/train.jsonl", rows=rows)

        report = await call(client, "test_environment", directory="p", config="p/configs/sft.toml")
        assert report["verdict"] == "pass", report["summary"]
        assert report["rows_checked"] == report["rows_passed"] > 12

        unpushed = await call(client, "validate_config", config="p/configs/sft.toml")
        assert [error["key"] for error in unpushed["errors"]] == ["environment.id"], unpushed["errors"]
        pushed = await call(client, "push_environment", name="starter", directory="p")
        assert pushed["environment_id"] == f"local/{PROJECT}/starter"
        checked = await call(client, "validate_config", config="p/configs/sft.toml")
        assert checked["valid"] is True, checked["errors"]

        planned = await call(client, "dry_run", config="p/configs/sft.toml")
        assert planned["valid"] is True and planned["dry_run"]["rows"] == report["rows_checked"]
        priced = await call(client, "estimate_cost", config="p/configs/sft.toml")
        assert priced["usd"] == 0.0 and priced["hosted_estimate"]["reason"], priced

        launched = await call(client, "launch_training", config="p/configs/sft.toml", overrides=FAST_SFT)
        proposal = launched["proposal"]
        assert launched["state"] == "awaiting_approval" and launched["run_id"] is None, launched
        assert proposal["status"] == "pending" and proposal["environment_digest"] == pushed["digest"]

        listed = await call(client, "list_proposals")
        assert [p["id"] for p in listed["proposals"]] == [proposal["id"]]
        runs = await call(client, "list_runs")
        assert runs["runs"] == [], "nothing ran before the human approved"
        guide = await client.read_resource("flash://guide")
        assert "test_environment" in guide.contents[0].text

        approved = subprocess.run(
            [sys.executable, "-m", "flash_mcp", "approve", proposal["id"], "--yes"],
            capture_output=True, text=True, timeout=120, env=_env(isolated_home), cwd=workspace,
        )  # fmt: skip
        assert approved.returncode == 0, approved.stderr[-2000:]
        [run] = (await call(client, "list_runs"))["runs"]
        ended = await wait_for_end(client, run["run_id"])
        assert ended["state"] == "done", ended
        metrics = await call(client, "get_run_metrics", run_id=run["run_id"])
        assert metrics["series"], metrics
        summary = await client.read_resource(f"flash://runs/{run['run_id']}")
        assert run["run_id"] in summary.contents[0].text
