"""Multi-turn evaluations re-scored target-blind at comparison, through a real MCP client on the local plane: each
recorded episode is replayed (its model turns fed again, both sides' episodes mixed) through a fresh environment
worker, and a reward or a reply that does not come out the same refuses the verdict (issue 23)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call
from tests.envs.projects import FACTORY
from tests.local.conftest import EVAL_SAMPLING, constant_answer_project, wait_for_evaluation
from tests.local.test_multi_turn import DIGIT_GUESS_ENV

pytestmark = pytest.mark.anyio
GREEDY = {"max_tokens": 4, "temperature": 0.0}
UNSTABLE = "unstable or target-aware reward"

HEADER = """
import json
from pathlib import Path

from freesolo.environments import EnvironmentMultiTurn, EnvironmentStepResult, RewardResult

ROWS = Path(__file__).parent / "dataset" / "train.jsonl"


def load_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class Env(EnvironmentMultiTurn):
    dataset = load_jsonl(ROWS)
    scored = 0
    steps = 0

    def start_episode(self, example, prompt_text):
        return [{"role": "user", "content": f"{example.input} Reply with a single integer per turn."}]

    def max_episode_turns(self, example):
        return 3
"""
# Pays for the first six episodes a process scores and nothing after: each evaluation's own worker plays six, so
# both sides record 1.0 everywhere; a worker that plays both sides' twelve cannot pay them all.
COUNTING_SCORER = """
    def step_episode(self, example, messages, assistant_response):
        return EnvironmentStepResult(done=False, messages=[{"role": "user", "content": "again"}])

    def score_episode(self, example, episode):
        Env.scored += 1
        return RewardResult(score=1.0 if Env.scored <= 6 else 0.0, threshold=1.0)
"""
# Numbers its replies by how many it has sent in this process and scores the same whatever happens: the replay,
# interleaving both sides' episodes, cannot meet the replies the episodes were recorded with.
COUNTING_REPLIES = """
    def step_episode(self, example, messages, assistant_response):
        Env.steps += 1
        return EnvironmentStepResult(done=False, messages=[{"role": "user", "content": f"reply {Env.steps}"}])

    def score_episode(self, example, episode):
        return RewardResult(score=0.5, threshold=1.0)
"""
# Ends every episode once its process has taken 18 steps: an evaluation's six episodes take exactly 18 (three
# each), so none ends early there; the replay, advancing both sides' twelve together, reaches 18 in their second
# round and ends six of them a turn short.
COUNTING_STEPS = """
    def step_episode(self, example, messages, assistant_response):
        Env.steps += 1
        return EnvironmentStepResult(done=Env.steps > 18, messages=[{"role": "user", "content": "again"}])

    def score_episode(self, example, episode):
        return RewardResult(score=0.5, threshold=1.0)
