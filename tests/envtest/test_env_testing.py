"""test_environment and check_project on seeded broken projects, hostile environments and the starters."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from tests.conftest import PROJECT, call, call_error
from tests.envs import projects as seeds

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(settings) -> AsyncIterator[Client]:
    """One era is enough here: tests/surface/test_surface.py and the progress tests cover both eras."""
    from flash_mcp.server import build_server

    async with Client(build_server(settings)) as connected:
        yield connected


async def _test(client: Client, project: str, **arguments) -> dict:
    return await call(client, "test_environment", directory=project, **arguments)


def _warning(report: dict, code: str) -> dict:
    found = {w["code"]: w for w in report["warnings"]}
    assert code in found, report["warnings"]
    return found[code]


HANG_BOUND_S = 300


def flash_env_test_fails(project: Path, algorithm: str = "grpo") -> bool:
    """The verdict of the real `flash env test` 1.3.28, read from its output as it runs. A row that hangs for
    ever (the seed prints `seeds.HUNG` as it starts) means it never passes: it is stopped there, no timer."""
    with subprocess.Popen(
        [sys.executable, "-m", "flash.cli", "env", "test", str(project), "--algorithm", algorithm],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "FLASH_STYLE": "0", "CI": "1", "HOME": str(project)},
    ) as flash:
        assert flash.stdout is not None
        guard = threading.Timer(HANG_BOUND_S, flash.kill)  # a hang guard only: a silent hang fails, not blocks
        guard.start()
        try:
            for line in flash.stdout:
                if seeds.HUNG in line:
                    flash.kill()
                    return True
            code = flash.wait()
        finally:
            guard.cancel()
        assert code != -signal.SIGKILL, f"flash env test neither ended nor reported a hang in {HANG_BOUND_S} s"
        return code != 0


async def test_scorer_raising_on_row_57_of_200_is_reported_with_its_row(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.SCORER_RAISES_ON_57, seeds.rows(200))
    report = await _test(client, "p", config="p/configs/rl.toml")
    assert report["verdict"] == "fail" and report["rows_checked"] == 200 and report["rows_failed"] == 1
    [failure] = report["failures"]
    assert failure["row"] == 57 and failure["id"] == "example_000057"
    assert "ZeroDivisionError" in failure["message"] and "row 57" in failure["message"]


async def test_malformed_prompt_far_past_row_3_is_caught(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.BAD_PROMPT_ON_150, seeds.rows(200))
    report = await _test(client, "p")
    assert report["verdict"] == "fail"
    [failure] = report["failures"]
    assert failure["row"] == 150 and failure["stage"] == "prompt" and "narrator" in failure["message"]


async def test_gold_answers_that_never_score_fail_the_grpo_gate(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.GOLD_NEVER_SCORES, seeds.rows(20))
    report = await _test(client, "p", config="p/configs/rl.toml")
    assert report["verdict"] == "fail" and report["rows_failed"] == 0
    assert report["gate"]["applies"] and not report["gate"]["passed"]
    assert "all 20 replayed gold answer(s) scored zero" in report["gate"]["message"]
    assert _warning(report, "gold-zero")["count"] == 20


async def test_the_gate_does_not_block_sft(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.GOLD_NEVER_SCORES, seeds.rows(5))
    (workspace / "p" / "configs" / "sft.toml").write_text(
        'model = "Qwen/Qwen3.5-9B"\nalgorithm = "sft"\n[environment]\nid = "a/b/c"\n', encoding="utf-8"
    )
    report = await _test(client, "p", config="p/configs/sft.toml")
    assert report["gate"]["applies"] is False and report["verdict"] == "pass"
    assert _warning(report, "gold-zero")["count"] == 5


async def test_a_reward_that_pays_any_digit_is_flagged_by_the_near_miss_probe(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.ANY_DIGIT_GETS_CREDIT, seeds.rows(10))
    report = await _test(client, "p", responses=[{"row_id": "example_000004", "response": "The answer is 7"}])
    near = _warning(report, "near-miss-credit")
    assert near["count"] == 10 and near["rows"][0] == "example_000000"
    [candidate] = report["responses"]
    assert candidate["score"] == 1.0 and candidate["row_id"] == "example_000004"


async def test_a_param_the_factory_drops_is_reported_by_both_tools(client: Client, workspace: Path) -> None:
    seeds.make_project(
        workspace, "p", seeds.DROPS_PARAMS, seeds.rows(5), config="[environment.params]\ndifficulty = 3\n"
    )
    report = await _test(client, "p", config="p/configs/rl.toml")
    assert report["params"] == {"difficulty": 3}
    assert "difficulty" in _warning(report, "params-dropped")["message"]
    check = await call(client, "check_project", directory="p")
    [finding] = [f for f in check["findings"] if f["code"] == "param-dropped"]
    assert "difficulty" in finding["message"] and finding["where"] == "p/configs/rl.toml"


async def test_a_hanging_row_times_out_and_the_rest_still_run(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.HANGS_ON_ROW_3, seeds.rows(8))
    report = await _test(client, "p", row_timeout_s=1)
    assert report["verdict"] == "fail" and report["rows_checked"] == 8 and report["rows_passed"] == 7
    [failure] = report["failures"]
    assert failure["row"] == 3 and failure["stage"] == "timeout"
    assert (await _test(client, "p", rows=3))["verdict"] == "pass", "the server is still healthy"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (seeds.CRASHES_AT_IMPORT, "cannot connect to the grading service"),
        (seeds.EXITS_AT_IMPORT, "sys.exit"),
    ],
)
async def test_import_time_failures_are_a_clear_load_error(
    client: Client, workspace: Path, source: str, expected: str
) -> None:
    seeds.make_project(workspace, "p", source, seeds.rows(5))
    report = await _test(client, "p")
    assert report["verdict"] == "fail" and expected in report["load_error"]
    assert report["summary"].startswith("FAIL: environment.py did not load")


async def test_an_import_that_never_returns_is_stopped(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.HANGS_AT_IMPORT_IN_C, seeds.rows(5))
    report = await _test(client, "p", timeout_s=3)
    assert report["verdict"] == "fail" and "did not finish" in report["load_error"]


async def test_sys_exit_in_the_scorer_fails_rows_not_the_server(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.EXITS_IN_SCORER, seeds.rows(4))
    report = await _test(client, "p")
    assert report["rows_failed"] == 4 and "sys.exit" in report["failures"][0]["message"]


async def test_an_environment_that_kills_its_own_process(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.KILLS_ITSELF_ON_ROW_5, seeds.rows(10))
    report = await _test(client, "p")
    assert report["rows_checked"] == 10 and report["rows_passed"] == 9
    [failure] = report["failures"]
    assert failure["row"] == 5 and failure["stage"] == "crash" and "-9" in failure["message"]


async def test_megabytes_of_output_are_captured_and_bounded(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.PRINTS_MEGABYTES, seeds.rows(3))
    result = await client.call_tool("test_environment", {"directory": "p"})
    report = result.structured_content
    assert report["verdict"] == "pass"
    assert report["output_bytes"] == 6_000_000
    assert len(report["output"]) < 5000 and "bytes not shown" in report["output"]
    assert len(result.content[0].text) < 12_000


async def test_the_report_stays_small_for_a_big_failing_dataset(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.EXITS_IN_SCORER, seeds.rows(3000))
    result = await client.call_tool("test_environment", {"directory": "p"})
    assert result.structured_content["rows_failed"] == 3000
    assert len(result.structured_content["failures"]) == 10
    assert len(result.content[0].text) < 12_000


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_every_row_is_checked_with_progress(settings, workspace: Path, mode: str) -> None:
    from flash_mcp.server import build_server

    seeds.make_project(workspace, "p", seeds.environment(), seeds.rows(3000))
    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async with Client(build_server(settings), mode=mode) as client:
        result = await client.call_tool("test_environment", {"directory": "p"}, progress_callback=on_progress)
    report = result.structured_content
    assert report["verdict"] == "pass" and report["rows_checked"] == 3000
    assert report["gold"]["mean"] == 1.0 and report["wrong"]["mean"] == 0.0
    assert updates and updates[-1] == 3000 and updates == sorted(updates)


async def test_rows_limits_the_check_to_the_first_n(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.SCORER_RAISES_ON_57, seeds.rows(200))
    report = await _test(client, "p", rows=50)
    assert report["verdict"] == "pass" and report["rows_checked"] == 50 and report["rows_total"] == 200


async def test_unknown_candidate_row_ids_are_explained(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.environment(), seeds.rows(2))
    report = await _test(client, "p", responses=[{"row_id": "row-1", "response": "2"}])
    assert "example_000000" in report["responses"][0]["error"]


@pytest.mark.parametrize("multi_turn", [False, True])
async def test_the_scaffolded_starters_pass(client: Client, workspace: Path, multi_turn: bool) -> None:
    await call(client, "setup_project", directory="s", project=PROJECT, multi_turn=multi_turn)
    report = await _test(client, "s", config="s/configs/rl.toml")
    assert report["verdict"] == "pass", report["summary"]
    assert report["multi_turn"] is multi_turn and report["rows_checked"] == 2
    assert report["gold"]["mean"] == 1.0 and report["wrong"]["max"] < 1.0


async def test_multi_turn_candidates_play_an_episode(client: Client, workspace: Path) -> None:
    await call(client, "setup_project", directory="s", multi_turn=True)
    report = await _test(client, "s", responses=[{"row_id": "example_000000", "response": ["50", "42"]}])
    assert report["responses"][0]["score"] == 1.0


async def test_missing_environment_is_a_tool_error(client: Client, workspace: Path) -> None:
    (workspace / "empty").mkdir()
    assert "setup_project" in await call_error(client, "test_environment", directory="empty")


SEEDED = {
    "scorer raises on row 57": (seeds.SCORER_RAISES_ON_57, 200),
    "bad prompt on row 150": (seeds.BAD_PROMPT_ON_150, 200),
    "gold never scores": (seeds.GOLD_NEVER_SCORES, 20),
    "any digit gets credit": (seeds.ANY_DIGIT_GETS_CREDIT, 10),
    "drops params": (seeds.DROPS_PARAMS, 5),
    "hangs on row 3": (seeds.HANGS_ON_ROW_3, 8),
    "hangs on row 0": (seeds.HANGS_ON_ROW_3.replace("3 + 1", "0 + 1"), 8),
    "crashes at import": (seeds.CRASHES_AT_IMPORT, 5),
    "exits at import": (seeds.EXITS_AT_IMPORT, 5),
    "exits in scorer": (seeds.EXITS_IN_SCORER, 4),
    "kills itself on row 5": (seeds.KILLS_ITSELF_ON_ROW_5, 10),
    "healthy": (seeds.environment(), 10),
}


FLASH_FAILS = {"gold never scores", "hangs on row 0", "crashes at import", "exits at import", "exits in scorer"}


@pytest.mark.parametrize("name", SEEDED)
async def test_never_more_lenient_than_flash_env_test(client: Client, workspace: Path, name: str) -> None:
    """Whenever `flash env test` 1.3.28 fails a project, so does test_environment."""
    source, count = SEEDED[name]
    project = seeds.make_project(workspace, "p", source, seeds.rows(count))
    ours = await _test(client, "p", config="p/configs/rl.toml", row_timeout_s=2)
    flash_fails = flash_env_test_fails(project)
    assert flash_fails == (name in FLASH_FAILS), "flash env test 1.3.28 checks only the first rows"
    if flash_fails:
        assert ours["verdict"] == "fail", ours["summary"]
    if name == "healthy":
        assert ours["verdict"] == "pass"


async def test_check_project_catches_the_static_pitfalls(client: Client, workspace: Path) -> None:
    project = seeds.make_project(
        workspace,
        "p",
        seeds.environment(top="\nimport sympy\n"),
        seeds.rows(500),
        config='secrets = ["GRADER_API_KEY"]\n[environment.params]\nsplit = "test"\n',
    )
    (project / "configs" / "rl.toml").write_text(
        (project / "configs" / "rl.toml").read_text().replace("max_examples = 500", "max_examples = 2"),
        encoding="utf-8",
    )
    (project / "configs" / "sft.toml").write_text(
        'model = "Qwen/Qwen3.5-9B"\nalgorithm = "sft"\nthinking = true\n[environment]\nid = ""\n'
        "[train]\nmax_examples = 2\n",
        encoding="utf-8",
    )
    (project / "datasets").mkdir()
    check = await call(client, "check_project", directory="p")
    codes = {(f["code"], f["where"]) for f in check["findings"]}
    assert ("split-missing", "p/configs/rl.toml") in codes
    assert ("secret-missing", "p/configs/rl.toml") in codes
    assert ("pip-missing", "p/configs/rl.toml") in codes
    assert ("environment-id-missing", "p/configs/sft.toml") in codes
    assert ("max-examples-below-rows", "p/configs/sft.toml") in codes
    assert ("think-tags-missing", "p/configs/sft.toml") in codes
    assert ("datasets-dir", "datasets/") in {(c, w.removeprefix("p/")) for c, w in codes} or any(
        c == "datasets-dir" for c, _ in codes
    )
    assert not check["ok"] and check["errors"] >= 3
    secret = next(f for f in check["findings"] if f["code"] == "secret-missing")
    assert "GRADER_API_KEY" in secret["message"]


async def test_check_project_counts_rows_against_max_examples(client: Client, workspace: Path) -> None:
    project = seeds.make_project(workspace, "p", seeds.environment(), seeds.rows(500))
    rl = project / "configs" / "rl.toml"
    rl.write_text(rl.read_text().replace("max_examples = 500", "max_examples = 2"), encoding="utf-8")
    check = await call(client, "check_project", directory="p", config="p/configs/rl.toml")
    [finding] = [f for f in check["findings"] if f["code"] == "max-examples-below-rows"]
    assert "2 of the 500 rows" in finding["message"] and "500" in finding["fix"]


async def test_check_project_is_clean_on_a_pushed_scaffold(client: Client, workspace: Path) -> None:
    await call(client, "setup_project", directory="s", project=PROJECT)
    for name in ("sft", "rl", "opd"):
        await call(client, "edit_config", config=f"s/configs/{name}.toml", set={"environment.id": "acme/demo/starter"})
    check = await call(client, "check_project", directory="s")
    assert check["ok"], check["findings"]


async def test_read_dataset_pages_with_positional_ids(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.environment(), seeds.rows(45))
    ids, offset = [], 0
    while offset is not None:
        page = await call(client, "read_dataset", path="p/dataset/train.jsonl", offset=offset, limit=20)
        ids += [row["id"] for row in page["rows"]]
        offset = page["next_offset"]
    assert ids == [f"example_{i:06d}" for i in range(45)]
    first = await call(client, "read_dataset", path="p/dataset/train.jsonl", limit=1)
    assert first["rows"][0]["input"] == "What is 0 + 1?" and first["total_rows"] == 45


async def test_read_dataset_cuts_long_fields(client: Client, workspace: Path) -> None:
    seeds.make_project(workspace, "p", seeds.environment(), [{"input": "x" * 50_000, "output": "1"}])
    page = await call(client, "read_dataset", path="p/dataset/train.jsonl")
    assert len(page["rows"][0]["input"]) < 1100 and "50000 chars" in page["rows"][0]["input"]


async def test_append_dataset_rows_validates_and_is_atomic(client: Client, workspace: Path) -> None:
    project = seeds.make_project(workspace, "p", seeds.environment(), seeds.rows(2))
    path = project / "dataset" / "train.jsonl"
    before = path.read_bytes()
    text = await call_error(
        client,
        "append_dataset_rows",
        path="p/dataset/train.jsonl",
        rows=[{"input": "ok", "output": "1"}, {"input": "bad", "output": {"messages": "nope"}}],
    )
    assert "row 1" in text and path.read_bytes() == before
    result = await call(
        client,
        "append_dataset_rows",
        path="p/dataset/train.jsonl",
        rows=[{"input": "What is 9 + 1?", "output": "10", "metadata": {"level": 1}}],
    )
    assert result == {
        "path": "p/dataset/train.jsonl", "appended": 1, "total_rows": 3, "first_id": "example_000002",
        "last_id": "example_000002",
    }  # fmt: skip
    assert json.loads(path.read_text().splitlines()[-1])["metadata"] == {"level": 1}
    report = await _test(client, "p")
    assert report["rows_checked"] == 3 and report["verdict"] == "pass"


async def test_parallel_lanes_check_every_row_exactly_once(client: Client, workspace: Path) -> None:
    source = seeds.environment(
        score="""
    def score_response(self, example, response_text):
        if example.input == "What is 1501 + 1?":
            raise KeyError("lane one breaks")
        if example.input == "What is 2000 + 1?":
            while True:
                time.sleep(0.05)
        return RewardResult(score=1.0 if response_text.strip() == str(example.output) else 0.0)
"""
    )
    seeds.make_project(workspace, "p", source, seeds.rows(2500))
    report = await _test(client, "p", row_timeout_s=1)
    assert report["rows_checked"] == 2500 and report["rows_passed"] == 2498
    assert [(f["row"], f["stage"]) for f in report["failures"]] == [(1501, "exception"), (2000, "timeout")]
    assert report["gold"]["count"] == 2498
