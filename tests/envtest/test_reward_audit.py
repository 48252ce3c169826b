"""The reward audit in test_environment: every exploitable reward in the corpus is named by its
family with an example, and no strict reward draws a hack warning. Real environments on the
freesolo SDK, driven through the MCP client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.domain.envtest import probes
from flash_mcp.domain.envtest.audit import ANY_ANSWER, FAMILY_TEXT
from tests.conftest import PROJECT, call, call_error
from tests.envs import projects as seeds
from tests.envs.scorers import OPEN, STRICT, Scorer

pytestmark = pytest.mark.anyio
ROWS = 20
HACK_CODES = {code for code, _, _ in FAMILY_TEXT.values()} | {ANY_ANSWER[0]}


@pytest.fixture
async def client(settings) -> AsyncIterator[Client]:
    from flash_mcp.server import build_server

    async with Client(build_server(settings)) as connected:
        yield connected


async def _audit(client: Client, workspace: Path, scorer: Scorer, algorithm: str | None = "grpo") -> dict:
    project = seeds.make_project(workspace, "p", scorer.source(), scorer.rows(ROWS))
    arguments: dict = {"directory": "p"}
    if algorithm:
        config = project / "configs" / "rl.toml"
        config.write_text(config.read_text().replace('"grpo"', f'"{algorithm}"'), encoding="utf-8")
        arguments["config"] = "p/configs/rl.toml"
    return await call(client, "test_environment", **arguments)


def _status(report: dict, status: str) -> set[str]:
    return {f["family"] for f in report["audit"]["families"] if f["status"] == status}


@pytest.mark.parametrize("name", OPEN)
async def test_each_exploitable_reward_is_named_by_its_family(client: Client, workspace: Path, name: str) -> None:
    scorer = OPEN[name]
    report = await _audit(client, workspace, scorer)
    assert report["rows_failed"] == 0, report["failures"]
    assert _status(report, "open") == scorer.open, " ".join(sorted(_status(report, "open")))
    assert _status(report, "partial") == scorer.partial, report["audit"]
    codes = {w["code"] for w in report["warnings"]}
    for family in report["audit"]["families"]:
        if family["status"] in ("open", "partial"):
            assert family["code"] in codes and family["fix"]
        if family["status"] == "open" and family["family"] != "stateful":
            example = family["example"]
            reached = example["score"] >= min(example["gold_score"], scorer.threshold)
            assert reached and example["row_id"].startswith("example_")
    if scorer.open or scorer.empty_gold_rows:
        assert report["verdict"] == "fail", "GRPO trains on this reward: an exploit as good as the gold fails"
        assert "can be gamed" in report["summary"]
    else:
        assert report["verdict"] == "pass", "partial credit is a warning, not a failure"
    if "stateful" in scorer.open:
        assert _status(report, "unjudged"), "other families cannot be judged on an unstable reward"


@pytest.mark.parametrize("name", STRICT)
async def test_strict_rewards_draw_no_hack_warning(client: Client, workspace: Path, name: str) -> None:
    report = await _audit(client, workspace, STRICT[name])
    assert report["verdict"] == "pass", report["summary"]
    assert not HACK_CODES & {w["code"] for w in report["warnings"]}, report["warnings"]
    assert _status(report, "open") | _status(report, "partial") == set()
    assert report["audit"]["rows_probed"] == ROWS and report["gold"]["mean"] == 1.0


async def test_rows_where_any_answer_earns_full_reward_are_named(client: Client, workspace: Path) -> None:
    report = await _audit(client, workspace, OPEN["empty-gold-endswith"])
    assert report["audit"]["any_answer_rows"] == ["example_000003", "example_000007"]
    assert "example_000003" in report["summary"] and report["verdict"] == "fail"


@pytest.mark.parametrize(("algorithm", "verdict"), [("opd", "fail"), ("sft", "pass"), (None, "pass")])
async def test_exploits_fail_reward_trained_runs_and_warn_otherwise(
    client: Client, workspace: Path, algorithm: str | None, verdict: str
) -> None:
    report = await _audit(client, workspace, OPEN["substring"], algorithm)
    assert report["verdict"] == verdict and report["audit"]["blocking"] is (verdict == "fail")
    padded = next(w for w in report["warnings"] if w["code"] == "padded-credit")
    assert padded["count"] == ROWS and "exactly one asserted answer" in padded["message"]


async def test_probes_stay_on_a_bounded_sample_of_a_big_dataset(client: Client, workspace: Path) -> None:
    scorer = OPEN["substring"]
    seeds.make_project(workspace, "p", scorer.source(), scorer.rows(3000))
    report = await call(client, "test_environment", directory="p")
    sample = sum(probes.sampled(i, 3000) for i in range(3000))
    assert report["rows_checked"] == 3000 and report["audit"]["rows_probed"] == sample <= 130
    several = next(f for f in report["audit"]["families"] if f["family"] == "several-answers")
    assert several["rows_probed"] == 3000, "the cheap probes run on every row"
    assert next(f for f in report["audit"]["families"] if f["family"] == "echo")["rows_probed"] <= sample


@pytest.mark.parametrize("rows", [3000, 20_000, 100_000])
def test_the_fully_probed_rows_are_shared_by_both_lanes(rows: int) -> None:
    """Lanes take even and odd rows: an even spread would put every spread row's full probes on one lane."""
    due = [index for index in range(rows) if probes.sampled(index, rows)]
    assert abs(2 * sum(index % 2 for index in due) - len(due)) <= 1, due


