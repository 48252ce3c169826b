"""Seeded projects for environment tests: a healthy base and one deliberate mistake each."""

from __future__ import annotations

import json
from pathlib import Path

HEADER = """
import json
import os
import sys
import time
from pathlib import Path

from freesolo.datasets.types import TaskExample
from freesolo.environments import EnvironmentSingleTurn, RewardResult

ROWS = Path(__file__).parent / "dataset" / "train.jsonl"


def load_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
"""

PROMPT = """
    def build_prompt_messages(self, example, prompt_text):
        return [{"role": "user", "content": example.input}]
"""

EXACT = """
    def score_response(self, example, response_text):
        return RewardResult(score=1.0 if response_text.strip() == str(example.output) else 0.0)
"""

FACTORY = """

def load_environment(dataset_path=None, **kwargs):
    env = Env()
    if dataset_path:
        env.dataset = load_jsonl(dataset_path)
    return env
"""


def environment(*, prompt: str = PROMPT, score: str = EXACT, factory: str = FACTORY, top: str = "") -> str:
    body = f"\nclass Env(EnvironmentSingleTurn):\n    dataset = load_jsonl(ROWS)\n{prompt}{score}"
    return HEADER + top + body + factory


def rows(n: int) -> list[dict]:
    return [{"input": f"What is {i} + 1?", "output": str(i + 1)} for i in range(n)]


def make_project(root: Path, name: str, source: str, dataset: list[dict], config: str = "") -> Path:
    project = root / name
    (project / "dataset").mkdir(parents=True)
    (project / "configs").mkdir()
    (project / "environment.py").write_text(source, encoding="utf-8")
    (project / "dataset" / "train.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in dataset), encoding="utf-8"
    )
    (project / "configs" / "rl.toml").write_text(
        'model = "Qwen/Qwen3.5-9B"\nalgorithm = "grpo"\n\n[environment]\nid = "acme/demo/env"\n'
        + config
        + "\n[train]\nmax_examples = "
        + str(len(dataset))
        + "\n",
        encoding="utf-8",
    )
    return project


SCORER_RAISES_ON_57 = environment(
    score="""
    def score_response(self, example, response_text):
        if example.input == "What is 57 + 1?":
            raise ZeroDivisionError("row 57 divides by zero")
        return RewardResult(score=1.0 if response_text.strip() == str(example.output) else 0.0)
"""
)
BAD_PROMPT_ON_150 = environment(
    prompt="""
    def build_prompt_messages(self, example, prompt_text):
        if example.input == "What is 150 + 1?":
            return [{"role": "narrator", "content": example.input}]
        return [{"role": "user", "content": example.input}]
"""
)
GOLD_NEVER_SCORES = environment(
    score="""
    def score_response(self, example, response_text):
        return RewardResult(score=1.0 if response_text.strip() == f"<answer>{example.output}</answer>" else 0.0)
"""
)
ANY_DIGIT_GETS_CREDIT = environment(
    score="""
    def score_response(self, example, response_text):
        return RewardResult(score=1.0 if any(ch.isdigit() for ch in response_text) else 0.0)
"""
)
DROPS_PARAMS = environment(
    factory="""

def load_environment(dataset_path=None):
    env = Env()
    if dataset_path:
        env.dataset = load_jsonl(dataset_path)
    return env
"""
)
HUNG = "flash-mcp test: this row hangs for ever"  # printed as the hang starts: a test sees it, no clock needed
HANGS_ON_ROW_3 = environment(
    top=f"\nHUNG = {HUNG!r}\n",
    prompt="""
    def build_prompt_messages(self, example, prompt_text):
        if example.input == "What is 3 + 1?":
            print(HUNG, flush=True)
            while True:
                time.sleep(0.05)
        return [{"role": "user", "content": example.input}]
""",
)
CRASHES_AT_IMPORT = environment(top='\nraise RuntimeError("cannot connect to the grading service")\n')
EXITS_AT_IMPORT = environment(top="\nsys.exit(3)\n")
EXITS_IN_SCORER = environment(
    score="""
    def score_response(self, example, response_text):
        sys.exit("scorer gave up")
"""
)
KILLS_ITSELF_ON_ROW_5 = environment(
    score="""
    def score_response(self, example, response_text):
        if example.input == "What is 5 + 1?":
            os.kill(os.getpid(), 9)
        return RewardResult(score=1.0 if response_text.strip() == str(example.output) else 0.0)
"""
)
PRINTS_MEGABYTES = environment(
    top='\nsys.stdout.write("x" * 3_000_000)\nsys.stderr.write("y" * 3_000_000)\n',
)
PRINTS_IN_SCORER = environment(
    score="""
    def score_response(self, example, response_text):
        print("scoring", example.input, "x" * 10_000)
        return RewardResult(score=1.0 if response_text.strip() == str(example.output) else 0.0)
"""
)
HANGS_AT_IMPORT_IN_C = environment(top="\nimport select\nselect.select([], [], [])\n")
