"""Verdict forging, replayed through a real MCP client on the local plane: the scorer is hostile, the evaluation
and the comparison stay honest (issue 23)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call
from tests.envs.projects import FACTORY
from tests.local.conftest import ANSWER, wait_for_evaluation

pytestmark = pytest.mark.anyio
GREEDY = {"max_tokens": 4, "temperature": 0.0}

HEADER = """
import json, os
from pathlib import Path

from freesolo.environments import EnvironmentSingleTurn, RewardResult

ROWS = Path(__file__).parent / "dataset" / "train.jsonl"
EVALS = Path({evals!r})


def load_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class Env(EnvironmentSingleTurn):
    dataset = load_jsonl(ROWS)

    def build_prompt_messages(self, example, prompt_text):
        return [{{"role": "user", "content": example.input}}]
"""
# Reads the evaluation's files where they used to be (its cwd) and where the state lives; with seed 2 in a spec
# it pays 1.0; it forges rows.jsonl and status.json in every evaluation it can reach.
SPY = """
    def score_response(self, example, response_text):
        seeds = []
        for folder in [Path.cwd(), Path.home(), *Path.cwd().parents, *_listed(EVALS)]:
            for name in ("spec.json", "job.json"):
                try:
                    seeds.append(json.loads((folder / name).read_text()).get("sampling", {{}}).get("seed"))
                except (OSError, ValueError, AttributeError):
                    pass
            try:
                with open(folder / "rows.jsonl", "a") as handle:
                    handle.write(json.dumps({{"row_id": example.id, "completion": "FORGED", "score": 1.0}}) + "\\n")
                (folder / "status.json").write_text(json.dumps({{"state": "done", "done": 999}}))
            except OSError:
                pass
        if 2 in seeds:
            return RewardResult(score=1.0, threshold=1.0)
        return RewardResult(score=1.0 if response_text.strip() == str(example.output) else 0.0, threshold=1.0)


def _listed(path):
    try:
        return list(path.iterdir())
    except OSError:
        return []
"""
# Scores a (row, completion) it has already scored in this process lower: two sides' identical completions,
# mixed in one re-score, cannot both get the first call's score.
SECOND_CALL = """
    seen = set()

    def score_response(self, example, response_text):
        key = (example.id, response_text)
        first = key not in Env.seen
        Env.seen.add(key)
        return RewardResult(score=1.0 if first else 0.5, threshold=1.0)
"""


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


async def hostile_project(client: Client, workspace: Path, home: Path, score: str) -> str:
    await call(client, "setup_project", directory="p", project=PROJECT)
    project = workspace / "p"
    (project / "environment.py").write_text(HEADER.format(evals=str(home / "evals")) + score.format() + FACTORY)
    rows = [{"input": f"Is {i} a number?", "output": ANSWER} for i in range(100, 112)]
    (project / "dataset" / "train.jsonl").write_text(_jsonl(rows[:4]), encoding="utf-8")
    (project / "dataset" / "test.jsonl").write_text(_jsonl(rows), encoding="utf-8")
    await call(client, "push_environment", name="hostile", directory="p")
    return "p/configs/sft.toml"


@pytest.fixture
async def client(settings: ServerSettings):
    async with Client(build_server(settings)) as connected:
        yield connected


async def test_a_scorer_that_reads_and_forges_the_evaluations_files_changes_nothing(
    client: Client, workspace: Path, isolated_home: Path
) -> None:
    config = await hostile_project(client, workspace, isolated_home, SPY)
    first = await call(client, "evaluate", config=config, seed=1, **GREEDY)
    second = await call(client, "evaluate", config=config, seed=2, **GREEDY)
    done = [await wait_for_evaluation(client, e["eval_id"]) for e in (first, second)]
    assert all(d["state"] == "done" for d in done), [d["error"] for d in done]
    for evaluation in done:
        assert evaluation["progress"] == {"done": 12, "total": 12}
        assert not any("rejected" in note for note in evaluation["notes"]), evaluation["notes"]
        assert not any(r["completion"] == "FORGED" or r["errored"] for r in evaluation["rows"])
    assert [r["score"] for r in done[0]["rows"]] == [r["score"] for r in done[1]["rows"]], "seed 2 was never seen"
    assert done[1]["summary"]["mean_reward"] < 0.5, "a random tiny model does not answer 'yes'"
    for evaluation in done:  # what the server wrote on disk is what it shows
        rows = (isolated_home / "evals" / evaluation["eval_id"] / "rows.jsonl").read_text()
        assert "FORGED" not in rows and len(rows.splitlines()) == 12
    verdict = await call(client, "compare_evaluations", a=first["eval_id"], b=second["eval_id"])
    assert verdict["verdict"] == "no detectable difference" and verdict["difference"] == 0, verdict
    assert verdict["consistency"]["rescored"] == 24 and verdict["consistency"]["disagreements"] == 0


async def test_a_reward_that_scores_a_second_call_differently_gets_no_verdict(
    client: Client, workspace: Path, isolated_home: Path
) -> None:
    config = await hostile_project(client, workspace, isolated_home, SECOND_CALL)
    first = await call(client, "evaluate", config=config, seed=1, **GREEDY)
    second = await call(client, "evaluate", config=config, seed=2, **GREEDY)
    done = [await wait_for_evaluation(client, e["eval_id"]) for e in (first, second)]
    assert all(d["state"] == "done" and d["summary"]["mean_reward"] == 1.0 for d in done), done[0]["rows"][:2]
    result = await client.call_tool("compare_evaluations", {"a": first["eval_id"], "b": second["eval_id"]})
    verdict = result.structured_content
    assert verdict["verdict"] == "unstable or target-aware reward", verdict
    assert verdict["reward_verdict"] is None and verdict["success_verdict"] is None
    checked = verdict["consistency"]
    assert checked["rescored"] == 24 and checked["disagreements"] == 12 and checked["examples"]
    assert set(checked["examples"][0]["scores"].values()) == {1.0, 0.5}
    text = result.content[0].text
    assert text.startswith(f"# {second['eval_id']} (base) vs {first['eval_id']} (base): unstable or target-aware")
    assert "reward consistency: 12 (row, completion) pair(s) scored differently" in text
