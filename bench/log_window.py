"""Reading the last page of a 1 GB run log through the resource on a warm server, against reading the whole file.

python bench/log_window.py [--gigabytes 1] [--repeats 7]

The first request on a fresh server also pays for its one-time setup (the surface's registration): it is timed
and printed beside the page read, which is measured on the warm server (the median of `--repeats` reads,
alternated with whole-file reads so drift hits both).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flash_mcp.core.settings import ServerSettings
from flash_mcp.planes.local.store import Store
from flash_mcp.server import build_server

RUN_ID = "local-0-benchlog"


def write_log(path: Path, size: int) -> None:
    line = b"[00:00:00] worker: stage=rl_step step=1 reward=0.5 loss=0.1 grad_norm=0.2 kl=0.01\n"
    block = line * ((1 << 20) // len(line) + 1)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            handle.write(block)
            written += len(block)


async def through_resource(root: Path, repeats: int, log: Path) -> dict[str, list[float] | float | int]:
    """The first request's time, then page reads on the warm server alternated with whole-file reads."""
    settings = ServerSettings.create(root / "ws", home=root / "home")
    uri = f"flash://runs/{RUN_ID}/logs"
    async with Client(build_server(settings)) as client:
        started = time.perf_counter()
        result = await client.read_resource(uri)
        first = time.perf_counter() - started
        pages, wholes = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            result = await client.read_resource(uri)
            pages.append(time.perf_counter() - started)
            started = time.perf_counter()
            size = len(log.read_bytes())
            wholes.append(time.perf_counter() - started)
    return {"first": first, "pages": pages, "wholes": wholes, "chars": len(result.contents[0].text), "size": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "ws").mkdir()
        run_dir = root / "home" / "runs" / RUN_ID
        run_dir.mkdir(parents=True)
        write_log(run_dir / "log", int(args.gigabytes * (1 << 30)))
        Store(root / "home" / "state.db").add_run(
            {"run_id": RUN_ID, "state": "done", "algorithm": "grpo", "model": "bench", "created_at": 0.0,
             "updated_at": 0.0, "finished_at": 0.0, "run_dir": str(run_dir)}
        )  # fmt: skip
        measured = anyio.run(through_resource, root, args.repeats, run_dir / "log")
    page, whole = statistics.median(measured["pages"]), statistics.median(measured["wholes"])
    print(f"log size                          : {measured['size'] / (1 << 30):.2f} GiB")
    print(f"first request (one-time setup)    : {measured['first'] * 1000:.1f} ms")
    print(f"last page, warm server (median)   : {page * 1000:.2f} ms ({measured['chars']} chars)")
    print(f"whole file read (median, baseline): {whole * 1000:.1f} ms")
    print(f"ratio (warm page / whole file)    : {page / whole:.4f}")


if __name__ == "__main__":
    main()
