"""Once a job has ended, the server keeps only its directory's layout, capped and within the human's quota, and a
training run's or an evaluation's environment worker runs under the training limits, not the env-test ones.

Hostile leftovers are written into the run and evaluation directories directly, as the job would have written them,
after its process (a harmless `sleep`, recorded as the server records a trainer) has ended; the limits are read by
a real environment in its real worker beside a real trainer and a real evaluator, all through an MCP client."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain import lifecycle
from flash_mcp.domain.evaluation.record import MAX_ROWS_BYTES, write_workers
from flash_mcp.domain.runs import rundir
from flash_mcp.sandbox.process import Spawned, spawned
from flash_mcp.sandbox.workers import PREFIX
from flash_mcp.server import build_server
from tests.conftest import call
from tests.local.conftest import CONSTANT_ENV, constant_answer_project, sleep, wait_for_end, wait_for_evaluation
from tests.local.test_hostile_job_files import fake_eval, fake_run

pytestmark = pytest.mark.anyio
RUNNING = json.dumps({"state": "running", "step": 3})


def ended(sleepers: list[subprocess.Popen]) -> Spawned:
    """The record of a job's process that has since exited."""
    process = sleep(sleepers)
    record = spawned(process.pid)
    process.kill()
    process.wait()
    return record


def lines(count: int, pad: int = 100) -> bytes:
    return b"".join(json.dumps({"step": i, "loss": 1.0, "pad": "y" * pad}).encode() + b"\n" for i in range(count))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """What a planted link points at: the human's files, which must stay as they are."""
    target = tmp_path / "outside"
    target.mkdir()
    (target / "precious.txt").write_text("keep me", encoding="utf-8")
    return target


def plant(run_dir: Path, outside: Path) -> None:
    """What a hostile trainer could leave: strays, links out, a FIFO, oversized files, junk among checkpoints."""
    (run_dir / "stray.bin").write_bytes(os.urandom(1 << 20))
    (run_dir / "nested" / "deep").mkdir(parents=True)
    (run_dir / "nested" / "deep" / "more.bin").write_bytes(b"x" * 4096)
    (run_dir / "escape").symlink_to(outside)
    (run_dir / rundir.SAMPLES).symlink_to(outside / "precious.txt")
    os.mkfifo(run_dir / "pipe")
    step = run_dir / rundir.CHECKPOINTS / "step-2"
    step.mkdir(parents=True)
    (step / "adapter_model.safetensors").write_bytes(b"a" * 4096)
    (step / "link").symlink_to(outside)
    (run_dir / rundir.CHECKPOINTS / "final").mkdir()
    (run_dir / rundir.CHECKPOINTS / "final" / "adapter_model.safetensors").write_bytes(b"f" * 4096)
    (run_dir / rundir.CHECKPOINTS / "junk").write_bytes(b"j" * 4096)
    (run_dir / rundir.JOB).write_text(json.dumps({"pad": "z" * (rundir.MAX_JSON_BYTES + 1)}), encoding="utf-8")
    (run_dir / rundir.METRICS).write_bytes(lines(80_000))  # ~9 MiB, over the 8 MiB a reader reads
    with (run_dir / rundir.LOG).open("wb") as log:
        log.write(b"HEAD-MARK\n" + b"noise\n" * (3 << 20) + b"TAIL-MARK\n")  # ~18 MiB