"""


@pytest.fixture
async def client(settings: ServerSettings):
    async with Client(build_server(settings)) as connected:
        yield connected


async def multi_turn_project(client: Client, workspace: Path, environment: str) -> str:
    """A pushed multi-turn project with six held-out rows; its config."""
    await call(client, "setup_project", directory="m", project=PROJECT, multi_turn=True)
    project = workspace / "m"
    (project / "environment.py").write_text(environment, encoding="utf-8")
    for split, numbers in (("train", range(4)), ("test", range(100, 106))):
        lines = [json.dumps({"input": f"Guess my number {i}.", "output": str(i + 1)}) for i in numbers]
        (project / "dataset" / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    await call(client, "push_environment", name="guess", directory="m")
    return "m/configs/rl.toml"


async def two_evaluations(client: Client, config: str, **sampling) -> list[dict]:
    first = await call(client, "evaluate", config=config, seed=1, **sampling)
    second = await call(client, "evaluate", config=config, seed=2, **sampling)
    done = [await wait_for_evaluation(client, e["eval_id"]) for e in (first, second)]
    assert all(d["state"] == "done" for d in done), [d["error"] for d in done]
    assert all(not r["errored"] for d in done for r in d["rows"]), done[0]["rows"][:2]
    return done


def stored_rows(home: Path, eval_id: str) -> list[dict]:
    return [json.loads(line) for line in (home / "evals" / eval_id / "rows.jsonl").read_text().splitlines()]


async def test_an_honest_multi_turn_comparison_replays_every_episode_and_gives_a_verdict(
    client: Client, workspace: Path, isolated_home: Path
) -> None:
    config = await multi_turn_project(client, workspace, DIGIT_GUESS_ENV)
    done = await two_evaluations(client, config, max_tokens=6, temperature=1.0, samples_per_row=2)
    assert all("turns" not in row for row in done[0]["rows"]), "the replay's record is not shown"
    for row in stored_rows(isolated_home, done[0]["eval_id"]):
        assert row["turns"], row
        assert len(row["turns"]) == row["completion"].count("[assistant]"), row
        assert row["completion"].startswith(f"[assistant] {row['turns'][0]}"), row
    assert any(r["completion"].count("[assistant]") > 1 for r in done[0]["rows"]), "some episode took turns"
    result = await client.call_tool("compare_evaluations", {"a": done[0]["eval_id"], "b": done[1]["eval_id"]})
    verdict = result.structured_content
    assert verdict["verdict"] != UNSTABLE and verdict["reward_verdict"] is not None, verdict
    assert verdict["consistency"] == {"rescored": 24, "not_rescored": None, "disagreements": 0, "examples": []}
    assert "reward consistency: 24 pair(s) of both sides re-scored blind, mixed: all agreed" in result.content[0].text


async def test_a_scorer_that_pays_by_how_many_episodes_its_process_played_gets_no_verdict(
    client: Client, workspace: Path
) -> None:
    config = await multi_turn_project(client, workspace, HEADER + COUNTING_SCORER + FACTORY)
    done = await two_evaluations(client, config, **GREEDY)
    assert [r["score"] for d in done for r in d["rows"]] == [1.0] * 12, "each side's own worker paid all six"
    verdict = await call(client, "compare_evaluations", a=done[0]["eval_id"], b=done[1]["eval_id"])
    assert verdict["verdict"] == UNSTABLE and verdict["reward_verdict"] is None, verdict
    checked = verdict["consistency"]
    assert checked["rescored"] == 12 and checked["disagreements"] == 6, checked
    assert {tuple(sorted(e["scores"].values())) for e in checked["examples"]} == {(0.0, 1.0)}


async def test_an_environment_that_replies_otherwise_on_replay_gets_no_verdict(client: Client, workspace: Path) -> None:
    config = await multi_turn_project(client, workspace, HEADER + COUNTING_REPLIES + FACTORY)
    done = await two_evaluations(client, config, **GREEDY)
    assert done[0]["rows"][0]["completion"].count("[user] reply ") == 2, done[0]["rows"][0]
    result = await client.call_tool("compare_evaluations", {"a": done[0]["eval_id"], "b": done[1]["eval_id"]})
    verdict = result.structured_content
    assert verdict["verdict"] == UNSTABLE and verdict["reward_verdict"] is None, verdict
    checked = verdict["consistency"]
    assert checked["rescored"] == 12 and checked["disagreements"] == 12, checked
    replied = "the environment replied otherwise than when the episode was recorded"
    assert all(e["reason"] == replied and e["scores"]["re-scored"] is None for e in checked["examples"])
    assert replied in verdict["reason"] and f"({replied})" in result.content[0].text


async def test_an_environment_that_ends_episodes_early_on_replay_gets_no_verdict(
    client: Client, workspace: Path
) -> None:
    config = await multi_turn_project(client, workspace, HEADER + COUNTING_STEPS + FACTORY)
    done = await two_evaluations(client, config, **GREEDY)
    assert all(r["completion"].count("[assistant]") == 3 for d in done for r in d["rows"]), "no episode ended early"
    verdict = await call(client, "compare_evaluations", a=done[0]["eval_id"], b=done[1]["eval_id"])
    assert verdict["verdict"] == UNSTABLE, verdict
    checked = verdict["consistency"]
    assert checked["rescored"] == 12 and checked["disagreements"] == 6, checked
    assert {e["reason"] for e in checked["examples"]} == {"the episode ended after 2 of its 3 recorded turns"}


async def test_an_episode_recorded_without_its_turns_cannot_be_replayed_and_gets_no_verdict(
    client: Client, workspace: Path, isolated_home: Path
) -> None:
    config = await multi_turn_project(client, workspace, DIGIT_GUESS_ENV)
    done = await two_evaluations(client, config, **GREEDY)
    path = isolated_home / "evals" / done[1]["eval_id"] / "rows.jsonl"
    rows = stored_rows(isolated_home, done[1]["eval_id"])
    rows[2]["turns"] = None  # as the evaluator keeps an episode over the caps
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    verdict = await call(client, "compare_evaluations", a=done[0]["eval_id"], b=done[1]["eval_id"])
    assert verdict["verdict"] == UNSTABLE, verdict
    checked = verdict["consistency"]
    assert checked["rescored"] == 12 and checked["disagreements"] == 1, checked
    assert checked["examples"][0]["row_id"] == rows[2]["row_id"]
    assert checked["examples"][0]["reason"].startswith("its model turns were not recorded"), checked


# Kills its own process once it has scored six episodes: each evaluation's worker scores exactly six; the re-score,
# playing both sides' twelve in one worker, takes it down mid-way. A failed re-score refuses the verdict.
EXITING_SCORER = """
    def step_episode(self, example, messages, assistant_response):
        return EnvironmentStepResult(done=True, messages=[])

    def score_episode(self, example, episode):
        Env.scored += 1
        if Env.scored > 6:
            import os
            os._exit(3)
        return RewardResult(score=0.5, threshold=1.0)
