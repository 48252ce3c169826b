"""A real trainer running hostile environment code, through a real MCP client: what it writes into its run
directory (a forged `done` at step 999, a rewritten job.json, a pid naming another process) changes nothing
the server decides, and a file past the human's file-size limit is stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.planes.local.plane import LocalPlane
from flash_mcp.sandbox.process import Spawned, running
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call
from tests.local.conftest import FAST_SFT, wait_for_end, wait_for_step

pytestmark = pytest.mark.anyio

FORGER = """

def _forge():
    import json, os, threading, time
    def loop():
        while True:
            with open("status.json.tmp", "w") as handle:
                json.dump({"state": "done", "stage": "done", "step": 999, "total_steps": 999, "pid": BYSTANDER}, handle)
            os.replace("status.json.tmp", "status.json")
            with open("job.json", "w") as handle:
                json.dump({"spec": {"algorithm": "grpo", "model": "forged"}}, handle)
            time.sleep(0.05)
    threading.Thread(target=loop, daemon=True).start()


_forge()
"""

BIG_WRITER = """

with open("filler", "wb") as _handle:
    _handle.write(b"x" * (3 << 20))
"""


async def _launch(client: Client, workspace: Path, tail: str, overrides: dict) -> dict:
    await call(client, "setup_project", directory="p", project=PROJECT)
    rows = [{"input": f"What is {i} + 1?", "output": str(i + 1)} for i in range(16)]
    await call(client, "append_dataset_rows", path="p/dataset/train.jsonl", rows=rows)
    source = (workspace / "p" / "environment.py").read_text(encoding="utf-8")
    await call(client, "write_project_file", path="p/environment.py", content=source + tail)
    await call(client, "push_environment", name="starter", directory="p")
    return await call(client, "launch_training", config="p/configs/sft.toml", overrides=overrides)


async def test_a_forging_environment_cannot_end_its_run_or_aim_the_cancel(
    settings: ServerSettings, workspace: Path, isolated_home: Path
) -> None:
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        async with Client(build_server(settings)) as client:
            tail = f"\nBYSTANDER = {bystander.pid}\n" + FORGER
            launched = await _launch(client, workspace, tail, {**FAST_SFT, "train.max_steps": 100_000})
            run_id = launched["run_id"]
            spec_before = (await client.read_resource(f"flash://runs/{run_id}/spec")).contents[0].text
            await wait_for_step(client, run_id, 999)  # the forger's step: the run is live either way
            status = json.loads((isolated_home / "runs" / run_id / "status.json").read_text())
            assert status["state"] == "done", "the forger did write its `done`"
            run = await call(client, "get_run", run_id=run_id, wait_s=2)
            assert run["state"] in ("provisioning", "running"), run
            spec_after = (await client.read_resource(f"flash://runs/{run_id}/spec")).contents[0].text
            assert spec_after == spec_before and "forged" not in spec_after
            row = LocalPlane(isolated_home).store.get_run(run_id)
            trainer = Spawned(row["pid"], row["pid_start"])
            assert running(trainer)
            await call(client, "cancel_run", run_id=run_id)
            ended = await wait_for_end(client, run_id)  # an end only once the trainer's process is gone
        assert not running(trainer), "cancel stopped the real trainer"
        assert ended["state"] in ("cancelled", "done"), ended  # the forger may have had the last word
        assert bystander.poll() is None, "the pid the job named was never signalled"
    finally:
        os.killpg(bystander.pid, signal.SIGKILL)
        bystander.wait()


async def test_a_file_past_the_size_limit_is_stopped(
    settings: ServerSettings, workspace: Path, isolated_home: Path
) -> None:
    with (isolated_home / "settings.toml").open("a", encoding="utf-8") as handle:
        handle.write("[sandbox]\ntraining_file_mb = 1\n")
    async with Client(build_server(settings)) as client:
        launched = await _launch(client, workspace, BIG_WRITER, FAST_SFT)
        run = await wait_for_end(client, launched["run_id"])
    filler = isolated_home / "runs" / launched["run_id"] / "filler"
    assert run["state"] == "failed" and "File too large" in run["error"], run["error"]
    assert filler.stat().st_size <= 1 << 20
