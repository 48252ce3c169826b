"""Tokens an agent reads in a fixed scripted local loop: the result text as the server writes it now, beside the
same results rendered the old way (pretty-printed JSON of the structured content, every warning on every call,
which is what the SDK's default text block was), in one run.

    .venv/bin/python bench/agent_loop_tokens.py            # setup .. dry_run, then a tiny SFT run read back
    .venv/bin/python bench/agent_loop_tokens.py --no-train # stop before launch_training

Tokens are counted as characters / 4. The training steps need a stand-in model: the bench builds the tiny
one with `flash-mcp tiny-model` in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server

FAST_SFT = {"train.learning_rate": 0.01, "train.epochs": 3, "train.batch_size": 8}
POLLS = 12  # the planned steps of the SFT run below
ROWS = [{"input": f"What is {i} + 1?", "output": str(i + 1)} for i in range(30)]


@dataclass
class Reading:
    """What the agent read, call by call."""

    calls: list[tuple[str, int, int]] = field(default_factory=list)

    def add(self, tool: str, structured: Any, text: str) -> None:
        before = len(json.dumps(structured, indent=2, ensure_ascii=False)) // 4
        self.calls.append((tool, before, len(text) // 4))

    @property
    def before(self) -> int:
        return sum(before for _, before, _ in self.calls)

    @property
    def after(self) -> int:
        return sum(after for _, _, after in self.calls)

    def without_repeated_polls(self) -> Reading:
        """The same reading with only the first get_run: how many polls a run takes depends on the machine."""
        kept, polled = [], False
        for call in self.calls:
            if call[0] == "get_run" and polled:
                continue
            polled = polled or call[0] == "get_run"
            kept.append(call)
        return Reading(kept)

    def report(self) -> str:
        lines = [f"{'tool':<22}{'before':>8}{'after':>8}"]
        lines += [f"{tool:<22}{before:>8}{after:>8}" for tool, before, after in self.calls]
        lines.append(f"{'total':<22}{self.before:>8}{self.after:>8}   after/before = {self.after / self.before:.2f}")
        fixed = self.without_repeated_polls()
        if len(fixed.calls) < len(self.calls):
            lines.append(
                f"{'one get_run only':<22}{fixed.before:>8}{fixed.after:>8}   after/before = "
                f"{fixed.after / fixed.before:.2f}"
            )
        return "\n".join(lines)


async def _call(client: Client, reading: Reading, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    assert not result.is_error, text
    reading.add(tool, result.structured_content, text)
    return result.structured_content


async def scripted_loop(client: Client, *, train: bool) -> Reading:
    """setup_project -> files -> validate_config -> test_environment -> push -> dry_run [-> train and read]."""
    reading = Reading()
    await _call(client, reading, "setup_project", directory="p")
    await _call(client, reading, "list_project_files", directory="p")
    environment = await _call(client, reading, "read_project_file", path="p/environment.py")
    await _call(client, reading, "write_project_file", path="p/environment.py", content=environment["content"])
    await _call(client, reading, "append_dataset_rows", path="p/dataset/train.jsonl", rows=ROWS)
    await _call(client, reading, "read_dataset", path="p/dataset/train.jsonl", limit=10)
    await _call(client, reading, "validate_config", config="p/configs/sft.toml")
    await _call(client, reading, "check_project", directory="p", config="p/configs/sft.toml")
    await _call(client, reading, "test_environment", directory="p", config="p/configs/sft.toml")
    await _call(client, reading, "push_environment", name="starter", directory="p")
    await _call(client, reading, "validate_config", config="p/configs/sft.toml", overrides=FAST_SFT)
    await _call(client, reading, "dry_run", config="p/configs/sft.toml", overrides=FAST_SFT)
    await _call(client, reading, "estimate_cost", config="p/configs/sft.toml", overrides=FAST_SFT)
    if train:
        await _train_and_read(client, reading)
    return reading


async def _train_and_read(client: Client, reading: Reading) -> None:
    launched = await _call(client, reading, "launch_training", config="p/configs/sft.toml", overrides=FAST_SFT)
    run_id = launched["run_id"]
    # A fixed number of reads whatever the machine's speed: get_run(wait_s) once per planned step (it returns
    # on the next change), then until the run has ended.
    with anyio.fail_after(600):
        for _ in range(POLLS):
            run = await _call(client, reading, "get_run", run_id=run_id, wait_s=60)
        while run["state"] not in ("done", "failed", "cancelled"):
            run = await _call(client, reading, "get_run", run_id=run_id, wait_s=60)
    await _call(client, reading, "get_run_metrics", run_id=run_id)
    await _call(client, reading, "get_run_samples", run_id=run_id)
    await _call(client, reading, "list_checkpoints", run_id=run_id)
    await _call(client, reading, "read_run_logs", run_id=run_id, max_bytes=2000)
    await _call(client, reading, "list_runs")


async def measure(root: Path, *, train: bool) -> Reading:
    workspace, home = root / "ws", root / "state"
    workspace.mkdir()
    home.mkdir()
    if train:
        model = root / "tiny"
        subprocess.run([sys.executable, "-m", "flash_mcp", "tiny-model", str(model)], check=True, capture_output=True)
        (home / "settings.toml").write_text(f'[local]\nstand_in_model = "{model}"\n', encoding="utf-8")
    async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
        return await scripted_loop(client, train=train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-train", action="store_true", help="stop before launch_training")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reading = anyio.run(lambda: measure(Path(tmp), train=not args.no_train))
    print(reading.report())


if __name__ == "__main__":
    main()
