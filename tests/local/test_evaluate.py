"""`evaluate` on the local plane through an MCP client: a known positive, a known null, refusals."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import anyio
import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.evaluation.pairing import ruler_differences
from flash_mcp.domain.evaluation.record import EvalSpec
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call, call_error
from tests.local.conftest import EVAL_SAMPLING, constant_answer_project, wait_for_evaluation

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(settings: ServerSettings):
    async with Client(build_server(settings)) as connected:
        yield connected


async def test_sft_on_a_constant_answer_turns_a_base_near_zero_into_an_adapter_near_one(
    trained_constant_answer: dict, client: Client
) -> None:
    base, adapter = trained_constant_answer["base"], trained_constant_answer["adapter"]
    assert base["state"] == "done" and adapter["state"] == "done", (base["error"], adapter["error"])
    assert base["summary"]["n_rows"] == adapter["summary"]["n_rows"] == 12
    assert base["summary"]["mean_reward"] < 0.3, base["rows"][:3]
    assert adapter["summary"]["mean_reward"] > 0.7, adapter["rows"][:3]
    assert adapter["summary"]["success_rate"] > 0.7 and adapter["summary"]["share_errored"] == 0
    assert [r["row_id"] for r in base["rows"]] == [r["row_id"] for r in adapter["rows"]]
    assert base["rows"][0]["row_id"] == "test:example_000000" and base["rows"][0]["prompt"] == "Is 100 a number?"
    assert adapter["spec"]["adapter"].endswith("checkpoints/final") and base["spec"]["adapter"] is None
    assert adapter["spec"]["environment_digest"] == base["spec"]["environment_digest"]
    right = [r for r in adapter["rows"] if r["score"] == 1.0]
    assert right and all(r["completion"].strip() == "yes" and not r["truncated"] for r in right)
    assert adapter["summary"]["tokens_per_answer"] < EVAL_SAMPLING["max_tokens"]
    verdict = await call(client, "compare_evaluations", a=base["eval_id"], b=adapter["eval_id"])
    low, high = verdict["interval"]
    assert verdict["verdict"] == "improved" and 0 < low <= verdict["difference"] <= high, verdict
    assert verdict["rows_paired"] == 12 and verdict["flipped_regressed"]["total"] == 0


async def test_two_seeds_of_one_target_measure_with_the_same_ruler(client: Client, workspace: Path) -> None:
    """The known null: the same target sampled with two seeds; only the draws differ, never the ruler."""
    config = await constant_answer_project(client, workspace)
    sampled = {"max_tokens": 6, "temperature": 1.0, "samples_per_row": 2}
    first = await call(client, "evaluate", config=config, seed=1, **sampled)
    second = await call(client, "evaluate", config=config, seed=2, **sampled)
    again = await call(client, "evaluate", config=config, seed=1, **sampled)
    assert first["progress"]["total"] == 24, "evaluate returns at once, with the size of the job it started"
    done = [await wait_for_evaluation(client, e["eval_id"]) for e in (first, second, again)]
    assert all(d["state"] == "done" and d["progress"]["done"] == 24 for d in done), [d["error"] for d in done]
    specs = [EvalSpec.model_validate_json((workspace.parent / "state" / "evals" / d["eval_id"] / "spec.json")
                                          .read_text()) for d in done]  # fmt: skip
    assert ruler_differences(specs[0], specs[1]) == [] and specs[0].sampling.seed != specs[1].sampling.seed
    completions = [[(r["row_id"], r["sample"], r["completion"]) for r in d["rows"]] for d in done]
    assert completions[0] != completions[1], "another seed draws other answers"
    assert completions[0] == completions[2], "the same seed draws the same answers"
    null = await call(client, "compare_evaluations", a=first["eval_id"], b=second["eval_id"])
    assert null["verdict"] == "no detectable difference" and null["interval"][0] <= 0 <= null["interval"][1]
    greedy = await call(client, "evaluate", config=config, max_tokens=5)
    assert ruler_differences(specs[0], EvalSpec.model_validate_json(
        (workspace.parent / "state" / "evals" / greedy["eval_id"] / "spec.json").read_text()
    )) == ["other temperature (1.0 vs 0.0)", "other max_tokens (6 vs 5)", "other samples_per_row (2 vs 1)"]  # fmt: skip
    await wait_for_evaluation(client, greedy["eval_id"])
    refused = await call_error(client, "compare_evaluations", a=first["eval_id"], b=greedy["eval_id"])
    assert "other temperature" in refused and "other max_tokens" in refused


async def test_evaluations_are_paged_listed_and_readable_as_a_resource(client: Client, workspace: Path) -> None:
    config = await constant_answer_project(client, workspace)
    started = await call(client, "evaluate", config=config, max_rows=5, max_tokens=4)
    done = await wait_for_evaluation(client, started["eval_id"])
    assert done["summary"]["n_rows"] == 5 and done["summary"]["share_truncated"] == 1.0, "a random model rambles"
    page = await call(client, "get_evaluation", eval_id=started["eval_id"], rows_offset=1, rows_limit=2)
    assert [r["row_id"] for r in page["rows"]] == ["test:example_000001", "test:example_000002"]
    assert page["next_rows_offset"] == 3
    wrong = await call(client, "get_evaluation", eval_id=started["eval_id"], only="failed")
    assert len(wrong["rows"]) == 5 and all(r["success"] is False for r in wrong["rows"])
    listed = await call(client, "list_evaluations")
    assert listed["total"] == 1 and listed["evaluations"][0]["mean_reward"] == 0.0
    text = (await client.read_resource(f"flash://evals/{started['eval_id']}")).contents[0].text
    assert json.loads(text)["summary"]["n_rows"] == 5


async def test_evaluate_refuses_what_it_cannot_measure(client: Client, workspace: Path) -> None:
    await call(client, "setup_project", directory="p", project=PROJECT)
    config = "p/configs/sft.toml"
    assert "push_environment" in await call_error(client, "evaluate", config=config)
    await call(client, "push_environment", name="starter", directory="p")
    missing = await call_error(client, "evaluate", config=config, split="test")
    assert "no dataset/test.jsonl" in missing and "push_environment" in missing
    assert "RUN/final" in await call_error(client, "evaluate", config=config, split="train", target="nonsense")
    assert "no local run" in await call_error(client, "evaluate", config=config, split="train", target="r-1/final")
    env_py = workspace / "p" / "environment.py"
    env_py.write_text(env_py.read_text() + "\n# edited after the push\n", encoding="utf-8")
    assert "changed on disk since the push" in await call_error(client, "evaluate", config=config, split="train")
    assert "no evaluation" in await call_error(client, "get_evaluation", eval_id="eval-nope")
    assert (await call(client, "list_evaluations"))["total"] == 0


async def test_an_evaluation_survives_a_server_restart_and_can_be_cancelled(settings: ServerSettings,
                                                                            workspace: Path) -> None:  # fmt: skip
    async with Client(build_server(settings)) as first:
        config = await constant_answer_project(first, workspace, test=400)
        started = await call(first, "evaluate", config=config, max_tokens=256)
    async with Client(build_server(settings), mode="legacy") as second:
        with anyio.fail_after(300):
            while (
                found := await call(second, "get_evaluation", eval_id=started["eval_id"], wait_s=30, until="progress")
            )["progress"]["done"] == 0:
                assert found["state"] in ("queued", "running"), found
        await call(second, "cancel_evaluation", eval_id=started["eval_id"])
        ended = await wait_for_evaluation(second, started["eval_id"])
    assert ended["state"] == "cancelled" and 0 < ended["progress"]["done"] < 400
    assert ended["summary"]["n_rows"] == ended["progress"]["done"]


async def test_a_killed_evaluator_is_reported_failed(client: Client, workspace: Path, isolated_home: Path) -> None:
    config = await constant_answer_project(client, workspace, test=400)
    started = await call(client, "evaluate", config=config, max_tokens=256)
    record = isolated_home / "evals" / f".{started['eval_id']}.process.json"  # the server's, not the job's
    os.killpg(json.loads(record.read_text())["pid"], signal.SIGKILL)
    ended = await wait_for_evaluation(client, started["eval_id"])
    assert ended["state"] == "failed" and "exited without finishing" in ended["error"]


async def test_an_evaluations_suite_is_played_and_graded_as_flash_env_eval_does(client: Client) -> None:
    await call(client, "setup_project", directory="p", project=PROJECT)
    await call(client, "push_environment", name="starter", directory="p")
    started = await call(client, "evaluate", config="p/configs/sft.toml", suite="starter", max_tokens=4)
    done = await wait_for_evaluation(client, started["eval_id"])
    assert done["state"] == "done", done["error"]
    assert done["spec"]["split"] == "suite:starter" and done["spec"]["rows"] == 1
    (row,) = done["rows"]
    assert row["row_id"] == "suite:starter:addition" and row["prompt"] == "What is 7 + 5?"
    assert row["success"] is False and row["score"] == 0.0 and not row["errored"], "a random model misses 12"
    unknown = await call(client, "evaluate", config="p/configs/sft.toml", suite="nope")
    failed = await wait_for_evaluation(client, unknown["eval_id"])
    assert failed["state"] == "failed" and "unknown suite 'nope'; available suites: starter" in failed["error"]
