"""Wall time of one tiny-model GRPO run through launch_training against a bare TRL GRPO script, in one run.

Both train the same LoRA on the same rows with the same knobs (steps, prompts per step, group, completion
tokens, learning rate, rank); both pay for a fresh Python process that imports torch and TRL. launch_training
also pays for what makes it a rehearsal: the sandboxed environment worker that renders and scores, the run's
samples, metrics, checkpoints and the reference answers the hack watch reads. Sides alternate over `--repeats`,
medians compared. Target: launch_training within 1.15x of the bare script.

    python bench/local_grpo_overhead.py [--rows 64] [--steps 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_setup import alternate, tiny_local_setup, train_and_wait  # noqa: E402
from flash_mcp.core.settings import ServerSettings  # noqa: E402
from flash_mcp.server import build_server  # noqa: E402

PROMPTS, GROUP = 4, 4  # bare_grpo.py's seed stays 42: the seed moves sampled tokens, not the work per step


def knobs(steps: int, tokens: int) -> dict[str, object]:
    """The launch's overrides; bench/bare_grpo.py takes the same values on its command line."""
    return {"train.max_steps": steps, "train.prompts_per_step": PROMPTS, "train.group_size": GROUP,
            "train.max_completion_tokens": tokens, "train.learning_rate": 0.001, "train.lora_rank": 8,
            "train.save_every": steps}  # fmt: skip


async def _prepare(workspace: Path, home: Path, rows: list[dict]) -> None:
    async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
        await client.call_tool("setup_project", {"directory": "p"})
        data = "".join(json.dumps(r) + "\n" for r in rows)
        (workspace / "p" / "dataset" / "train.jsonl").write_text(data, encoding="utf-8")
        await client.call_tool("push_environment", {"name": "bench", "directory": "p"})


async def _through_mcp(workspace: Path, home: Path, overrides: dict[str, object]) -> float:
    async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
        _, elapsed = await train_and_wait(client, "p/configs/rl.toml", overrides)
    return elapsed


def _bare(model: Path, rows: Path, out: Path, steps: int, tokens: int) -> float:
    started = time.perf_counter()
    script = ROOT / "bench" / "bare_grpo.py"
    argv = [sys.executable, str(script), str(model), str(rows), str(out), str(steps), str(PROMPTS), str(GROUP),
            str(tokens)]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model, home, workspace = tiny_local_setup(root)
        rows = [{"input": f"What is {i % 50} + {i % 7}?", "output": str(i % 50 + i % 7)} for i in range(args.rows)]
        anyio.run(_prepare, workspace, home, rows)
        data = workspace / "p" / "dataset" / "train.jsonl"
        overrides = knobs(args.steps, args.tokens)
        times = alternate({
            "bare": lambda repeat: _bare(model, data, root / f"bare-{repeat}", args.steps, args.tokens),
            # a new seed each repeat: the same launch again would be answered with the run it already made
            "tool": lambda repeat: anyio.run(_through_mcp, workspace, home, {**overrides, "seed": 42 + repeat}),
        }, args.repeats)  # fmt: skip
    bare, tool = statistics.median(times["bare"]), statistics.median(times["tool"])
    shape = f"{args.steps} steps x {PROMPTS} prompts x {GROUP} completions of {args.tokens} tokens"
    print(f"GRPO: {shape}, {args.rows} rows")
    print(f"bare TRL script, s per repeat : {', '.join(f'{t:.1f}' for t in times['bare'])}")
    print(f"launch_training, s per repeat : {', '.join(f'{t:.1f}' for t in times['tool'])}")
    print(f"ratio (tool / bare, medians)  : {tool / bare:.2f}  (target <= 1.15)")


if __name__ == "__main__":
    main()
