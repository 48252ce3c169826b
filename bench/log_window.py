"""Reading the last page of a 1 GB run log through the resource against reading the whole file.

python bench/log_window.py [--gigabytes 1]
"""

from __future__ import annotations

import argparse
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


async def through_resource(root: Path) -> tuple[float, int]:
    settings = ServerSettings.create(root / "ws", home=root / "home")
    async with Client(build_server(settings)) as client:
        started = time.perf_counter()
        result = await client.read_resource(f"flash://runs/{RUN_ID}/logs")
        elapsed = time.perf_counter() - started
    return elapsed, len(result.contents[0].text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
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
        page_time, page_chars = anyio.run(through_resource, root)
        started = time.perf_counter()
        whole = (run_dir / "log").read_bytes()
        whole_time = time.perf_counter() - started
    print(f"log size                     : {len(whole) / (1 << 30):.2f} GiB")
    print(f"last page via the resource   : {page_time * 1000:.1f} ms ({page_chars} chars)")
    print(f"whole file read              : {whole_time * 1000:.1f} ms")
    print(f"ratio (page / whole)         : {page_time / whole_time:.4f}")


if __name__ == "__main__":
    main()
