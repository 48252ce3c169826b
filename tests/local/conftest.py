"""Tests that train on the local plane with a tiny model: fixtures and helpers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.planes.local.plane import LocalPlane
from tests.conftest import PROJECT, call

TERMINAL = {"done", "failed", "cancelled"}
FAST_SFT = {"train.learning_rate": 0.01, "train.epochs": 3, "train.batch_size": 8}
TINY_GRPO = {
    "train.max_examples": 8, "train.prompts_per_step": 4, "train.group_size": 2, "train.max_completion_tokens": 8,
    "train.max_steps": 3, "train.save_every": 1, "train.learning_rate": 0.001,
}  # fmt: skip


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once, offline, by the real `flash-mcp tiny-model` command."""
    target = tmp_path_factory.mktemp("models") / "tiny"
    subprocess.run([sys.executable, "-m", "flash_mcp", "tiny-model", str(target)], check=True, timeout=300)
    return target


@pytest.fixture
def settings(workspace: Path, isolated_home: Path, tiny_model: Path) -> ServerSettings:
    """The human has named the tiny model as the local stand-in."""
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text(f'[local]\nstand_in_model = "{tiny_model}"\n', encoding="utf-8")
    return ServerSettings.create(workspace, home=isolated_home)


@pytest.fixture(autouse=True)
def no_stray_trainers(isolated_home: Path):
    """However a test ends, no trainer it started keeps running."""
    yield
    if (isolated_home / "state.db").exists():
        runs, _ = LocalPlane(isolated_home).store.list_runs(None, 100, 0)
        for run in runs:
            if run["pid"]:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(run["pid"], signal.SIGKILL)


async def wait_for_end(client: Client, run_id: str) -> dict:
    with anyio.fail_after(300):
        while True:
            run = await call(client, "get_run", run_id=run_id, wait_s=30)
            if run["state"] in TERMINAL:
                return run


async def wait_for_step(client: Client, run_id: str, step: int) -> dict:
    with anyio.fail_after(300):
        while True:
            run = await call(client, "get_run", run_id=run_id, wait_s=30)
            if (run["step"] or 0) >= step or run["state"] in TERMINAL:
                return run


async def pushed_project(client: Client, rows: int = 30) -> None:
    await call(client, "setup_project", directory="p", project=PROJECT)
    new_rows = [{"input": f"What is {i} + 1?", "output": str(i + 1)} for i in range(rows)]
    await call(client, "append_dataset_rows", path="p/dataset/train.jsonl", rows=new_rows)
    report = await call(client, "test_environment", directory="p", config="p/configs/sft.toml")
    assert report["verdict"] == "pass", report["summary"]
    pushed = await call(client, "push_environment", name="starter", directory="p")
    assert pushed["environment_id"] == f"local/{PROJECT}/starter"
    assert pushed["configs_updated"] == ["p/configs/opd.toml", "p/configs/rl.toml", "p/configs/sft.toml"]
