"""The sandboxed tree ends with the server that started it, however the server ends."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.envs import projects as seeds
from tests.sandbox.conftest import processes_tagged

HANGS_WITH_A_GRANDCHILD = """
import glob, subprocess
held = []
for path in glob.glob("/proc/[0-9]*/fd/*"):  # hold every reachable pipe open, hoping to keep a lifeline up
    try:
        held.append(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {tag!r}], start_new_session=True)
time.sleep(600)
"""


def _until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll an observable condition (a process appearing or vanishing) up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_killing_the_server_kills_the_environment_tree(workspace: Path, isolated_home: Path) -> None:
    tag = f"flash-mcp-tag-{secrets.token_hex(6)}"
    seeds.make_project(workspace, "p", seeds.environment(top=HANGS_WITH_A_GRANDCHILD.format(tag=tag)), seeds.rows(2))
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
         "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "test_environment", "arguments": {"directory": "p", "timeout_s": 600}}},
    ]  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "flash_mcp", "serve", "--workspace", str(workspace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "FLASH_MCP_HOME": str(isolated_home)},
    )
    try:
        for request in requests:
            server.stdin.write(json.dumps(request) + "\n")
            server.stdin.flush()
            if request.get("id") == 1:
                assert json.loads(server.stdout.readline())["id"] == 1
        assert _until(lambda: bool(processes_tagged(tag)), 60), "the environment's grandchild never started"
    finally:
        server.kill()
        server.wait()
    assert _until(lambda: not processes_tagged(tag), 10), "the sandboxed tree outlived the server"
