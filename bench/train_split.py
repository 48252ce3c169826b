"""Local GRPO throughput: the trainer with its environment in a sandboxed worker over a pipe (the split: one render
request for the rows, one score request per reward call) against main's in-process path (environment loaded in the
trainer, each completion scored by a direct call: reproduced inline below as `InProcess`, the same interface), on
the same spec, rows and tiny model. Each repeat is a fresh Python process per side (imports, model and environment
load included); sides alternate, medians compared. Also the seconds spent in reward calls, both ways.
Target: ratio >= 0.9.

    python bench/train_split.py [--rows 16] [--steps 4] [--group 4] [--tokens 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_setup import alternate, tiny_local_setup  # noqa: E402


class InProcess:
    """main's trainer-side environment: loaded in this process, every completion scored by a direct call."""

    broken = None

    def request(self, op: str, **job: Any) -> None:
        self.job = job

    def reply(self) -> dict[str, Any]:
        from flash_mcp import runtime

        self.env, examples, info = runtime.load({"entrypoint": self.job["entrypoint"], "params": self.job["params"]})
        self.examples = {f"train:{e.id}": e for e in examples}
        return {"rows": list(self.examples), "multi_turn": info["multi_turn"], "ceiling": None}

    def render(self, ids: list[str]) -> list[list[dict]]:
        from flash_mcp import runtime

        return [runtime.prompt(self.env, self.examples[row]) for row in ids]

    def score(self, pairs: list[tuple[str, str]]) -> list[Any]:
        from flash_mcp.runtime.worker import Scored

        out = []
        for row, text in pairs:
            example = self.examples[row]
            result = self.env.score_response(example, self.env.normalize_response_text(example, text))
            out.append(Scored(float(result.score), None, None))
        return out

    def close(self) -> None:
        pass


def train_side(side: str, run_dir: Path, home: Path) -> None:
    """One run of the real trainer (jobs/trainer/train.py) with the environment in process or in a worker."""
    from flash_mcp.domain.runs.rundir import read_json
    from flash_mcp.jobs.trainer import rows
    from flash_mcp.jobs.trainer.train import train
    from flash_mcp.runtime.worker import WorkerClient
    from flash_mcp.sandbox import kill_tree, launch_worker, remove_scratch

    spent = [0.0]
    score = rows.Rows.score

    def timed(self, pairs):
        started = time.perf_counter()
        try:
            return score(self, pairs)
        finally:
            spent[0] += time.perf_counter() - started

    rows.Rows.score = timed
    job = read_json(run_dir / "job.json")
    worker = None
    if side == "split":
        worker = launch_worker(home, Path(job["entrypoint"]).parent, limits="training")
        env: Any = WorkerClient(worker.to_worker, worker.from_worker)
    else:
        env = InProcess()
    try:
        outcome = train(run_dir, job, env)
        assert outcome["state"] == "done", outcome
    finally:
        env.close()
        if worker is not None:
            kill_tree(worker.process)
            remove_scratch(worker.scratch)
    (run_dir / "reward_s").write_text(str(spent[0]))


def prepare(root: Path, rows: int, steps: int, group: int, tokens: int) -> tuple[Path, Path]:
    """A pushed starter project and a run directory template (job.json as the local plane writes it)."""
    import anyio
    from mcp import Client

    from flash_mcp.core.settings import ServerSettings
    from flash_mcp.domain.runs.rundir import write_json
    from flash_mcp.planes.local.plane import LocalPlane
    from flash_mcp.server import build_server

    model, home, workspace = tiny_local_setup(root)

    async def push() -> str:
        async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
            await client.call_tool("setup_project", {"directory": "p"})
            train = [{"input": f"What is {i % 50} + {i % 7}?", "output": str(i % 50 + i % 7)} for i in range(rows)]
            (workspace / "p" / "dataset" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
            pushed = await client.call_tool("push_environment", {"name": "bench", "directory": "p"})
            return pushed.structured_content["environment_id"]

    package = Path(LocalPlane(home).pushed(anyio.run(push)).package)
    knobs = {"max_examples": rows, "prompts_per_step": 4, "group_size": group, "max_completion_tokens": tokens,
             "max_steps": steps, "learning_rate": 0.001, "save_every": steps}  # fmt: skip
    spec = {"algorithm": "grpo", "model": "tiny", "seed": 42, "train": knobs,
            "environment": {"id": "local/default/bench", "params": {}}}  # fmt: skip
    template = root / "template"
    template.mkdir()
    write_json(template / "job.json", {"run_dir": "", "spec": spec, "entrypoint": str(package / "environment.py"),
                                       "model_path": str(model), "init_adapter_path": None})  # fmt: skip
    return template, home


def run_side(side: str, template: Path, home: Path, scratch: Path, repeat: int) -> tuple[float, float]:
    from flash_mcp.domain.runs.rundir import read_json, write_json

    run_dir = scratch / f"{side}-{repeat}"
    shutil.copytree(template, run_dir)
    write_json(run_dir / "job.json", {**read_json(run_dir / "job.json"), "run_dir": str(run_dir)})
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, f"--{side}", str(run_dir), str(home)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started, float((run_dir / "reward_s").read_text())


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] in ("--inprocess", "--split"):
        train_side(sys.argv[1][2:], Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        template, home = prepare(Path(scratch), args.rows, args.steps, args.group, args.tokens)
        sides = {side: partial(run_side, side, template, home, Path(scratch)) for side in ("inprocess", "split")}
        times = alternate(sides, args.repeats)
    wall = {side: statistics.median(t for t, _ in runs) for side, runs in times.items()}
    reward = {side: statistics.median(r for _, r in runs) for side, runs in times.items()}
    print(f"GRPO: {args.steps} steps x 4 prompts x {args.group} completions of {args.tokens} tokens, {args.rows} rows")
    for side in times:
        print(f"{side:10} s per run      : {', '.join(f'{t:.1f}' for t, _ in times[side])}")
        print(f"{side:10} s in rewards   : {', '.join(f'{r:.3f}' for _, r in times[side])}")
    print(f"reward s per run (median)    : in-process {reward['inprocess']:.3f} / split {reward['split']:.3f}")
    print(f"ratio (in-process / split)   : {wall['inprocess'] / wall['split']:.2f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
