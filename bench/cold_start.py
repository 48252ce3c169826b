"""Cold start to the first `tools/list` over stdio: flash-mcp beside mcp-server-git, in one run.

    python3 -m venv /tmp/git-anchor && /tmp/git-anchor/bin/pip install mcp-server-git   # the anchor, own venv
    .venv/bin/python bench/cold_start.py [--repeats 7] --git-server /tmp/git-anchor/bin/mcp-server-git

Each sample spawns the server, sends `initialize`, `notifications/initialized` and `tools/list` as JSON lines,
and stops the clock at the `tools/list` answer. One unmeasured start of each warms the OS page cache and the
bytecode cache (as `pip install` compiles the anchor's, even under PYTHONDONTWRITEBYTECODE, which would
otherwise leave a source checkout compiling every module on every start). The servers alternate (so drift
hits all), and the medians and their ratio are printed. Target: flash-mcp no slower than mcp-server-git
(ratio <= 1.0).

flash-mcp answers `tools/list` from the list its previous start saved in the state directory (keyed by its
sources and versions; `flash_mcp/surface/server/tools_cache.py`), the way Python reuses bytecode, or on a first
start from the list the package ships under the same key (`tools-list.json`). The first start after an install
is measured too, each sample with a new state directory, and printed as `flash-mcp (first)` (a checkout edited
since the shipped list was written builds it there instead: about 0.45 s more).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HANDSHAKE = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def first_tools_list(command: list[str], env: dict[str, str], cpu: list[float] | None = None) -> tuple[float, int]:
    """Seconds from spawn to the `tools/list` answer, and how many tools it listed; the server's CPU seconds
    (to its exit, right after the answer) are appended to `cpu`: on a shared machine they drift less."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    assert process.stdin and process.stdout
    try:
        process.stdin.write("".join(json.dumps(message) + "\n" for message in HANDSHAKE))
        process.stdin.flush()
        for line in process.stdout:
            message = json.loads(line)
            if message.get("id") == 2:
                return time.perf_counter() - started, len(message["result"]["tools"])
        raise RuntimeError(f"{command[0]} closed stdout before answering tools/list")
    finally:
        process.stdin.close()
        process.terminate()
        process.wait(timeout=30)
        if cpu is not None:
            cpu.append(_children_cpu() - cpu_before)


def _git_server(explicit: str | None) -> str:
    found = (
        explicit
        or shutil.which("mcp-server-git", path=str(Path(sys.executable).parent))
        or shutil.which("mcp-server-git")
    )
    if not found:
        sys.exit("mcp-server-git not found: `.venv/bin/pip install mcp-server-git` or pass --git-server PATH")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--git-server", help="the mcp-server-git executable (default: beside this Python, or PATH)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "ws").mkdir()
        subprocess.run(["git", "init", "-q", str(root / "ws")], check=True)
        env = {**os.environ, "FLASH_MCP_HOME": str(root / "state")}
        flash = [sys.executable, "-m", "flash_mcp", "serve", "--workspace", str(root / "ws")]
        servers = {
            "flash-mcp": flash,
            "flash-mcp (first)": flash,
            "mcp-server-git": [_git_server(args.git_server), "--repository", str(root / "ws")],
        }
        warm = {key: value for key, value in env.items() if key != "PYTHONDONTWRITEBYTECODE"}
        for command in servers.values():  # warm the page and bytecode caches once; not measured
            first_tools_list(command, warm)
        samples: dict[str, list[float]] = {name: [] for name in servers}
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        tools: dict[str, int] = {}
        for repeat in range(args.repeats):
            for name, command in servers.items():
                fresh = {"FLASH_MCP_HOME": str(root / f"first-{repeat}")} if name.endswith("(first)") else {}
                seconds, tools[name] = first_tools_list(command, {**env, **fresh}, cpu[name])
                samples[name].append(seconds)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, values in samples.items():
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:<18} median {medians[name]:.3f} s  ({tools[name]} tools)  samples: {shown}")
    anchor = medians["mcp-server-git"]
    print(f"ratio flash-mcp / mcp-server-git = {medians['flash-mcp'] / anchor:.2f}")
    print(f"ratio flash-mcp (first) / mcp-server-git = {medians['flash-mcp (first)'] / anchor:.2f}")
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name in ("flash-mcp", "flash-mcp (first)"):
        print(
            f"CPU-time ratio {name} / mcp-server-git = {cpu_medians[name] / cpu_medians['mcp-server-git']:.2f} "
            f"({cpu_medians[name]:.2f} s / {cpu_medians['mcp-server-git']:.2f} s)"
        )


if __name__ == "__main__":
    main()
