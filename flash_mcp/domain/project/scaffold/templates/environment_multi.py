"""Starter Freesolo environment (multi-turn): guess the secret number.

An episode alternates model actions and environment replies: `start_episode` opens it,
`step_episode` reacts to each assistant action, and the loop ends when a step returns
done=True or after `max_episode_turns`. `score_episode` grades the finished transcript.

GRPO (configs/rl.toml) optimises `score_episode` over whole episodes; SFT
(configs/sft.toml) learns a gold trajectory, given per row as `output` = {"messages": [...]}
or as a scalar `output` for one gold assistant turn; OPD (configs/opd.toml) distils every
assistant turn from a managed teacher (glm-5.3 unless [train] teacher_model says otherwise).

Replace the game with your task, check every row with flash-mcp's `test_environment` (or
`flash env test`), then push it with `flash env push --project PROJECT_UUID --name my-env .`.
"""

from __future__ import annotations

import json
from pathlib import Path

from freesolo.datasets.types import TaskExample
from freesolo.environments import (
    EnvironmentEpisode,
    EnvironmentMultiTurn,
    EnvironmentStepResult,
    RewardResult,
)

DEFAULT_DATASET_PATH = Path(__file__).parent / "dataset" / "train.jsonl"

# Guesses the model gets before the episode is forced to end.
MAX_TURNS = 5


def load_jsonl(path: str | Path):
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def _secret(example: TaskExample) -> int:
    return int(str(example.output).strip())


class StarterMultiTurnEnv(EnvironmentMultiTurn):
    dataset = load_jsonl(DEFAULT_DATASET_PATH)

    def start_episode(self, example: TaskExample, prompt_text: str):
        return [
            {
                "role": "user",
                "content": (
                    f"{example.input}\n"
                    "Reply with a single integer per turn. I will say 'higher', "
                    f"'lower', or 'correct'. You have {MAX_TURNS} guesses."
                ),
            }
        ]

    def max_episode_turns(self, example: TaskExample) -> int:
        return MAX_TURNS

    def step_episode(
        self,
        example: TaskExample,
        messages: list,
        assistant_response: str,
    ) -> EnvironmentStepResult:
        # `messages` already ends with this action (messages[-1] is the assistant turn):
        # if you rebuild state from the transcript, replay messages[:-1] and apply this once.
        try:
            guess = int(assistant_response.strip().split()[0])
        except (ValueError, IndexError):
            return EnvironmentStepResult(
                done=False,
                messages=[{"role": "user", "content": "Please reply with a single integer."}],
            )
        secret = _secret(example)
        if guess == secret:
            return EnvironmentStepResult(done=True, final_response_text=str(guess))
        hint = "higher" if guess < secret else "lower"
        return EnvironmentStepResult(done=False, messages=[{"role": "user", "content": hint}])

    def score_episode(self, example: TaskExample, episode: EnvironmentEpisode) -> RewardResult:
        # Full credit for the right number; partial credit for a near miss, so GRPO sees a
        # gradient before the model ever wins.
        secret = _secret(example)
        try:
            final = int(str(episode.response_text).strip())
        except ValueError:
            return RewardResult(score=0.0, threshold=1.0)
        if final == secret:
            return RewardResult(score=1.0, threshold=1.0, success=True)
        closeness = max(0.0, 1.0 - abs(final - secret) / 100.0)
        return RewardResult(score=closeness * 0.5, threshold=1.0, success=False)


def load_environment(dataset_path: str | None = None, **kwargs) -> StarterMultiTurnEnv:
    env = StarterMultiTurnEnv()
    if dataset_path:
        env.dataset = load_jsonl(dataset_path)
    return env
