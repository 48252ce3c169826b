"""Rows per second of a local `evaluate` (through an MCP client, to state done) against a bare transformers
generate-and-score loop over the same rows, in one run: sides alternate over several repeats, medians
compared. Both pay for a fresh Python process, imports and model load. Target: ratio >= 0.8.

    python bench/evaluate_throughput.py [--rows 500] [--max-tokens 16] [--repeats 3]
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

from bench.local_setup import alternate, tiny_local_setup  # noqa: E402
from flash_mcp.core.settings import ServerSettings  # noqa: E402
from flash_mcp.jobs.evaluator.run import DEFAULT_BATCH  # noqa: E402
from flash_mcp.planes.local.plane import LocalPlane  # noqa: E402
from flash_mcp.server import build_server  # noqa: E402


async def prepare(workspace: Path, home: Path, rows: int) -> Path:
    async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
        await client.call_tool("setup_project", {"directory": "p"})
        held_out = [{"input": f"What is {i % 50} + {i % 7}?", "output": str(i % 50 + i % 7)} for i in range(rows)]
        text = "".join(json.dumps(row) + "\n" for row in held_out)
        (workspace / "p" / "dataset" / "test.jsonl").write_text(text, encoding="utf-8")
        pushed = (await client.call_tool("push_environment", {"name": "bench", "directory": "p"})).structured_content
    record = LocalPlane(home).pushed(pushed["environment_id"])
    assert record is not None
    return Path(record.package)


async def through_mcp(workspace: Path, home: Path, rows: int, max_tokens: int) -> float:
    async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
        arguments = {"config": "p/configs/sft.toml", "split": "test", "max_rows": rows, "max_tokens": max_tokens}
        started = time.perf_counter()
        begun = (await client.call_tool("evaluate", arguments)).structured_content
        while True:
            view = await client.call_tool("get_evaluation", {"eval_id": begun["eval_id"], "wait_s": 60,
                                                              "rows_limit": 0})  # fmt: skip
            if view.structured_content["state"] in ("done", "failed", "cancelled"):
                break
        elapsed = time.perf_counter() - started
    assert view.structured_content["state"] == "done", view.structured_content
    assert view.structured_content["progress"]["done"] == rows
    return elapsed


def bare(model: Path, package: Path, rows: int, max_tokens: int) -> float:
    started = time.perf_counter()
    script = ROOT / "bench" / "bare_evaluate.py"
    done = subprocess.run(
        [sys.executable, str(script), str(model), str(package), "test", str(rows), str(max_tokens), str(DEFAULT_BATCH)],
        check=True, capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert int(done.stdout.split()[0]) == rows, done.stdout
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model, home, workspace = tiny_local_setup(root)
        package = anyio.run(prepare, workspace, home, args.rows)
        times = alternate(
            {
                "bare": lambda _: bare(model, package, args.rows, args.max_tokens),
                "tool": lambda _: anyio.run(through_mcp, workspace, home, args.rows, args.max_tokens),
            },
            args.repeats,
        )
        tool, baseline = times["tool"], times["bare"]
    tool_rps, bare_rps = args.rows / statistics.median(tool), args.rows / statistics.median(baseline)
    print(f"rows x max_tokens           : {args.rows} x {args.max_tokens} (batch {DEFAULT_BATCH}, greedy)")
    print(f"bare loop, s per repeat     : {', '.join(f'{t:.1f}' for t in baseline)}")
    print(f"evaluate, s per repeat      : {', '.join(f'{t:.1f}' for t in tool)}")
    print(f"rows/s (median) bare / tool : {bare_rps:.1f} / {tool_rps:.1f}")
    print(f"ratio (tool / bare)         : {tool_rps / bare_rps:.2f}  (target >= 0.8)")


if __name__ == "__main__":
    main()
