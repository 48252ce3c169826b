"""test_environment against an in-process loop over the same scorer calls, alternated, medians, in one run.

The baseline is recorded first: the child's own row check (`jobs/envtest_child.check_row`, with the same rows
sampled for the full exploit probes) runs once in this process on an environment that records every response
it is asked to score (normalized, then scored: Flash's single-turn path). The timed baseline then loads the
environment with the very arguments that load passed to the SDK (Flash's: the packaged `dataset_path` and
`contract_path`; this environment's factory reads its dataset again) and makes exactly those scorer calls in a
plain loop: no contract checks, no probe construction, no process boundary, no MCP. `test_environment` is timed
through MCP, loading included, with its parallel lanes (two sandboxed children splitting the rows) on a machine
with two or more cores. The server has answered one `check_project` call before the clock starts, as a running
server has: its first tool call registers the surface (server start-up, paid once: about 0.3 s, not the test's;
`tools/list` is answered from the shipped list and registers nothing), and its environment-test fork server has
preloaded (a server starts it at its first test, which starts cold). The two sides alternate `--repeats` times;
the medians and their ratio are printed. Target: ratio >= 1.0 on 2 cores.

    python bench/env_test_throughput.py [--rows 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flash_mcp.core.settings import ServerSettings
from flash_mcp.harness.lanes import MAX_LANES, PARALLEL_MIN_ROWS
from flash_mcp.sandbox import warm_up_env_tests
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


class _Recording:
    """The environment, with every scorer call recorded as (row index, response text)."""

    def __init__(self, env: Any, calls: list[tuple[int, Any]]):
        self._env, self._calls, self.index = env, calls, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def normalize_response_text(self, example: Any, text: str) -> Any:
        self._calls.append((self.index, text))  # the single-turn path: normalize, then score_response
        return self._env.normalize_response_text(example, text)


def scorer_calls(project: Path) -> tuple[list[tuple[int, Any]], dict[str, Any]]:
    """Every scorer call test_environment's row check makes, in order, and the arguments its load passed to
    `load_environment` (recorded in this process)."""
    import freesolo.environments as sdk

    from flash_mcp.domain.envtest.probes import Sampler
    from flash_mcp.jobs.envtest_child import _other_golds, check_row
    from flash_mcp.runtime import load

    real, loaded = sdk.load_environment, {}

    def recording_load(reference: str, **params: Any) -> Any:
        loaded.update(reference=reference, params=params)
        return real(reference, **params)

    sdk.load_environment = recording_load
    try:
        env, examples, info = load({"entrypoint": str(project / "environment.py"), "params": {}})
    finally:
        sdk.load_environment = real
    calls: list[tuple[int, Any]] = []
    recording, full = _Recording(env, calls), Sampler(len(examples))
    for index, example in enumerate(examples):
        recording.index = index
        others = _other_golds(env, examples, index) if full(index) else None
        check_row(recording, example, index, info["multi_turn"], 1, {}, others=others)
    return calls, loaded


def in_process_seconds(loaded: dict[str, Any], calls: list[tuple[int, Any]]) -> float:
    """Load the environment as test_environment did and make the recorded scorer calls, nothing else."""
    from freesolo.datasets.records import load_task_examples
    from freesolo.environments import load_environment

    started = time.perf_counter()
    env = load_environment(loaded["reference"], **loaded["params"])
    examples = load_task_examples(env.dataset)  # the environment's rows: Flash prefers them over the file
    for index, text in calls:
        example = examples[index]
        env.score_response(example, env.normalize_response_text(example, text))
    return time.perf_counter() - started


async def tool_seconds(root: Path) -> tuple[float, dict]:
    settings = ServerSettings.create(root, home=root / "state")
    async with Client(build_server(settings)) as client:
        await client.call_tool("check_project", {"directory": "bench"})  # registers the surface: start-up
        started = time.perf_counter()
        result = await client.call_tool("test_environment", {"directory": "bench", "timeout_s": 3600})
        elapsed = time.perf_counter() - started
    return elapsed, result.structured_content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    lanes = min(MAX_LANES, os.cpu_count() or 1) if args.rows >= PARALLEL_MIN_ROWS else 1
    assert warm_up_env_tests(wait_s=60), "the environment-test fork server preloads"
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        project = write_project(root, args.rows)
        calls, loaded = scorer_calls(project)
        baseline, measured = [], []
        for _ in range(args.repeats):
            baseline.append(in_process_seconds(loaded, calls))
            seconds, report = anyio.run(tool_seconds, root)
            assert report["verdict"] == "pass" and report["rows_checked"] == args.rows, report["summary"]
            measured.append(seconds)
    base, tool = statistics.median(baseline), statistics.median(measured)
    print(f"load_environment arguments: {sorted(loaded['params'])}")
    print(f"rows {args.rows}, scorer calls {len(calls)} ({len(calls) / args.rows:.1f} a row), lanes {lanes}, "
          f"cores {os.cpu_count()}")  # fmt: skip
    print(f"in-process loop, same scorer calls : median {base:.2f} s  ({args.rows / base:,.0f} rows/s)  "
          f"samples {' '.join(f'{s:.2f}' for s in baseline)}")  # fmt: skip
    print(f"test_environment through MCP       : median {tool:.2f} s  ({args.rows / tool:,.0f} rows/s)  "
          f"samples {' '.join(f'{s:.2f}' for s in measured)}")  # fmt: skip
    print(f"ratio (test_environment rate / in-process rate) = {base / tool:.2f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
