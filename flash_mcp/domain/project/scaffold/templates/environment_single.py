"""Starter Freesolo environment (single-turn).

Replace dataset/train.jsonl with your real rows and the reward in `score_response` with
your real grading, then check every row with flash-mcp's `test_environment` (or
`flash env test`) before you push it with `flash env push --project PROJECT_UUID --name my-env .`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from freesolo.datasets.types import TaskExample
from freesolo.environments import EnvironmentSingleTurn, RewardResult

DEFAULT_DATASET_PATH = Path(__file__).parent / "dataset" / "train.jsonl"
THINK = re.compile(r"<think>.*?</think>", re.S)


def load_jsonl(path: str | Path):
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def exact_match_reward(example: TaskExample, response_text: str) -> RewardResult:
    # Grade the whole final answer (reasoning in <think> removed), never a substring: `expected in
    # response` pays "4, 5, 6" for 4 and an empty gold pays everything; test_environment's reward
    # audit flags both.
    expected = str(example.output if example.output is not None else "").strip()
    answer = THINK.sub("", response_text).strip()
    score = 1.0 if expected and answer == expected else 0.0
    return RewardResult(score=score, threshold=1.0)


class StarterEnv(EnvironmentSingleTurn):
    # A row's `output` is both the answer the scorer expects and the gold assistant turn SFT
    # trains on (there is no `sft_completion` override here). Write it as the exact text the
    # model should produce: if the scorer wants a wrapper (a tag, \boxed{}, JSON), put the
    # wrapper in `output` too. Anything the scorer needs but the model must not see goes in
    # the row's `metadata`.
    dataset = load_jsonl(DEFAULT_DATASET_PATH)

    def build_prompt_messages(self, example: TaskExample, prompt_text: str):
        return [{"role": "user", "content": example.input}]

    def score_response(self, example: TaskExample, response_text: str) -> RewardResult:
        return exact_match_reward(example, response_text)


def load_environment(dataset_path: str | None = None, **kwargs) -> StarterEnv:
    env = StarterEnv()
    if dataset_path:
        env.dataset = load_jsonl(dataset_path)
    return env
