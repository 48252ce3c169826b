"""Shared by the local-plane benchmarks: a tiny model, and a state directory that trains it in place of any model."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from flash_mcp.planes.local.models import build_tiny_model

T = TypeVar("T")


def alternate(sides: dict[str, Callable[[int], T]], repeats: int) -> dict[str, list[T]]:
    """Run every side once per repeat, in an order that flips each repeat (so drift hits all); results by side."""
    results: dict[str, list[T]] = {name: [] for name in sides}
    for repeat in range(repeats):
        order = list(sides) if repeat % 2 == 0 else list(reversed(sides))
        for name in order:
            results[name].append(sides[name](repeat))
    return results


def tiny_local_setup(root: Path) -> tuple[Path, Path, Path]:
    """Build the tiny model under `root` and return (model, home, workspace), the home set to stand it in."""
    model = build_tiny_model(root / "tiny")
    home, workspace = root / "home", root / "ws"
    home.mkdir()
    workspace.mkdir()
    (home / "settings.toml").write_text(f'[local]\nstand_in_model = "{model}"\n', encoding="utf-8")
    return model, home, workspace


async def train_and_wait(client: Any, config: str, overrides: dict[str, Any]) -> tuple[str, float]:
    """Launch `config` through MCP, wait for the run to finish, and return (run id, seconds); the run must be done."""
    started = time.perf_counter()
    run = await client.call_tool("launch_training", {"config": config, "overrides": overrides})
    run_id = run.structured_content["run_id"]
    while True:
        view = (await client.call_tool("get_run", {"run_id": run_id, "wait_s": 60})).structured_content
        if view["state"] in ("done", "failed", "cancelled"):
            break
    elapsed = time.perf_counter() - started
    assert view["state"] == "done", view
    return run_id, elapsed
