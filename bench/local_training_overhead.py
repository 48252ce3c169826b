"""Wall time of one tiny-model SFT run through launch_training against a bare TRL script, in one run.

Both train the same LoRA on the same rows with the same knobs; both pay for a fresh Python
process that imports torch and TRL. Target: launch_training within 1.15x of the bare script.

    python bench/local_training_overhead.py [--rows 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_setup import tiny_local_setup, train_and_wait  # noqa: E402
from flash_mcp.core.settings import ServerSettings  # noqa: E402
from flash_mcp.server import build_server  # noqa: E402

# Matches bench/bare_sft.py.
KNOBS = {"train.epochs": 1, "train.batch_size": 8, "train.learning_rate": 0.01, "train.lora_rank": 8}


async def through_mcp(workspace: Path, home: Path) -> float:
    async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
        await client.call_tool("setup_project", {"directory": "p"})
        await client.call_tool("push_environment", {"name": "bench", "directory": "p"})
        _, elapsed = await train_and_wait(client, "p/configs/sft.toml", KNOBS)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model, home, workspace = tiny_local_setup(root)
        rows = [{"input": f"What is {i % 50} + {i % 7}?", "output": str(i % 50 + i % 7)} for i in range(args.rows)]
        project = workspace / "p"
        anyio.run(_scaffold, workspace, home)
        (project / "dataset" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        started = time.perf_counter()
        script = ROOT / "bench" / "bare_sft.py"
        subprocess.run(
            [sys.executable, str(script), str(model), str(project / "dataset" / "train.jsonl"), str(root / "bare")],
            check=True, capture_output=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        bare = time.perf_counter() - started
        tool = anyio.run(through_mcp, workspace, home)
    print(f"rows                        : {args.rows}")
    print(f"bare TRL script             : {bare:.1f} s")
    print(f"launch_training to done     : {tool:.1f} s")
    print(f"ratio (tool / bare)         : {tool / bare:.2f}  (target <= 1.15)")


async def _scaffold(workspace: Path, home: Path) -> None:
    async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
        await client.call_tool("setup_project", {"directory": "p"})


if __name__ == "__main__":
    main()
