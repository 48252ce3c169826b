"""Multi-turn rehearsals on the local plane: GRPO plays whole episodes through the environment, as Flash's
worker does, on the offline tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp import runtime
from flash_mcp.core.settings import ServerSettings
from flash_mcp.jobs.model_episode import play_model_episode
from flash_mcp.jobs.trainer.credit import per_turn_advantages
from flash_mcp.runtime.episode import turn_ceiling
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call
from tests.local.conftest import TINY_GRPO, wait_for_end, wait_for_evaluation

pytestmark = pytest.mark.anyio

# Guess the number; every turn that holds a digit earns credit, so even the random tiny model scores
# (and the reward audit flags it as gameable).
DIGIT_GUESS_ENV = """
import json
from pathlib import Path

from freesolo.environments import EnvironmentMultiTurn, EnvironmentStepResult, RewardResult

ROWS = Path(__file__).parent / "dataset" / "train.jsonl"
TURNS = 3


def load_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class DigitGuess(EnvironmentMultiTurn):
    dataset = load_jsonl(ROWS)

    def start_episode(self, example, prompt_text):
        return [{"role": "user", "content": f"{example.input} Reply with a single integer per turn."}]

    def max_episode_turns(self, example):
        return TURNS

    def step_episode(self, example, messages, assistant_response):
        if assistant_response.strip() == str(example.output):
            return EnvironmentStepResult(done=True, final_response_text=assistant_response)
        return EnvironmentStepResult(done=False, messages=[{"role": "user", "content": "higher or lower"}])

    def score_episode(self, example, episode):
        turns = [t.content for t in episode.turns if t.role == "assistant"]
        credit = [1.0 if any(c.isdigit() for c in str(t)) else 0.0 for t in turns]
        score = sum(credit) / len(credit) if credit else 0.0
        return RewardResult(score=score, threshold=1.0, metadata={"per_turn_rewards": credit})


def load_environment(dataset_path=None, **kwargs):
    env = DigitGuess()
    if dataset_path:
        env.dataset = load_jsonl(dataset_path)
    return env
"""


@pytest.fixture
async def client(settings: ServerSettings):
    async with Client(build_server(settings)) as connected:
        yield connected


async def digit_guess_project(client: Client, workspace: Path, rows: int = 6) -> Path:
    await call(client, "setup_project", directory="m", project=PROJECT, multi_turn=True)
    project = workspace / "m"
    (project / "environment.py").write_text(DIGIT_GUESS_ENV, encoding="utf-8")
    lines = [json.dumps({"input": f"Guess my number {i}.", "output": str(i + 1)}) for i in range(rows)]
    (project / "dataset" / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    held_out = [json.dumps({"input": f"Guess my number {i}.", "output": str(i + 1)}) for i in range(100, 106)]
    (project / "dataset" / "test.jsonl").write_text("\n".join(held_out) + "\n", encoding="utf-8")
    report = await call(client, "test_environment", directory="m", config="m/configs/rl.toml")
    # Credit for any digit is a reward a policy can game, and the audit's scripted episodes say so; the
    # environment stays that lenient so the random tiny model earns reward in the runs below.
    assert report["multi_turn"] and report["verdict"] == "fail", report["summary"]
    assert "episode" in report["summary"], report["summary"]
    return project


async def test_multi_turn_grpo_plays_whole_episodes_with_rewards(client: Client, workspace: Path) -> None:
    await digit_guess_project(client, workspace)
    await call(client, "push_environment", name="guess", directory="m")
    overrides = {**TINY_GRPO, "train.max_steps": 2, "train.credit_assignment": "per_turn"}
    launched = await call(client, "launch_training", config="m/configs/rl.toml", overrides=overrides)
    run = await wait_for_end(client, launched["run_id"])
    assert run["state"] == "done", run
    samples = (await call(client, "get_run_samples", run_id=run["run_id"], limit=50))["samples"]
    assert {s["kind"] for s in samples} == {"episode"} and {s["step"] for s in samples} == {1, 2}
    longest = max(samples, key=lambda s: len(s["turns"]))
    roles = [turn["role"] for turn in longest["turns"]]
    assert roles[:3] == ["assistant", "user", "assistant"], "model turns with the environment's replies between"
    assert longest["turns"][1]["content"] == "higher or lower"
    assert any(s["reward"] > 0 for s in samples), "the scripted environment rewards the tiny model's digits"
    assert all(len(s["turn_rewards"]) == sum(t["role"] == "assistant" for t in s["turns"]) for s in samples)
    rewards = (await call(client, "get_run_metrics", run_id=run["run_id"]))["series"]["reward"]
    assert [step for step, _ in rewards] == [1, 2]


async def test_an_episode_reward_equals_test_environment_on_its_transcript(
    client: Client, workspace: Path, tiny_model: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    project = await digit_guess_project(client, workspace)
    env, examples, _ = runtime.load({"entrypoint": str(project / "environment.py"), "params": {}})
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    for example in examples[:3]:
        trace = play_model_episode(env, example, model, tokenizer, max_tokens=6, temperature=1.0,
                                   ceiling=turn_ceiling(env, examples), stops=stops)  # fmt: skip
        said = [m["content"] for m in trace.messages if m["role"] == "assistant"]
        assert len(said) == len(trace.spans) >= 1
        assert sum(trace.mask) == sum(end - start for start, end in trace.spans), "only model tokens train"
        report = await call(client, "test_environment", directory="m",
                            responses=[{"row_id": example.id, "response": said}])  # fmt: skip
        assert report["responses"], report
        assert report["responses"][0]["score"] == pytest.approx(trace.scored["score"])


def test_per_turn_credit_centres_each_turn_on_its_group() -> None:
    import torch

    episode = torch.tensor([0.5, -0.5, 1.0, -1.0])
    spans = [[(0, 2), (3, 5)], [(0, 2), (3, 4)], [(0, 1)], [(0, 3)]]
    rewards = [[1.0, 0.0], [0.0, 1.0], [1.0], None]  # the second group lacks a vector: episode credit
    out = per_turn_advantages(episode, 6, 2, spans, rewards)
    assert out[0].tolist() == [0.5, 0.5, 0.0, -0.5, -0.5, 0.0]
    assert out[1].tolist() == [-0.5, -0.5, 0.0, 0.5, 0.0, 0.0]
    assert out[2].tolist() == [1.0] * 6 and out[3].tolist() == [-1.0] * 6


async def test_multi_turn_evaluation_plays_episodes_and_compares_paired(client: Client, workspace: Path) -> None:
    await digit_guess_project(client, workspace)
    await call(client, "push_environment", name="guess", directory="m")
    sampled = {"max_tokens": 6, "temperature": 1.0, "samples_per_row": 2}
    first = await call(client, "evaluate", config="m/configs/rl.toml", seed=1, **sampled)
    second = await call(client, "evaluate", config="m/configs/rl.toml", seed=2, **sampled)
    done = [await wait_for_evaluation(client, e["eval_id"]) for e in (first, second)]
    assert all(d["state"] == "done" for d in done), [d["error"] for d in done]
    rows = done[0]["rows"]
    assert len(rows) == 12 and rows[0]["row_id"] == "test:example_000000"
    assert rows[0]["prompt"].startswith("Guess my number 100.")
    assert any("[user] higher or lower" in r["completion"] for r in rows), "the environment replied between turns"
    assert any(r["score"] > 0 for d in done for r in d["rows"])
    verdict = await call(client, "compare_evaluations", a=first["eval_id"], b=second["eval_id"])
    assert verdict["rows_paired"] == 6 and verdict["verdict"] not in ("improved", "regressed"), verdict
