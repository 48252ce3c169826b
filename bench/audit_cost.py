"""The reward audit's cost per row against the audit on `main`, measured in the same run.

Both sides run the same per-row work in a worker process of their own tree (this checkout, and
`git archive main` unpacked in a scratch folder): the child's `check_row` for every row (the cheap
probes, and on sampled rows every probe, the seeded search and the re-scorings), the message's JSON
round trip, and the server's checks and audit (`row_record`, the probe check where it exists,
`Tally.add_row`). Sides alternate, several repeats, medians. Target: at most 2x main per row.
Then the 100,000-row check: how many rows are fully probed (`probes.sampled`) and the projected
child + server time against the env test's default 600 s limit.

    python bench/audit_cost.py [--rows 20000] [--repeats 3] [--baseline main]
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # never ahead of the tree a worker measures

TIME_LIMIT_S = 600.0  # test_environment's default timeout_s
PROJECTED_ROWS = 100_000


def write_project(root: Path, count: int) -> Path:
    from tests.envs.projects import make_project
    from tests.envs.scorers import STRICT

    scorer = STRICT["parsed-number"]
    return make_project(root, "bench", scorer.source(), scorer.rows(count))


def worker(project: Path, rows: int) -> dict:
    """Run every row as the child and the server do; runs inside the tree under test (sys.path[0])."""
    from flash_mcp.domain.envtest.probes import Sampler
    from flash_mcp.domain.envtest.report import Tally
    from flash_mcp.harness import channel
    from flash_mcp.jobs import envtest_child as child
    from flash_mcp.runtime import load
    from flash_mcp.runtime.episode import sdk_types

    try:
        from flash_mcp.harness.probe_check import ProbeCheck
    except ImportError:
        ProbeCheck = None  # main has no probe check
    env, examples, info = load({"entrypoint": str(project / "environment.py"), "params": {}})
    calls = [0]
    scorer = env.score_response

    def counted(example, text):
        calls[0] += 1
        return scorer(example, text)

    env.score_response = counted
    tally = Tally(algorithm="grpo", configured=True)
    tally.loaded({**info, "reward_range": None})
    check = ProbeCheck(time.monotonic()) if ProbeCheck else None
    extra = {"last": []} if "last" in inspect.signature(child.check_row).parameters else {}
    full, sdk, started, full_rows = Sampler(len(examples)), sdk_types(), time.perf_counter(), 0
    for index in range(min(rows, len(examples))):
        others = child._other_golds(env, examples, index) if full(index) else None
        full_rows += others is not None
        record = child.check_row(env, examples[index], index, False, 1, sdk, others=others, **extra)
        checked = channel.row_record(json.loads(json.dumps(record)), index)
        tally.add_row(check.check(checked, tally) if check else checked)
    tally.audit_result()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "calls": calls[0], "full_rows": full_rows}


def run_side(tree: Path, project: Path, rows: int) -> dict:
    code = (
        f"import sys, json; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(ROOT)!r});"
        f"from bench.audit_cost import worker; from pathlib import Path; import flash_mcp;"
        f"assert flash_mcp.__file__.startswith({str(tree)!r}), flash_mcp.__file__;"
        f"print(json.dumps(worker(Path({str(project)!r}), {rows})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default="main", help="the git revision whose audit is the baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        base = root / "baseline"
        base.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.baseline, "flash_mcp"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        project = write_project(root, args.rows)
        sides: dict[str, list[dict]] = {"baseline": [], "this tree": []}
        for _ in range(args.repeats):
            sides["baseline"].append(run_side(base, project, args.rows))
            sides["this tree"].append(run_side(ROOT, project, args.rows))
    per_row = {name: statistics.median(r["seconds"] for r in runs) / args.rows for name, runs in sides.items()}
    calls = {name: runs[0]["calls"] / args.rows for name, runs in sides.items()}
    full = sides["this tree"][0]["full_rows"]
    print(f"rows {args.rows}, fully probed {full}, {args.repeats} repeats each, sides alternating (medians)")
    for name in sides:
        print(f"{name:>10}: {per_row[name] * 1e6:8.1f} us/row, {calls[name]:.2f} scorer calls/row")
    ratio = per_row["this tree"] / per_row["baseline"]
    print(f"ratio: {ratio:.2f}x per row, {calls['this tree'] / calls['baseline']:.2f}x scorer calls (target <= 2x)")
    from flash_mcp.domain.envtest.probes import sampled

    probed = sum(sampled(i, PROJECTED_ROWS) for i in range(PROJECTED_ROWS))
    projected = per_row["this tree"] * PROJECTED_ROWS
    print(
        f"{PROJECTED_ROWS:,} rows: {probed} fully probed (the rest get the cheap probes), projected child + server "
        f"{projected:.0f}s of the {TIME_LIMIT_S:.0f}s limit (one lane; two lanes split it)"
    )


if __name__ == "__main__":
    main()