async def test_an_ended_runs_strays_links_and_oversized_files_are_removed_or_capped(
    settings: ServerSettings, isolated_home: Path, outside: Path, sleepers: list[subprocess.Popen]
) -> None:
    run_dir = fake_run(isolated_home, "local-1-hostile", RUNNING, ended(sleepers))
    plant(run_dir, outside)
    for _ in range(2):  # and again after a restart: settled once
        async with Client(build_server(settings)) as client:
            listed = {r["run_id"]: r for r in (await call(client, "list_runs"))["runs"]}
            run = await call(client, "get_run", run_id="local-1-hostile")
            metrics = await call(client, "get_run_metrics", run_id="local-1-hostile", names=["loss"])
            log = await call(client, "read_run_logs", run_id="local-1-hostile", max_bytes=16)
    assert listed["local-1-hostile"]["state"] == run["state"] == "failed", run
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "log", "metrics.jsonl", "status.json"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["final", "step-2"]
    assert os.listdir(run_dir / "checkpoints" / "step-2") == ["adapter_model.safetensors"], "its link removed"
    assert (outside / "precious.txt").read_text(encoding="utf-8") == "keep me", "no link was followed"
    metrics_bytes = (run_dir / rundir.METRICS).read_bytes()
    assert len(metrics_bytes) <= rundir.MAX_JSONL_BYTES and metrics_bytes.endswith(b"\n")
    assert json.loads(metrics_bytes.splitlines()[0])["step"] > 0, "its tail, from a whole line"
    assert json.loads(metrics_bytes.splitlines()[-1])["step"] == 79_999 == metrics["series"]["loss"][-1][0]
    text = (run_dir / rundir.LOG).read_bytes()
    assert len(text) <= rundir.MAX_LOG_BYTES and text.startswith(b"HEAD-MARK") and text.endswith(b"TAIL-MARK\n")
    assert b"bytes removed here when the job ended" in text and log["text"] == "HEAD-MARK\nnoise\n"
    notes = [note for note in run["notes"] if "flash-mcp" in note]
    assert len(notes) == 2, notes  # one for what was removed, one for what was capped, not repeated on a reread
    for name in (
        "stray.bin",
        "nested",
        "escape (a link)",
        "pipe",
        "samples.jsonl (a link)",
        "checkpoints/junk",
        "checkpoints/step-2/link (a link)",
        "job.json (over 1 MiB)",
    ):
        assert name in notes[0], (name, notes[0])
    assert "metrics.jsonl to its last 8 MiB" in notes[1] and "log to its first and last 16 MiB" in notes[1]


async def test_an_ended_run_over_its_quota_drops_its_oldest_checkpoints_then_shrinks_its_files(
    settings: ServerSettings, isolated_home: Path, sleepers: list[subprocess.Popen]
) -> None:
    with (isolated_home / "settings.toml").open("a", encoding="utf-8") as handle:
        handle.write("[sandbox]\njob_disk_mb = 2\n")
    run_dir = fake_run(isolated_home, "local-1-big", RUNNING, ended(sleepers))
    for name in ("step-1", "step-2", "step-10", "final"):
        (run_dir / rundir.CHECKPOINTS / name).mkdir(parents=True)
        size = 100 << 10 if name == "final" else 1 << 20
        (run_dir / rundir.CHECKPOINTS / name / "adapter_model.safetensors").write_bytes(os.urandom(size))
    (run_dir / rundir.METRICS).write_bytes(lines(20_000))  # ~2.4 MiB
    async with Client(build_server(settings)) as client:
        run = await call(client, "get_run", run_id="local-1-big")
        metrics = await call(client, "get_run_metrics", run_id="local-1-big", names=["loss"])
        checkpoints = await call(client, "list_checkpoints", run_id="local-1-big")
    assert lifecycle.disk_used(run_dir, 1 << 30) <= 2 << 20, "within the quota"
    assert [c["id"] for c in checkpoints["checkpoints"]] == ["local-1-big/final"], "every step dropped, not final"
    assert metrics["series"]["loss"][-1][0] == 19_999, "the metrics' tail kept"
    dropped = next(note for note in run["notes"] if "dropped" in note)
    assert "checkpoints/step-1, checkpoints/step-2, checkpoints/step-10 (the oldest first)" in dropped, dropped
    assert any("capped metrics.jsonl to its last" in note for note in run["notes"]), run["notes"]