@pytest.mark.parametrize(
    ("gold", "kind", "value", "near"),
    [
        ("42", "bare", "42", "43"),
        ("<think>2+2 is 42</think>\n<answer>42</answer>", "tag", "42", "<think>2+2 is 43</think>\n<answer>43</answer>"),
        ("So it is \\boxed{\\frac{1}{2}}.", "boxed", "\\frac{1}{2}", "So it is \\boxed{\\frac{1}{3}}."),
        ('{"answer": 42, "unit": "m"}', "json", "42", '{"answer": 43, "unit": "m"}'),
        ("6 times 7\n#### 42", "line", "42", "6 times 7\n#### 43"),
        ("Final answer: Paris.", "line", "Paris", "Final answer: Pari."),
    ],
)
def test_probes_keep_the_gold_shape(gold: str, kind: str, value: str, near: str) -> None:
    shape = probes.detect_shape(gold)
    assert (shape.kind, shape.value) == (kind, value)
    built = probes.build(shape, None, "What is 41 + 1?")
    assert shape.put(value) == gold
    assert built["near"] == near and value not in built["format"]


@pytest.mark.parametrize("algorithm", ["grpo", "opd"])
async def test_check_project_flags_a_rollout_config_that_cannot_be_priced(
    client: Client, workspace: Path, algorithm: str
) -> None:
    project = seeds.make_project(workspace, "p", seeds.environment(), seeds.rows(5))
    config = project / "configs" / "rl.toml"
    text = config.read_text().replace('"grpo"', f'"{algorithm}"').replace("max_examples = 5", "learning_rate = 1e-5")
    config.write_text(text + ("kl_penalty_coef = 0.01\n" if algorithm == "opd" else ""), encoding="utf-8")
    check = await call(client, "check_project", directory="p", config="p/configs/rl.toml")
    [finding] = [f for f in check["findings"] if f["code"] == "max-examples-missing"]
    assert finding["severity"] == "error" and "max_steps" in finding["fix"] and not check["ok"]
    config.write_text(text.replace("learning_rate = 1e-5", "max_steps = 3"), encoding="utf-8")
    check = await call(client, "check_project", directory="p", config="p/configs/rl.toml")
    assert "max-examples-missing" not in {f["code"] for f in check["findings"]}


def test_a_slow_reward_gets_fewer_fully_probed_rows() -> None:
    unlimited, spent = probes.Sampler(1000), probes.Sampler(1000, budget_s=-1.0)
    assert sum(unlimited(i) for i in range(1000)) == sum(probes.sampled(i, 1000) for i in range(1000))
    assert sum(spent(i) for i in range(1000)) == probes.MIN_FULL_ROWS


async def test_launch_training_refuses_a_run_that_cannot_be_priced_before_quoting(
    client: Client, workspace: Path
) -> None:
    await call(client, "setup_project", directory="s", project=PROJECT)
    await call(client, "edit_config", config="s/configs/rl.toml", set={"environment.id": "acme/demo/starter"})
    config = workspace / "s" / "configs" / "rl.toml"
    config.write_text(re.sub(r"(?m)^max_examples = .*$", "", config.read_text()), encoding="utf-8")
    text = await call_error(client, "launch_training", config="s/configs/rl.toml")
    assert "nothing was quoted or launched" in text and "max-examples-missing" in text and "max_steps" in text
    other = await call_error(client, "launch_training", config="s/configs/rl.toml", overrides={"train.max_steps": 2})
    assert "max-examples-missing" not in other


async def test_any_answer_rows_are_counted_across_a_big_dataset(client: Client, workspace: Path) -> None:
    scorer = OPEN["empty-gold-endswith"]
    empty = [dict(row, output="") if i % 100 == 3 else row for i, row in enumerate(scorer.rows(3000))]  # and row 7
    seeds.make_project(workspace, "p", scorer.source(), empty)
    report = await call(client, "test_environment", directory="p")
    warning = next(w for w in report["warnings"] if w["code"] == "any-answer")
    assert warning["count"] == 31 and report["verdict"] == "pass", "no config: a warning, not a failure"
    assert report["audit"]["any_answer_rows"] == [f"example_{i:06d}" for i in (3, 7, 103, 203, 303)]
