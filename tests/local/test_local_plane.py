"""The local plane end to end through an MCP client: push, dry-run, real TRL training on a tiny model."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import ElicitResult

from flash_mcp.core.settings import ServerSettings
from flash_mcp.planes.local.plane import LocalPlane
from flash_mcp.server import build_server
from tests.conftest import call, call_error
from tests.local.conftest import FAST_SFT, TINY_GRPO, pushed_project, wait_for_end, wait_for_step

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(settings: ServerSettings):
    async with Client(build_server(settings)) as connected:
        yield connected


async def test_sft_end_to_end_trains_an_adapter_whose_loss_falls(client: Client, isolated_home: Path) -> None:
    await pushed_project(client)
    planned = await call(client, "dry_run", config="p/configs/sft.toml", overrides=FAST_SFT)
    assert planned["valid"] and planned["dry_run"]["rows"] == 32 and planned["dry_run"]["steps"] == 12
    assert planned["dry_run"]["quote"]["usd"] == 0.0 and any("stand-in" in n for n in planned["dry_run"]["notes"])
    assert planned["dry_run"]["tokens"] > 32 * 4
    grpo = await call(client, "dry_run", config="p/configs/rl.toml", overrides={"train.max_examples": 32})
    assert grpo["dry_run"]["quote"]["hosted_estimate_usd"] > 0, "Flash's own offline estimate for the hosted run"
    launched = await call(client, "launch_training", config="p/configs/sft.toml", overrides=FAST_SFT)
    assert launched["plane"] == "local" and launched["state"] in ("queued", "provisioning", "running")
    run = await wait_for_end(client, launched["run_id"])
    assert run["state"] == "done", run
    assert run["trained_model"] and "stand-in" in run["notes"][0]
    metrics = await call(client, "get_run_metrics", run_id=run["run_id"], names=["loss"])
    losses = [value for _, value in metrics["series"]["loss"]]
    assert len(losses) == 12 and losses[-1] < losses[0]
    assert metrics["trends"][0]["trend"] == "falling"
    checkpoints = await call(client, "list_checkpoints", run_id=run["run_id"])
    final = checkpoints["checkpoints"][-1]
    assert final["id"] == f"{run['run_id']}/final"
    assert (Path(final["path"]) / "adapter_model.safetensors").is_file()
    samples = await call(client, "get_run_samples", run_id=run["run_id"], limit=50)
    assert samples["total"] == 40 and {"prompt", "completion", "reward"} <= set(samples["samples"][0])
    assert sorted({s["step"] for s in samples["samples"]}) == [0, 3, 6, 9, 12], "before, through and after the run"
    assert all(s["row_id"].startswith("train:example_0000") for s in samples["samples"])
    logs = await call(client, "read_run_logs", run_id=run["run_id"], max_bytes=200)
    assert logs["next_offset"] == 200 and logs["more"]
    listed = await call(client, "list_runs")
    assert listed["runs"][0]["run_id"] == run["run_id"] and listed["plane"] == "local"
    estimate = await call(client, "dry_run", config="p/configs/sft.toml", overrides=FAST_SFT)
    assert estimate["dry_run"]["wall_time_s"] is not None, "calibrated by the finished run"


async def test_grpo_records_reward_per_step_and_scored_samples(client: Client, isolated_home: Path) -> None:
    await pushed_project(client, rows=6)
    launched = await call(client, "launch_training", config="p/configs/rl.toml", overrides=TINY_GRPO)
    run = await wait_for_end(client, launched["run_id"])
    assert run["state"] == "done", run
    metrics = await call(client, "get_run_metrics", run_id=run["run_id"])
    assert [step for step, _ in metrics["series"]["reward"]] == [1, 2, 3]
    assert len(metrics["series"]["reward_std"]) == 3 and "truncation_rate" in metrics["series"]
    checkpoints = [
        c["id"].split("/")[1] for c in (await call(client, "list_checkpoints", run_id=run["run_id"]))["checkpoints"]
    ]
    assert checkpoints == ["step-1", "step-2", "final"]
    samples = (await call(client, "get_run_samples", run_id=run["run_id"], limit=50))["samples"]
    assert {sample["step"] for sample in samples} == {0, 1, 2, 3}, "the model before the first step, then rollouts"
    step_two = (await call(client, "get_run_samples", run_id=run["run_id"], step=2))["samples"]
    kinds = [s["kind"] for s in step_two]
    assert kinds.count("rollout") == 8 and kinds == ["reference"] + ["rollout"] * 8, kinds
    assert {s["kind"] for s in samples if s["step"] == 0} == {"probe"} and samples[-1]["kind"] == "rollout"
    assert all(sample["reward"] in (0.0, 1.0) and sample["prompt"].startswith("What is") for sample in samples)


async def test_cancel_asks_the_human_and_keeps_checkpoints(settings: ServerSettings) -> None:
    asked: list[str] = []

    async def human(context, params):
        asked.append(params.message)
        if len(asked) == 1:
            return ElicitResult(action="decline")
        return ElicitResult(action="accept", content={"cancel": True})

    async with Client(build_server(settings), elicitation_callback=human) as client:
        await pushed_project(client)
        long_run = {**FAST_SFT, "train.max_steps": 100_000, "train.save_every": 1}
        launched = await call(client, "launch_training", config="p/configs/sft.toml", overrides=long_run)
        await wait_for_step(client, launched["run_id"], 2)
        declined = await call_error(client, "cancel_run", run_id=launched["run_id"])
        assert "declined" in declined
        assert (await call(client, "get_run", run_id=launched["run_id"]))["state"] == "running"
        await call(client, "cancel_run", run_id=launched["run_id"])
        assert len(asked) == 2 and launched["run_id"] in asked[0]
        run = await wait_for_end(client, launched["run_id"])
        assert run["state"] == "cancelled"
        checkpoints = (await call(client, "list_checkpoints", run_id=run["run_id"]))["checkpoints"]
        assert checkpoints[0]["id"] == f"{run['run_id']}/step-1"


async def test_a_restarted_server_still_reads_the_run_to_completion(settings: ServerSettings) -> None:
    async with Client(build_server(settings)) as first:
        await pushed_project(first)
        launched = await call(first, "launch_training", config="p/configs/sft.toml", overrides=FAST_SFT)
    async with Client(build_server(settings), mode="legacy") as second:
        run = await wait_for_end(second, launched["run_id"])
        assert run["state"] == "done" and run["step"] == 12


async def test_a_killed_trainer_is_reported_failed_with_a_reason(client: Client, isolated_home: Path) -> None:
    await pushed_project(client)
    long_run = {**FAST_SFT, "train.max_steps": 100_000}
    launched = await call(client, "launch_training", config="p/configs/sft.toml", overrides=long_run)
    await wait_for_step(client, launched["run_id"], 1)
    pid = LocalPlane(isolated_home).store.get_run(launched["run_id"])["pid"]
    os.killpg(pid, signal.SIGKILL)
    run = await wait_for_end(client, launched["run_id"])
    assert run["state"] == "failed" and "exited without finishing" in run["error"]
    assert any("read_run_logs" in step for step in run["next"])


async def test_launch_is_refused_until_an_edited_environment_is_pushed_again(client: Client, workspace: Path) -> None:
    await pushed_project(client)
    env_py = workspace / "p" / "environment.py"
    env_py.write_text(env_py.read_text() + "\n# tweak the reward later\n", encoding="utf-8")
    text = await call_error(client, "launch_training", config="p/configs/sft.toml")
    assert "changed on disk since the push" in text and "push_environment" in text
    assert (await call(client, "list_runs"))["total"] == 0
    await call(client, "push_environment", name="starter", directory="p")
    planned = await call(client, "dry_run", config="p/configs/sft.toml")
    assert planned["valid"]


async def test_opd_without_a_teacher_and_invalid_configs_are_refused_with_reasons(
    client: Client, workspace: Path
) -> None:
    await pushed_project(client)
    assert "[local.teachers]" in await call_error(client, "launch_training", config="p/configs/opd.toml")
    assert "[local.teachers]" in await call_error(client, "dry_run", config="p/configs/opd.toml")
    sft = (workspace / "p" / "configs" / "sft.toml").read_text(encoding="utf-8")
    warm_config = "\n".join(line for line in sft.splitlines() if not line.startswith("lora_rank"))
    (workspace / "p" / "configs" / "warm.toml").write_text(warm_config + "\n", encoding="utf-8")
    warm = {"train.init_from_adapter": "local-1-abc/final"}
    refused = await call_error(client, "dry_run", config="p/configs/warm.toml", overrides=warm)
    launched = await call_error(client, "launch_training", config="p/configs/warm.toml", overrides=warm)
    assert refused.split(": ", 1)[1] == launched.split(": ", 1)[1] and "init_from_adapter" in refused
    bad = await call_error(client, "launch_training", config="p/configs/rl.toml", overrides={"train.group_size": 3})
    assert "train.group_size" in bad and "nothing was launched" in bad
    assert (await call(client, "list_runs"))["total"] == 0


async def test_unknown_runs_and_cursors_are_clear_errors(client: Client) -> None:
    assert "list_runs" in await call_error(client, "get_run", run_id="local-0-nothere")
    assert "cursor" in await call_error(client, "list_runs", cursor="abc")


async def test_without_a_stand_in_the_human_is_told_what_to_set(workspace: Path, isolated_home: Path) -> None:
    settings = ServerSettings.create(workspace, home=isolated_home)
    async with Client(build_server(settings)) as client:
        await pushed_project(client)
        text = await call_error(client, "launch_training", config="p/configs/sft.toml")
    assert "stand_in_model" in text and "tiny-model" in text


async def test_a_client_that_cannot_ask_the_human_cancels_directly(settings: ServerSettings) -> None:
    async with Client(build_server(settings), mode="legacy") as client:
        await pushed_project(client)
        long_run = {**FAST_SFT, "train.max_steps": 100_000}
        launched = await call(client, "launch_training", config="p/configs/sft.toml", overrides=long_run)
        await wait_for_step(client, launched["run_id"], 1)
        await call(client, "cancel_run", run_id=launched["run_id"])
        assert (await wait_for_end(client, launched["run_id"]))["state"] == "cancelled"


async def test_whoami_and_dry_run_say_the_device_and_the_keys_without_local_meaning(
    client: Client, workspace: Path
) -> None:
    await pushed_project(client)
    identity = await call(client, "whoami")
    assert identity["detail"]["device"] == "local runs train on: cpu (no CUDA device)"  # this machine has no GPU
    rl = workspace / "p" / "configs" / "rl.toml"
    rl.write_text(rl.read_text(encoding="utf-8") + '\n[gpu]\ntype = "H100"\n', encoding="utf-8")
    planned = await call(client, "dry_run", config="p/configs/rl.toml")
    assert planned["valid"], planned
    notes = "\n".join(planned["dry_run"]["notes"])
    assert "local runs train on: cpu (no CUDA device)" in notes
    assert "gpu.type has no local meaning" in notes