async def test_an_ended_evaluation_keeps_its_layout_its_rows_and_no_worker_scratch(
    settings: ServerSettings, isolated_home: Path, outside: Path, sleepers: list[subprocess.Popen]
) -> None:
    with (isolated_home / "settings.toml").open("a", encoding="utf-8") as handle:
        handle.write("[sandbox]\njob_disk_mb = 1\n")
    directory = fake_eval(isolated_home, "eval-hostile", RUNNING, ended(sleepers), ["test:a", "test:b"])
    scratch = Path(tempfile.mkdtemp(prefix=PREFIX))
    (scratch / "log").write_text("the worker's output", encoding="utf-8")
    write_workers(directory, [str(scratch)])
    (directory / "spec.json").unlink()
    (directory / "spec.json").symlink_to(outside / "precious.txt")
    (directory / "escape").symlink_to(outside)
    (directory / "stray").mkdir()
    (directory / "stray" / "blob").write_bytes(os.urandom(1 << 20))
    row = {"row_id": "test:a", "completion": "x", "score": 1.0}
    with (directory / "rows.jsonl").open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n" + json.dumps({**row, "row_id": "test:b", "score": 0.5}) + "\n")
        handle.write((json.dumps({**row, "row_id": "test:z"}) + "\n") * 60_000)  # ~3 MiB the spec never named
    async with Client(build_server(settings)) as client:
        found = await call(client, "get_evaluation", eval_id="eval-hostile")
        listed = {e["eval_id"] for e in (await call(client, "list_evaluations"))["evaluations"]}
    assert found["state"] == "failed" and "eval-hostile" in listed, found
    assert found["summary"]["n_rows"] == 2 and found["summary"]["mean_reward"] == 0.75, "the rows at its head kept"
    assert sorted(p.name for p in directory.iterdir()) == ["rows.jsonl", "spec.json", "status.json"]
    assert not (directory / "spec.json").is_symlink() and json.loads((directory / "spec.json").read_text())["eval_id"]
    assert (outside / "precious.txt").read_text(encoding="utf-8") == "keep me", "no link was followed"
    assert (directory / "rows.jsonl").stat().st_size < 1 << 20 <= MAX_ROWS_BYTES
    assert lifecycle.disk_used(directory, 1 << 30) <= 1 << 20, "within the quota"
    assert not scratch.exists(), "the environment workers' scratch is removed when the evaluation ends"
    removed = next(note for note in found["notes"] if "removed" in note)
    assert "spec.json (a link)" in removed and "escape (a link)" in removed and "stray" in removed, removed
    assert any("capped rows.jsonl to its first" in note for note in found["notes"]), found["notes"]


LIMITS_REPORTER = """

import resource as _resource


def _limits(self, example, response_text):
    cpu, size = (_resource.getrlimit(getattr(_resource, name))[0] for name in ("RLIMIT_CPU", "RLIMIT_FSIZE"))
    return RewardResult(score=0.0, error=f"worker limits cpu={cpu} fsize={size}")


ConstantEnv.score_response = _limits
"""


async def test_a_training_runs_and_an_evaluations_workers_get_the_training_limits(
    settings: ServerSettings, workspace: Path, isolated_home: Path
) -> None:
    with (isolated_home / "settings.toml").open("a", encoding="utf-8") as handle:
        handle.write("[sandbox]\ncpu_seconds = 1234\nfile_mb = 1025\ntraining_cpu_seconds = 86407\n"
                     "training_file_mb = 4097\n")  # fmt: skip
    training = f"worker limits cpu=86407 fsize={4097 << 20}"
    async with Client(build_server(settings)) as client:
        config = await constant_answer_project(client, workspace)
        source = (workspace / "p" / "environment.py").read_text(encoding="utf-8")
        assert source == CONSTANT_ENV
        await call(client, "write_project_file", path="p/environment.py", content=source + LIMITS_REPORTER)
        await call(client, "push_environment", name="constant", directory="p")
        launched = await call(client, "launch_training", config=config,
                              overrides={"train.max_steps": 1, "train.batch_size": 8})  # fmt: skip
        evaluation = await call(client, "evaluate", config=config, target="base", max_rows=2, max_tokens=4)
        run = await wait_for_end(client, launched["run_id"])
        samples = await call(client, "get_run_samples", run_id=launched["run_id"])
        found = await wait_for_evaluation(client, evaluation["eval_id"])
    assert run["state"] == "done", run
    left = {p.name for p in (isolated_home / "runs" / run["run_id"]).iterdir()}
    assert left <= {"job.json", "status.json", "metrics.jsonl", "samples.jsonl", "log", "checkpoints"}, left
    assert not [note for note in run["notes"] + found["notes"] if "flash-mcp" in note], "nothing noteworthy left"
    reasons = {sample["reason"] for sample in samples["samples"]}
    assert reasons == {training}, f"the run's worker ran under the training limits: {reasons}"
    errors = {row["error"] for row in found["rows"]}
    assert len(found["rows"]) == 2 and errors == {training}, f"the evaluation's workers too: {errors}"
