"""Tests that train on the local plane with a tiny model: fixtures and helpers."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
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
    """Built once per test run, offline, by the real `flash-mcp tiny-model` command; under pytest-xdist the
    workers share it (the first one builds it under a lock in the run's common temporary folder)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = shared / "tiny-model"
    with open(shared / "tiny-model.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "config.json").is_file():
            building = shared / f"tiny-model.{os.getpid()}"
            subprocess.run([sys.executable, "-m", "flash_mcp", "tiny-model", str(building)], check=True, timeout=300)
            building.rename(target)
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


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen]]:
    """Harmless process groups of their own (a job's stand-in), killed however the test ends."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def sleep(sleepers: list[subprocess.Popen]) -> subprocess.Popen:
    process = subprocess.Popen(["sleep", "600"], start_new_session=True)
    sleepers.append(process)
    return process


async def wait_for_end(client: Client, run_id: str) -> dict:
    with anyio.fail_after(300):
        while True:
            run = await call(client, "get_run", run_id=run_id, wait_s=30)
            if run["state"] in TERMINAL:
                return run


async def wait_for_step(client: Client, run_id: str, step: int) -> dict:
    with anyio.fail_after(300):
        while True:
            run = await call(client, "get_run", run_id=run_id, wait_s=30, until="step")
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


# -- evaluation scenarios -------------------------------------------------------------------------

CONSTANT_ENV = '''"""Every answer is "yes": a task the tiny model learns on CPU in seconds (exact match, stripped)."""

import json
from pathlib import Path

from freesolo.environments import EnvironmentSingleTurn, RewardResult

ROWS = Path(__file__).parent / "dataset" / "train.jsonl"


def load_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class ConstantEnv(EnvironmentSingleTurn):
    dataset = load_jsonl(ROWS)

    def build_prompt_messages(self, example, prompt_text):
        return [{"role": "user", "content": example.input}]

    def score_response(self, example, response_text):
        return RewardResult(score=1.0 if response_text.strip() == str(example.output) else 0.0, threshold=1.0)


def load_environment(dataset_path=None, **kwargs):
    env = ConstantEnv()
    if dataset_path:
        env.dataset = load_jsonl(dataset_path)
    return env
'''
ANSWER = "yes"
CONSTANT_SFT = {"train.learning_rate": 0.01, "train.max_steps": 20, "train.batch_size": 8, "train.save_every": 10}
EVAL_SAMPLING = {"max_tokens": 6, "temperature": 0.0}


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


async def constant_answer_project(client: Client, workspace: Path, train: int = 16, test: int = 12) -> str:
    """A project whose every gold answer is "yes", with a held-out test split; pushed. Returns its SFT config."""
    await call(client, "setup_project", directory="p", project=PROJECT)
    project = workspace / "p"
    (project / "environment.py").write_text(CONSTANT_ENV, encoding="utf-8")
    (project / "dataset" / "train.jsonl").write_text(
        _jsonl([{"input": f"Is {i} a number?", "output": ANSWER} for i in range(train)]), encoding="utf-8"
    )
    (project / "dataset" / "test.jsonl").write_text(
        _jsonl([{"input": f"Is {i} a number?", "output": ANSWER} for i in range(100, 100 + test)]), encoding="utf-8"
    )
    await call(client, "push_environment", name="constant", directory="p")
    return "p/configs/sft.toml"


async def wait_for_evaluation(client: Client, eval_id: str) -> dict:
    with anyio.fail_after(300):
        while True:
            found = await call(client, "get_evaluation", eval_id=eval_id, wait_s=30, rows_limit=200)
            if found["state"] in TERMINAL:
                return found


@pytest.fixture
async def trained_constant_answer(settings: ServerSettings, workspace: Path) -> dict:
    """The known positive, evaluated: an SFT run on the constant-answer task, with a base evaluation and an
    evaluation of RUN/final on the same held-out rows and sampling. Returns config, run_id, base_eval_id,
    adapter_eval_id, and both finished evaluations (as get_evaluation returned them)."""
    from flash_mcp.server import build_server

    async with Client(build_server(settings)) as client:
        config = await constant_answer_project(client, workspace)
        launched = await call(client, "launch_training", config=config, overrides=CONSTANT_SFT)
        base = await call(client, "evaluate", config=config, target="base", **EVAL_SAMPLING)
        run = await wait_for_end(client, launched["run_id"])
        assert run["state"] == "done", run
        adapter = await call(client, "evaluate", config=config, target=f"{run['run_id']}/final", **EVAL_SAMPLING)
        base_done = await wait_for_evaluation(client, base["eval_id"])
        adapter_done = await wait_for_evaluation(client, adapter["eval_id"])
    return {
        "config": config, "run_id": run["run_id"], "base_eval_id": base["eval_id"],
        "adapter_eval_id": adapter["eval_id"], "base": base_done, "adapter": adapter_done,
    }  # fmt: skip