"""


async def test_an_environment_whose_worker_dies_during_the_re_score_gets_no_verdict(
    client: Client, workspace: Path
) -> None:
    config = await multi_turn_project(client, workspace, HEADER + EXITING_SCORER + FACTORY)
    done = await two_evaluations(client, config, **GREEDY)
    for _ in range(2):  # a failed re-score is not remembered: the next comparison tries again, and fails again
        verdict = await call(client, "compare_evaluations", a=done[0]["eval_id"], b=done[1]["eval_id"])
        assert verdict["verdict"] == UNSTABLE and verdict["reward_verdict"] is None, verdict
        checked = verdict["consistency"]
        assert checked["rescored"] == 12 and checked["disagreements"] == 12, checked
        assert all("failed" in e["reason"] and "environment worker" in e["reason"] for e in checked["examples"])


async def test_an_environment_that_does_not_load_for_the_re_score_gets_no_verdict_until_it_does(
    client: Client, workspace: Path, isolated_home: Path
) -> None:
    config = await constant_answer_project(client, workspace)
    done = await two_evaluations(client, config, **EVAL_SAMPLING)
    spec = json.loads((isolated_home / "evals" / done[0]["eval_id"] / "spec.json").read_text())
    kept = isolated_home / "envs" / spec["environment_digest"] / "environment.py"
    honest = kept.read_text()
    kept.write_text("raise RuntimeError('not when I am re-scored')\n" + honest)  # as one that knew it was
    verdict = await call(client, "compare_evaluations", a=done[0]["eval_id"], b=done[1]["eval_id"])
    assert verdict["verdict"] == UNSTABLE and verdict["reward_verdict"] is None, verdict
    checked = verdict["consistency"]
    assert checked["rescored"] == 24 and checked["disagreements"] == 24, checked
    assert all(e["reason"].startswith("the environment's worker failed during the re-score") for e in
               checked["examples"]), checked  # fmt: skip
    kept.write_text(honest)  # a failed re-score is not remembered: the next comparison re-scores again
    again = await call(client, "compare_evaluations", a=done[0]["eval_id"], b=done[1]["eval_id"])
    assert again["verdict"] != UNSTABLE and again["consistency"]["disagreements"] == 0, again
