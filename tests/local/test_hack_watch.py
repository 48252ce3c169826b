"""A local GRPO run whose reward pays every completion is flagged while it trains and, with the human's
`[watch] cancel_on_hack = true`, cancelled by the run watch: get_run says so with evidence samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call
from tests.local.conftest import TINY_GRPO, wait_for_end

pytestmark = pytest.mark.anyio
PAYS_ANYTHING = (
    "        return RewardResult(score=1.0)  # pays every completion: the policy is paid for whatever it writes\n"
)


async def pushed_with_reward(client: Client, workspace: Path, reward_line: str) -> list[dict]:
    """The starter project on 8 arithmetic rows, its exact-match reward replaced by `reward_line`, pushed."""
    await call(client, "setup_project", directory="p", project=PROJECT)
    rows = [{"input": f"What is {i} + 1?", "output": str(i + 1)} for i in range(8)]
    await call(client, "append_dataset_rows", path="p/dataset/train.jsonl", rows=rows)
    source = (workspace / "p" / "environment.py").read_text(encoding="utf-8")
    source = source.replace("        return exact_match_reward(example, response_text)\n", reward_line)
    await call(client, "write_project_file", path="p/environment.py", content=source)
    await call(client, "push_environment", name="starter", directory="p")
    return rows


async def test_a_grpo_run_whose_reward_pays_anything_is_flagged_and_cancelled_while_it_runs(
    settings: ServerSettings, isolated_home: Path, workspace: Path
) -> None:
    toml = isolated_home / "settings.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n[watch]\ncancel_on_hack = true\n", encoding="utf-8")
    async with Client(build_server(settings)) as client:
        await pushed_with_reward(client, workspace, PAYS_ANYTHING)
        launched = await call(
            client, "launch_training", config="p/configs/rl.toml", overrides={**TINY_GRPO, "train.max_steps": 40}
        )
        run = await wait_for_end(client, launched["run_id"])
    assert run["state"] == "cancelled" and (run["step"] or 0) < 40, "cancelled while it ran, not at its end"
    [hack] = [w for w in run["warnings"] if w.startswith("reward hacking suspected:") and "Evidence" in w]
    assert "earned the top reward" in hack and "Evidence: step" in hack
    assert any("cancel_on_hack = true" in w for w in run["warnings"])
    audit = [json.loads(line) for line in (isolated_home / "audit.jsonl").read_text().splitlines()]
    assert any(e["event"] == "cancel" and e.get("how") == "hack watch" for e in audit)


PAYS_LENGTH = "        return RewardResult(score=min(1.0, len(response_text) / 12))  # pays length, not the answer\n"


async def test_a_grpo_run_paid_for_length_not_the_answer_is_flagged_against_the_rows_own_answer(
    settings: ServerSettings, workspace: Path
) -> None:
    async with Client(build_server(settings)) as client:
        rows = await pushed_with_reward(client, workspace, PAYS_LENGTH)
        launched = await call(
            client, "launch_training", config="p/configs/rl.toml",
            overrides={**TINY_GRPO, "train.max_steps": 4, "train.max_completion_tokens": 16},
        )  # fmt: skip
        run = await wait_for_end(client, launched["run_id"])
        samples = await call(client, "get_run_samples", run_id=launched["run_id"])
    references = [s for s in samples["samples"] if s.get("kind") == "reference"]
    assert references and all(s["completion"] in {r["output"] for r in rows} for s in references)
    assert all(s["reward"] < 0.5 for s in references), "the row's own answer is short: the length reward barely pays it"
    [hack] = [w for w in run["warnings"] if w.startswith("reward hacking suspected:")]
    assert "outscored their row's own answer without containing it" in hack, hack
