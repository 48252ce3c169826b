"""Files a job wrote are untrusted: through a real MCP client on the local plane, a forged status, a 100,000-deep
status, a pid that names another process and huge JSONL files change nothing the server shows or signals, cost
bounded memory, and never break a listing of the other runs and evaluations (also after a restart).

The runs and evaluations here are recorded as the server records them (its store, its sealed spec and process
record); their "job" is a harmless `sleep` the test started, so no trainer is needed to write hostile files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain import lifecycle
from flash_mcp.domain.evaluation.record import EvalSpec, eval_dir, write_spec
from flash_mcp.planes.local.plane import LocalPlane
from flash_mcp.sandbox.process import Spawned, spawned
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call, call_error
from tests.local.conftest import sleep

pytestmark = pytest.mark.anyio
DEEP = '{"state": "done", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
FORGED_DONE = json.dumps({"state": "done", "stage": "done", "step": 999, "total_steps": 999})


def fake_run(home: Path, run_id: str, status: str, process: Spawned | None, age_s: float = 0.0) -> Path:
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(status, encoding="utf-8")
    now = time.time() - age_s
    LocalPlane(home).store.add_run({
        "run_id": run_id, "state": "running", "algorithm": "sft", "model": "m", "trained_model": "m",
        "config": "p/configs/sft.toml", "environment_id": "local/default/starter", "created_at": now,
        "updated_at": now, "notes": [], "run_dir": str(run_dir), "job": {"spec": {"algorithm": "sft", "model": "m"}},
        "pid": process.pid if process else None, "pid_start": process.start if process else None,
    })  # fmt: skip
    return run_dir


def fake_eval(home: Path, eval_id: str, status: str, process: Spawned | None, rows: list[str]) -> Path:
    directory = eval_dir(home, eval_id)
    spec = EvalSpec(eval_id=eval_id, target="base", plane="local", config="p/configs/sft.toml", model="m",
                    environment_id="local/default/starter", environment_digest="d", split="test",
                    row_ids=rows)  # fmt: skip
    write_spec(directory, spec)
    lifecycle.write_record(directory, lifecycle.JobRecord(process, time.time()))
    (directory / "status.json").write_text(status, encoding="utf-8")
    return directory


async def test_a_100000_deep_status_breaks_only_its_own_run_and_evaluation(
    settings: ServerSettings, isolated_home: Path, sleepers: list[subprocess.Popen]
) -> None:
    fake_run(isolated_home, "local-1-good", json.dumps({"state": "running", "step": 3}), spawned(sleep(sleepers).pid))
    fake_run(isolated_home, "local-2-deep", DEEP, spawned(sleep(sleepers).pid))
    fake_run(isolated_home, "local-3-dead", DEEP, None, age_s=100)
    fake_eval(isolated_home, "eval-good", json.dumps({"state": "running"}), spawned(sleep(sleepers).pid), ["test:a"])
    fake_eval(isolated_home, "eval-deep", DEEP, spawned(sleep(sleepers).pid), ["test:a"])
    for _ in range(2):  # and again after a restart
        async with Client(build_server(settings)) as client:
            runs = {r["run_id"]: r for r in (await call(client, "list_runs"))["runs"]}
            assert runs["local-1-good"]["state"] == "running" and runs["local-1-good"]["step"] == 3
            assert runs["local-2-deep"]["state"] == "running"
            assert "status.json nests deeper than 64 levels" in runs["local-2-deep"]["error"]
            assert (
                runs["local-3-dead"]["state"] == "failed"
                and "exited without finishing" in runs["local-3-dead"]["error"]
            )
            deep = await call(client, "get_run", run_id="local-2-deep")
            assert deep["state"] == "running" and "nests deeper" in deep["error"]
            assert (await call(client, "get_run", run_id="local-1-good"))["error"] is None
            listed = {e["eval_id"]: e for e in (await call(client, "list_evaluations"))["evaluations"]}
            assert listed["eval-good"]["state"] == "running" and listed["eval-good"]["error"] is None
            assert listed["eval-deep"]["state"] == "running" and "nests deeper" in listed["eval-deep"]["error"]
            assert (await call(client, "get_evaluation", eval_id="eval-deep"))["state"] == "running"
            assert (await call(client, "get_evaluation", eval_id="eval-good"))["state"] == "running"


async def test_a_forged_end_and_a_forged_pid_are_not_believed_or_signalled(
    settings: ServerSettings, isolated_home: Path, sleepers: list[subprocess.Popen]
) -> None:
    trainer, bystander, evaluator = sleep(sleepers), sleep(sleepers), sleep(sleepers)
    forged = json.dumps({**json.loads(FORGED_DONE), "pid": bystander.pid})
    run_dir = fake_run(isolated_home, "local-1-forged", forged, spawned(trainer.pid))
    (run_dir / "job.json").write_text(json.dumps({"spec": {"algorithm": "grpo", "model": "forged"}}), "utf-8")
    fake_eval(isolated_home, "eval-forged", forged, spawned(evaluator.pid), ["test:a"])
    async with Client(build_server(settings)) as client:
        run = await call(client, "get_run", run_id="local-1-forged")
        assert run["state"] == "running", "a live trainer's `done` is not an end"
        spec = await client.read_resource("flash://runs/local-1-forged/spec")
        assert json.loads(spec.contents[0].text) == {"algorithm": "sft", "model": "m"}, "the sealed spec"
        assert (await call(client, "get_evaluation", eval_id="eval-forged"))["state"] == "running"
        await call(client, "cancel_run", run_id="local-1-forged")
        await call(client, "cancel_evaluation", eval_id="eval-forged")
        assert trainer.wait(timeout=30) == -signal.SIGTERM and evaluator.wait(timeout=30) == -signal.SIGTERM
        assert bystander.poll() is None, "the pid a job named is never signalled"
        run = await call(client, "get_run", run_id="local-1-forged")
        assert run["state"] == "done", "once the trainer exited, its last word is its end"
        assert (await call(client, "get_evaluation", eval_id="eval-forged"))["state"] == "done"


async def test_a_forged_done_does_not_free_a_concurrency_slot(
    settings: ServerSettings, isolated_home: Path, sleepers: list[subprocess.Popen]
) -> None:
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text(
        '[approval]\nmode = "above_threshold"\nauto_approve_usd = 0.0\nlocal_runs = true\n'
        "[budget]\nmax_concurrent_runs = 1\n", encoding="utf-8",
    )  # fmt: skip
    fake_run(isolated_home, "local-1-forged", FORGED_DONE, spawned(sleep(sleepers).pid))
    async with Client(build_server(settings)) as client:
        await call(client, "setup_project", directory="p", project=PROJECT)
        await call(client, "push_environment", name="starter", directory="p")
        refused = await call_error(client, "launch_training", config="p/configs/sft.toml")
    assert "max_concurrent_runs is 1" in refused and "local-1-forged" in refused


async def test_huge_rows_and_metrics_files_cost_bounded_memory(
    settings: ServerSettings, isolated_home: Path, sleepers: list[subprocess.Popen]
) -> None:
    directory = fake_eval(isolated_home, "eval-huge", json.dumps({"state": "running"}), None, ["test:a", "test:b"])
    row = {"row_id": "test:a", "completion": "x" * 200, "score": 1.0}
    with (directory / "rows.jsonl").open("w", encoding="utf-8") as handle:
        handle.write(json.dumps({**row, "score": 0.25}) + "\n" + json.dumps({**row, "row_id": "test:b"}) + "\n")
        handle.write((json.dumps({**row, "row_id": "test:z"}) + "\n") * 300_000)  # ~80 MB the spec never named
    run_dir = fake_run(isolated_home, "local-1-huge", json.dumps({"state": "running"}), spawned(sleep(sleepers).pid))
    with (run_dir / "metrics.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"step": i, "loss": 1.0, "pad": "y" * 100}) + "\n" for i in range(600_000))
    big = (directory / "rows.jsonl").stat().st_size + (run_dir / "metrics.jsonl").stat().st_size
    async with Client(build_server(settings)) as client:
        await call(client, "list_runs")  # the server's own start-up allocations, before counting
        tracemalloc.start()
        try:
            found = await call(client, "get_evaluation", eval_id="eval-huge", rows_limit=10)
            metrics = await call(client, "get_run_metrics", run_id="local-1-huge", names=["loss"])
            await call(client, "get_run", run_id="local-1-huge")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert found["summary"]["n_rows"] == 2 and found["summary"]["mean_reward"] == 0.625, "each named row once"
    assert metrics["series"]["loss"], metrics
    assert peak < 48 << 20 < big // 3, f"peak {peak >> 20} MiB reading {big >> 20} MiB of job files"


async def test_a_job_past_its_directory_quota_is_stopped_and_failed(
    settings: ServerSettings, isolated_home: Path, sleepers: list[subprocess.Popen]
) -> None:
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text("[sandbox]\njob_disk_mb = 1\n", encoding="utf-8")
    trainer, evaluator = sleep(sleepers), sleep(sleepers)
    run_dir = fake_run(isolated_home, "local-1-big", json.dumps({"state": "running"}), spawned(trainer.pid))
    directory = fake_eval(isolated_home, "eval-big", json.dumps({"state": "running"}), spawned(evaluator.pid), ["a"])
    for job_dir in (run_dir, directory):
        (job_dir / "filler").write_bytes(os.urandom(2 << 20))
    async with Client(build_server(settings)) as client:
        await call(client, "get_run", run_id="local-1-big")
        await call(client, "get_evaluation", eval_id="eval-big")
        assert trainer.wait(timeout=30) == -signal.SIGTERM and evaluator.wait(timeout=30) == -signal.SIGTERM
        run = await call(client, "get_run", run_id="local-1-big")
        found = await call(client, "get_evaluation", eval_id="eval-big")
    for ended in (run, found):
        assert ended["state"] == "failed" and "wrote more than 1 MiB" in ended["error"], ended["error"]
