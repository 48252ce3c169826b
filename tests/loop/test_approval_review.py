"""A proposal shows the whole request — the run as submitted, the overrides as a diff, the data by digest —
and approval refuses when any of it changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.domain.approval.store import ApprovalStore
from tests.conftest import PROJECT, call

pytestmark = pytest.mark.anyio
OVERRIDES = {"train.max_steps": 7, "train.learning_rate": 0.0005}


@pytest.fixture
def local_runs_need_approval(isolated_home: Path) -> Path:
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text('[approval]\nmode = "always"\nlocal_runs = true\n', encoding="utf-8")
    return isolated_home


def cli(*args: str, home: Path, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flash_mcp", *args], input=stdin, capture_output=True, text=True, timeout=120,
        env={**os.environ, "FLASH_MCP_HOME": str(home)},
    )  # fmt: skip


async def pushed_with_outside_package_data(client: Client, workspace: Path) -> str:
    """A project whose config trains on a data file the package does not carry (a dot-folder)."""
    await call(client, "setup_project", directory="p", project=PROJECT)
    rows = [{"input": f"What is {i} + 1?", "output": str(i + 1)} for i in range(6)]
    await call(client, "append_dataset_rows", path="p/.data/train.jsonl", rows=rows)
    await call(
        client, "edit_config", config="p/configs/sft.toml", set={"environment.params.dataset_path": ".data/train.jsonl"}
    )
    await call(client, "push_environment", name="starter", directory="p")
    return "p/configs/sft.toml"


async def test_a_proposal_shows_overrides_diff_data_and_the_run(
    client: Client, workspace: Path, local_runs_need_approval: Path
) -> None:
    config = await pushed_with_outside_package_data(client, workspace)
    launched = await call(client, "launch_training", config=config, overrides=OVERRIDES)
    proposal = launched["proposal"]
    assert launched["status"] == "awaiting_approval"
    assert proposal["overrides"] == OVERRIDES
    assert "+max_steps = 7" in proposal["config_diff"] and "+learning_rate = 0.0005" in proposal["config_diff"]
    [data] = proposal["data"]
    digest = __import__("hashlib").sha256((workspace / "p/.data/train.jsonl").read_bytes()).hexdigest()
    assert data == {"path": "p/.data/train.jsonl", "sha256": digest, "bytes": data["bytes"]}
    assert proposal["run"]["train"]["max_steps"] == 7 and proposal["run"]["train"]["learning_rate"] == 0.0005
    resource = await client.read_resource(f"flash://proposals/{proposal['id']}")
    assert json.loads(resource.contents[0].text)["overrides"] == OVERRIDES

    for shown in (cli("proposals", home=local_runs_need_approval).stdout,
                  cli("approve", proposal["id"], home=local_runs_need_approval, stdin="n\n").stdout):  # fmt: skip
        assert '"train.max_steps": 7' in shown and "+max_steps = 7" in shown
        assert f"p/.data/train.jsonl sha256 {digest[:16]}" in shown and '"max_steps": 7' in shown


async def test_approval_refuses_when_the_data_changed(
    client: Client, workspace: Path, local_runs_need_approval: Path
) -> None:
    config = await pushed_with_outside_package_data(client, workspace)
    launched = await call(client, "launch_training", config=config, overrides=OVERRIDES)
    proposal_id = launched["proposal"]["id"]
    await call(client, "append_dataset_rows", path="p/.data/train.jsonl", rows=[{"input": "sneaked in", "output": "1"}])
    refused = cli("approve", proposal_id, "--yes", home=local_runs_need_approval)
    assert refused.returncode == 1 and "p/.data/train.jsonl changed since the proposal" in refused.stderr
    assert ApprovalStore(local_runs_need_approval).get(proposal_id).status == "refused"
    runs = await call(client, "list_runs")
    assert runs["runs"] == []


async def test_the_elicitation_question_shows_the_same_request(
    settings, workspace: Path, local_runs_need_approval: Path
) -> None:
    from mcp.types import ElicitResult

    from flash_mcp.server import build_server

    asked: list[str] = []

    async def human(context, params):
        asked.append(params.message)
        return ElicitResult(action="decline")

    async with Client(build_server(settings), elicitation_callback=human) as client:
        config = await pushed_with_outside_package_data(client, workspace)
        result = await client.call_tool("launch_training", {"config": config, "overrides": OVERRIDES})
    assert result.is_error and asked
    assert '"train.max_steps": 7' in asked[0] and "+max_steps = 7" in asked[0]
    assert "p/.data/train.jsonl sha256" in asked[0] and "run as submitted" in asked[0]
