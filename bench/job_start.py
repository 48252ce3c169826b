"""A training or evaluation job's start: forked from the preloaded fork server against started cold, alternated.

Each side launches the same sandboxed job through `launch_job` (the trainer's and the evaluator's one entry): a
probe (`tests/sandbox/probe_job.py`) that imports what the trainer imports (transformers, peft, trl), writes what
it saw and exits. Cold is the job as it started before the fork server (`[sandbox] preload_jobs = false`: a fresh
interpreter importing torch); warm is the default. The clock runs from the launch to the job's end. The fork server
preloads before the first repeat, as it has by a server's second job. Medians over `--repeats`, and their ratio.

    python bench/job_start.py [--repeats 7]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flash_mcp.sandbox import launch_job, running, warm_up_jobs

ROOT = Path(__file__).resolve().parents[1]
PROBE = "tests.sandbox.probe_job"
IMPORTS = "from transformers import AutoModelForCausalLM; import peft; from trl import GRPOTrainer, SFTTrainer"


def one_job(home: Path, name: str, warm: bool) -> float:
    (home / "settings.toml").write_text(f"[sandbox]\npreload_jobs = {str(warm).lower()}\n", encoding="utf-8")
    job_dir = home / "runs" / name
    job_dir.mkdir(parents=True)
    (job_dir / "probe.json").write_text(json.dumps({"imports": IMPORTS}), encoding="utf-8")
    started = time.perf_counter()
    job = launch_job(home, PROBE, job_dir, [ROOT / "tests"])
    while running(job):
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    if not (job_dir / "facts.json").exists():
        raise SystemExit(f"the {name} job failed: {(job_dir / 'log').read_text()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "state"
        home.mkdir()
        os.environ["FLASH_MCP_HOME"] = str(home)
        if not warm_up_jobs(wait_s=300):
            raise SystemExit("the fork server did not preload")
        times: dict[str, list[float]] = {"cold": [], "warm": []}
        for repeat in range(args.repeats):
            for side in ("cold", "warm") if repeat % 2 == 0 else ("warm", "cold"):
                times[side].append(one_job(home, f"{side}-{repeat}", side == "warm"))
    cold, warm = (statistics.median(times[side]) for side in ("cold", "warm"))
    print(f"cold start (fresh interpreter): median {cold:.2f} s  {[round(t, 2) for t in times['cold']]}")
    print(f"warm start (fork server):       median {warm:.2f} s  {[round(t, 2) for t in times['warm']]}")
    print(f"warm / cold: {warm / cold:.2f}x the time ({cold / warm:.1f}x faster)")


if __name__ == "__main__":
    main()
