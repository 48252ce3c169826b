"""A job for the fork server's tests: `python -P -m tests.sandbox.probe_job JOB_DIR [FD…]`.

It writes what it sees to JOB_DIR/facts.json: its environment, descriptors and draws, whether torch was already
loaded, and what happened when it wrote through paths libraries cached at import or reached for what the sandbox
withholds (JOB_DIR/probe.json names those, and what to import first). It writes a line to its first FD; with
`hold`, it then reads its last FD until EOF and writes JOB_DIR/released.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


def _attempt(action: Callable[[], object]) -> str:
    try:
        action()
    except OSError as exc:
        return f"refused: {type(exc).__name__}"
    return "allowed"


def _write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("written", encoding="utf-8")


def main() -> None:
    job_dir = Path(sys.argv[1])
    passed = [int(fd) for fd in sys.argv[2:]]
    plan = json.loads((job_dir / "probe.json").read_text(encoding="utf-8"))
    torch_loaded = "torch" in sys.modules
    forbidden = plan.get("forbidden", [])
    if plan.get("imports"):
        exec(plan["imports"], {})  # what a trainer imports, for bench/job_start.py
    import huggingface_hub.constants as hub

    facts = {
        "torch_loaded": torch_loaded,
        "env": dict(os.environ),
        "argv": sys.argv[1:],
        "draw": random.random(),
        "descriptors": sorted(int(fd) for fd in os.listdir("/proc/self/fd") if int(fd) > 2),
        "hub_cache": _attempt(lambda: _write(Path(hub.HF_HOME) / "probe")),
        "tempdir": _attempt(lambda: _write(Path(tempfile.gettempdir()) / "probe-tmp")),
        "reads": {path: _attempt(lambda path=path: os.listdir(path)) for path in forbidden},
        "writes": {path: _attempt(lambda path=path: _write(Path(path) / "probe")) for path in forbidden},
    }
    if passed:
        os.write(passed[0], b"through the descriptor it was passed\n")
    (job_dir / "facts.json").write_text(json.dumps(facts), encoding="utf-8")
    if plan.get("hold"):
        while os.read(passed[-1], 4096):
            pass
        (job_dir / "released").write_text("released", encoding="utf-8")
    sys.exit(plan.get("exit", 0))


if __name__ == "__main__":
    main()
