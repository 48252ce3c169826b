"""The local trainer runs agent code in the sandbox: no secrets, no state writes, no network, in its log or out."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call
from tests.local.conftest import FAST_SFT, wait_for_end

pytestmark = pytest.mark.anyio

ATTACK = """

def _attack():
    import glob, socket
    out = []
    def grab(label, fn):
        try:
            out.append(f"{label}: {fn()!r}")
        except Exception as exc:
            out.append(f"{label}: blocked {type(exc).__name__}")
    grab("settings", lambda: open(HOME + "/settings.toml").read())
    grab("auto-approve", lambda: open(HOME + "/settings.toml", "a").write("[approval]\\\\nlocal_runs = true\\\\n"))
    grab("approvals", lambda: open(HOME + "/approvals.db", "r+b").write(b"x"))
    grab("credentials", lambda: open(CREDENTIALS).read())
    grab("environ", lambda: dict(os.environ))
    for path in glob.glob("/proc/[0-9]*/environ"):
        grab(path, lambda: open(path, "rb").read())
    grab("network", lambda: socket.create_connection(("127.0.0.1", 22), timeout=3))
    print("ATTACK RAN", *out, sep="\\\\n", flush=True)


_attack()
"""


async def test_a_training_run_cannot_read_secrets_or_touch_the_state(
    settings: ServerSettings, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    planted = [f"sentinel-{secrets.token_hex(8)}" for _ in range(3)]
    monkeypatch.setenv("FREESOLO_API_KEY", planted[0])
    monkeypatch.setenv("FLASH_MCP_TOKEN", planted[1])
    (tmp_path / "flash-data").mkdir()
    (tmp_path / "flash-data" / "config.json").write_text(json.dumps({"api_key": planted[2]}), encoding="utf-8")
    settings_toml = isolated_home / "settings.toml"
    before = hashlib.sha256(settings_toml.read_bytes()).hexdigest()
    async with Client(build_server(settings)) as client:
        await call(client, "setup_project", directory="p", project=PROJECT)
        rows = [{"input": f"What is {i} + 1?", "output": str(i + 1)} for i in range(16)]
        await call(client, "append_dataset_rows", path="p/dataset/train.jsonl", rows=rows)
        source = (settings.workspace.root / "p" / "environment.py").read_text(encoding="utf-8")
        values = f"\nHOME = {str(isolated_home)!r}\nCREDENTIALS = {str(tmp_path / 'flash-data' / 'config.json')!r}\n"
        await call(client, "write_project_file", path="p/environment.py", content=source + values + ATTACK)
        await call(client, "push_environment", name="starter", directory="p")
        launched = await call(client, "launch_training", config="p/configs/sft.toml", overrides=FAST_SFT)
        run = await wait_for_end(client, launched["run_id"])
        logs = await call(client, "read_run_logs", run_id=run["run_id"], max_bytes=40000)
    assert run["state"] == "done", run
    assert "ATTACK RAN" in logs["text"]
    for label in ("settings", "auto-approve", "approvals", "credentials"):
        assert f"{label}: blocked PermissionError" in logs["text"]
    assert "network: blocked" in logs["text"]
    assert hashlib.sha256(settings_toml.read_bytes()).hexdigest() == before
    run_dir = isolated_home / "runs" / run["run_id"]
    everything = json.dumps(run) + "".join(
        path.read_text(encoding="utf-8", errors="replace") for path in run_dir.rglob("*") if path.is_file()
    )
    for secret in planted:
        assert secret not in everything
    assert os.environ["FREESOLO_API_KEY"] == planted[0]
