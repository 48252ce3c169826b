"""Local evaluation throughput: the split (the evaluator generating, two sandboxed environment workers rendering
and scoring over pipes) against the single process it replaced (environment and model in one process: main's
flash_mcp/jobs/evaluator/run.py, reproduced inline below), on the same spec, rows and model. Each repeat is a
fresh Python process per side (imports, model and environment load included); sides alternate, medians
compared. Target: ratio >= 0.9.

    python bench/eval_split.py [--rows 200] [--max-tokens 16] [--repeats 3]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_setup import alternate, tiny_local_setup  # noqa: E402
from flash_mcp.domain.evaluation import record  # noqa: E402


def single_process(eval_dir: Path) -> None:
    """main's evaluator loop, environment and model in this one process (the baseline)."""
    from flash_mcp.jobs.evaluator.generate import generate, load_model, pick_device
    from flash_mcp.jobs.evaluator.inprocess import load_items, scored_row
    from flash_mcp.jobs.evaluator.run import DEFAULT_BATCH

    spec, job = record.read_spec(eval_dir), record.read_json(eval_dir / "job.json")
    items = load_items(spec, job)
    model, tokenizer = load_model(job["model_path"], None, pick_device())
    sampling = spec.sampling
    for number, start in enumerate(range(0, len(items), DEFAULT_BATCH)):
        chunk = items[start : start + DEFAULT_BATCH]
        answers = generate(model, tokenizer, [item.prompt for item in chunk], max_tokens=sampling.max_tokens,
                           temperature=sampling.temperature, samples=sampling.samples_per_row,
                           seed=sampling.seed + number)  # fmt: skip
        rows = [scored_row(item, k, a) for item, drawn in zip(chunk, answers, strict=True) for k, a in enumerate(drawn)]
        record.append_rows(eval_dir, rows)
        record.update_status(eval_dir, done=start + len(rows))


def split(eval_dir: Path, home: Path) -> None:
    """The new path: two workers launched as the local plane launches them, the evaluator's loop here."""
    from flash_mcp.jobs.evaluator.run import evaluate
    from flash_mcp.runtime.worker import WorkerClient
    from flash_mcp.sandbox import kill_tree, launch_worker, remove_scratch

    spec = record.read_spec(eval_dir)
    package = Path(record.read_json(eval_dir / "job.json")["entrypoint"]).parent
    workers = [launch_worker(home, package, limits="training") for _ in range(2)]
    clients = [WorkerClient(w.to_worker, w.from_worker) for w in workers]
    try:
        outcome = evaluate(eval_dir, *clients)
        assert outcome["state"] == "done" and spec is not None, outcome
    finally:
        for client, worker in zip(clients, workers, strict=True):
            client.close()
            kill_tree(worker.process)
            remove_scratch(worker.scratch)


def prepare(root: Path, rows: int, max_tokens: int) -> tuple[Path, Path]:
    """A pushed project and one evaluation directory (spec and job as the local plane writes them)."""
    import anyio
    from mcp import Client

    from flash_mcp.core.settings import ServerSettings
    from flash_mcp.planes.local.plane import LocalPlane
    from flash_mcp.server import build_server

    model, home, workspace = tiny_local_setup(root)

    async def push() -> str:
        async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
            await client.call_tool("setup_project", {"directory": "p"})
            held_out = [{"input": f"What is {i % 50} + {i % 7}?", "output": str(i % 50 + i % 7)} for i in range(rows)]
            (workspace / "p" / "dataset" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in held_out))
            pushed = await client.call_tool("push_environment", {"name": "bench", "directory": "p"})
            return pushed.structured_content["environment_id"]

    push_record = LocalPlane(home).pushed(anyio.run(push))
    package = Path(push_record.package)
    ids = [f"test:example_{i:06d}" for i in range(rows)]
    template = root / "template"
    spec = record.EvalSpec(
        eval_id="eval-bench", target="base", plane="local", config="p/configs/sft.toml", model="tiny",
        environment_id=push_record.environment_id, environment_digest=push_record.digest, split="test", row_ids=ids,
        sampling=record.Sampling(max_tokens=max_tokens), environment_params={"split": "test"},
    )  # fmt: skip
    record.write_spec(template, spec, seal=False)
    record.write_json(template / "job.json", {"entrypoint": str(package / "environment.py"),
                                              "params": {"split": "test"}, "model_path": str(model)})  # fmt: skip
    return template, home


def run_side(side: str, template: Path, home: Path, scratch: Path, repeat: int) -> float:
    eval_dir = scratch / f"{side}-{repeat}"
    shutil.copytree(template, eval_dir)
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, f"--{side}", str(eval_dir), str(home)], check=True)
    elapsed = time.perf_counter() - started
    rows, rejected = record.read_rows(eval_dir, record.read_spec(eval_dir))
    assert len(rows) == len(record.read_spec(eval_dir).row_ids) and not rejected
    return elapsed


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] in ("--single", "--split"):
        eval_dir, home = Path(sys.argv[2]), Path(sys.argv[3])
        single_process(eval_dir) if sys.argv[1] == "--single" else split(eval_dir, home)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        template, home = prepare(Path(scratch), args.rows, args.max_tokens)
        times = alternate(
            {side: partial(run_side, side, template, home, Path(scratch)) for side in ("single", "split")}, args.repeats
        )
    single, splitted = statistics.median(times["single"]), statistics.median(times["split"])
    print(f"rows x max_tokens            : {args.rows} x {args.max_tokens} (greedy)")
    print(f"single process, s per repeat : {', '.join(f'{t:.1f}' for t in times['single'])}")
    print(f"split, s per repeat          : {', '.join(f'{t:.1f}' for t in times['split'])}")
    print(f"rows/s (median) single/split : {args.rows / single:.1f} / {args.rows / splitted:.1f}")
    print(f"ratio (split / single)       : {single / splitted:.2f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
