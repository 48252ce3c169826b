"""A real trainer beside a hostile environment, through a real MCP client: the environment runs in its own worker
sandbox, so what it forges (a `done` at step 999, a rewritten job.json, a pid naming another process) never
reaches the run directory, and a file past the human's file-size limit is stopped in the worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import anyio
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


WITNESS = """

import os as _os

_score = StarterEnv.score_response


def _witnessed(self, example, response_text):
    if _os.path.exists("status.json"):  # its forgery, where it could write it: the worker's own scratch
        return RewardResult(score=0.0, error="forged status.json written in " + _os.getcwd())
    return _score(self, example, response_text)


StarterEnv.score_response = _witnessed
"""


async def test_a_forging_environment_never_reaches_the_run_directory(
    settings: ServerSettings, workspace: Path, isolated_home: Path
) -> None:
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        async with Client(build_server(settings)) as client:
            tail = f"\nBYSTANDER = {bystander.pid}\n" + FORGER + WITNESS
            launched = await _launch(client, workspace, tail, FAST_SFT)
            run_id = launched["run_id"]
            spec_before = (await client.read_resource(f"flash://runs/{run_id}/spec")).contents[0].text
            seen = []
            with anyio.fail_after(300):
                while (run := await call(client, "get_run", run_id=run_id, wait_s=5, until="step"))["state"] not in (
                    "done", "failed", "cancelled"
                ):  # fmt: skip
                    seen.append(run["step"])
            spec_after = (await client.read_resource(f"flash://runs/{run_id}/spec")).contents[0].text
        run_dir = isolated_home / "runs" / run_id
        assert run["state"] == "done" and run["step"] not in (999, None) and 999 not in seen, (run, seen)
        status = json.loads((run_dir / "status.json").read_text())
        assert 999 not in (status["step"], status["total_steps"]) and "forged" not in (run_dir / "job.json").read_text()
        assert spec_after == spec_before and "forged" not in spec_after
        witnessed = [row for row in map(json.loads, (run_dir / "samples.jsonl").read_text().splitlines())
                     if "forged status.json written" in (row.get("reason") or "")]  # fmt: skip
        assert witnessed, "the forger ran (in its worker) and scored from there"
        assert str(run_dir) not in witnessed[0]["reason"], "the worker's cwd is not the run directory"
        assert LocalPlane(isolated_home).store.get_run(run_id)["worker_scratch"] is None, "the scratch was removed"
        assert bystander.poll() is None, "the pid the environment named was never signalled"
    finally:
        os.killpg(bystander.pid, signal.SIGKILL)
        bystander.wait()


async def test_cancel_stops_the_real_trainer(settings: ServerSettings, workspace: Path, isolated_home: Path) -> None:
    async with Client(build_server(settings)) as client:
        launched = await _launch(client, workspace, "", {**FAST_SFT, "train.max_steps": 100_000})
        run_id = launched["run_id"]
        await wait_for_step(client, run_id, 1)
        row = LocalPlane(isolated_home).store.get_run(run_id)
        trainer = Spawned(row["pid"], row["pid_start"])
        assert running(trainer)
        await call(client, "cancel_run", run_id=run_id)
        ended = await wait_for_end(client, run_id)  # an end only once the trainer's process is gone
    assert not running(trainer), "cancel stopped the real trainer"
    assert ended["state"] == "cancelled", ended
    assert not Path(row["worker_scratch"]).exists(), "the worker's scratch was removed once the run ended"


async def test_a_file_past_the_size_limit_is_stopped(
    settings: ServerSettings, workspace: Path, isolated_home: Path
) -> None:
    with (isolated_home / "settings.toml").open("a", encoding="utf-8") as handle:
        handle.write("[sandbox]\ntraining_file_mb = 1\n")  # the environment worker's limit, as its training run's
    async with Client(build_server(settings)) as client:
        launched = await _launch(client, workspace, BIG_WRITER, FAST_SFT)
        run = await wait_for_end(client, launched["run_id"])
    assert run["state"] == "failed" and "File too large" in run["error"], run["error"]
    assert not (isolated_home / "runs" / launched["run_id"] / "filler").exists(), "it wrote in its own scratch"
