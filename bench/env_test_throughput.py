"""Rows per second of test_environment against an in-process loop over the same scorer, in one run.

The in-process baseline loads the same environment and makes the same scorer calls
test_environment makes per row (the gold answer, a wrong answer, a near miss and a hedged
answer), with no contract checks, no process boundary and no MCP. Both rates cover the whole
job, loading included; the scoring loop's own rate is printed too. Target: test_environment at
least half the in-process rate.

    python bench/env_test_throughput.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.envs.projects import environment, rows


def write_project(root: Path, count: int) -> Path:
    project = root / "bench"
    (project / "dataset").mkdir(parents=True)
    (project / "environment.py").write_text(environment(), encoding="utf-8")
    with (project / "dataset" / "train.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows(count):
            handle.write(json.dumps(row) + "\n")
    return project


def in_process_rates(project: Path) -> tuple[float, float, int]:
    """(rows/s loading the environment and scoring, rows/s of the scoring loop alone, rows)."""
    from freesolo.datasets.records import load_task_examples
    from freesolo.environments import load_environment

    started = time.perf_counter()
    env = load_environment(str(project / "environment.py"))
    examples = load_task_examples(env.dataset)
    loaded = time.perf_counter()
    for example in examples:
        gold = str(example.output)
        for answer in (gold, "test", str(int(gold) + 1), f"Candidates: {gold}, test. Final answer: test"):
            env.score_response(example, env.normalize_response_text(example, answer))
    finished = time.perf_counter()
    return len(examples) / (finished - started), len(examples) / (finished - loaded), len(examples)


async def tool_rate(root: Path) -> tuple[float, dict]:
    settings = ServerSettings.create(root, home=root / "state")
    async with Client(build_server(settings)) as client:
        started = time.perf_counter()
        result = await client.call_tool("test_environment", {"directory": "bench", "timeout_s": 3600})
        elapsed = time.perf_counter() - started
    report = result.structured_content
    return report["rows_checked"] / elapsed, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        project = write_project(root, args.rows)
        end_to_end, loop_only, count = in_process_rates(project)
        measured, report = anyio.run(tool_rate, root)
    assert report["verdict"] == "pass" and report["rows_checked"] == count, report["summary"]
    print(f"rows                                   : {count}")
    print(f"in-process, load + scorer loop         : {end_to_end:,.0f} rows/s")
    print(f"in-process, scorer loop alone          : {loop_only:,.0f} rows/s")
    print(f"test_environment through MCP (all in)  : {measured:,.0f} rows/s")
    print(f"ratio vs load + loop                   : {measured / end_to_end:.2f}  (target >= 0.50)")
    print(f"ratio vs loop alone                    : {measured / loop_only:.2f}")


if __name__ == "__main__":
    main()
