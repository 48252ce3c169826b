"""Spend safety on the flash plane: elicitation, proposals, the CLI, budgets, idempotency, the audit trail."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.types import ElicitResult

from flash_mcp.core.advice import human_command
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.server import build_server
from tests.conftest import call, call_error
from tests.flashplane.conftest import ControlPlane
from tests.flashplane.test_flash_plane import rl_project, runs_on_the_plane

pytestmark = pytest.mark.anyio


@pytest.fixture
def strict(flash_settings: ServerSettings) -> ServerSettings:
    """The defaults a human gets: every paid run needs approval."""
    (flash_settings.home / "settings.toml").write_text("[budget]\nmax_run_usd = 50.0\n", encoding="utf-8")
    return flash_settings


def client_for(control_plane: ControlPlane, settings: ServerSettings, human=None, mode: str = "legacy") -> Client:
    server = build_server(settings, plane_factory=lambda: control_plane.plane(settings.home))
    return Client(server, mode=mode, elicitation_callback=human) if human else Client(server, mode=mode)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_the_human_accepts_through_elicitation(control_plane, strict, mode) -> None:
    asked: list[str] = []

    async def human(context, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"approve": True})

    async with client_for(control_plane, strict, human, mode) as client:
        config = await rl_project(client)
        launched = await call(client, "launch_training", config=config)
    assert launched["status"] == "launched" and launched["approved_by"] == "elicitation"
    assert "Quote $" in asked[0] and config in asked[0] and "github:acme/envs@main:math" in asked[0]
    assert [run["run_id"] for run in runs_on_the_plane(control_plane)] == [launched["run_id"]]
    events = [e["event"] for e in ApprovalStore(strict.home).audit_events()]
    assert events == ["approve", "submit"]
    approve = ApprovalStore(strict.home).audit_events()[0]
    assert approve["how"] == "elicitation" and approve["quote_usd"] == launched["quote_usd"]
    await _cancel_all(control_plane, strict)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_decline_or_cancel_launches_nothing(control_plane, strict, mode, action) -> None:
    async def human(context, params):
        return ElicitResult(action=action)

    async with client_for(control_plane, strict, human, mode) as client:
        config = await rl_project(client)
        error = await call_error(client, "launch_training", config=config)
    assert "declined" in error and "nothing was submitted" in error
    assert runs_on_the_plane(control_plane) == []


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_without_elicitation_a_proposal_waits_and_repeats_return_it(control_plane, strict, mode) -> None:
    async with client_for(control_plane, strict, mode=mode) as client:
        config = await rl_project(client)
        first = await call(client, "launch_training", config=config)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for _ in range(5):
                    group.start_soon(functools.partial(call, client, "launch_training", config=config))
        again = await call(client, "launch_training", config=config)
        listed = await call(client, "list_proposals", status="pending")
        resource = await client.read_resource(f"flash://proposals/{first['proposal']['id']}")
    assert first["status"] == "awaiting_approval"
    assert first["approve_command"] == human_command("approve", first["proposal"]["id"])
    assert any(line.startswith("unguarded: an agent with a shell as this user can approve") for line in first["next"])
    assert Path(first["approve_command"].split()[0]).is_file()  # the installed script, by its real path
    assert again["proposal"]["id"] == first["proposal"]["id"]
    assert [p["id"] for p in listed["proposals"]] == [first["proposal"]["id"]]
    assert json.loads(resource.contents[0].text)["status"] == "pending"
    assert runs_on_the_plane(control_plane) == []


def cli(*args: str, home: Path, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flash_mcp", *args], input=stdin, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "FLASH_MCP_HOME": str(home)},
    )  # fmt: skip


async def _proposal(control_plane, settings) -> tuple[str, str]:
    async with client_for(control_plane, settings) as client:
        config = await rl_project(client)
        launched = await call(client, "launch_training", config=config)
    return launched["proposal"]["id"], config


async def test_the_cli_approves_once_and_the_audit_says_who(control_plane, strict, monkeypatch) -> None:
    import flash_mcp.planes

    proposal_id, _ = await _proposal(control_plane, strict)
    listed = cli("proposals", home=strict.home)
    assert proposal_id in listed.stdout and "quote $" in listed.stdout
    said_no = cli("approve", proposal_id, home=strict.home, stdin="n\n")
    assert said_no.returncode == 1 and "nothing was submitted" in said_no.stdout
    assert "unguarded: an agent with a shell as this user can approve runs" in said_no.stdout
    monkeypatch.setattr(flash_mcp.planes, "make_plane", lambda settings: control_plane.plane(settings.home))
    from flash_mcp.cli import main

    assert await anyio.to_thread.run_sync(lambda: main(["approve", proposal_id, "--yes"])) == 0
    [run] = runs_on_the_plane(control_plane)
    again = cli("approve", proposal_id, "--yes", home=strict.home)
    assert again.returncode == 1 and "approved at most once" in again.stderr
    assert len(runs_on_the_plane(control_plane)) == 1
    events = ApprovalStore(strict.home).audit_events()
    assert [e["event"] for e in events] == ["propose", "approve", "submit"]
    assert events[1]["how"] == "cli" and events[1]["client"]["name"] == "flash-mcp approve"
    assert events[2]["run_id"] == run["run_id"]
    await _cancel_all(control_plane, strict)


async def test_a_config_edited_after_the_proposal_is_refused(control_plane, strict) -> None:
    proposal_id, config = await _proposal(control_plane, strict)
    path = strict.workspace.root / config
    path.write_text(path.read_text() + "\n# edited after the proposal\n")
    refused = cli("approve", proposal_id, "--yes", home=strict.home)
    assert refused.returncode == 1 and "changed since the proposal" in refused.stderr
    assert runs_on_the_plane(control_plane) == []
    assert cli("approve", proposal_id, "--yes", home=strict.home).returncode == 1


async def test_deny_consumes_the_proposal(control_plane, strict) -> None:
    proposal_id, _ = await _proposal(control_plane, strict)
    denied = cli("deny", proposal_id, home=strict.home)
    assert denied.returncode == 0 and f"denied {proposal_id}" in denied.stdout
    assert cli("approve", proposal_id, "--yes", home=strict.home).returncode == 1
    assert runs_on_the_plane(control_plane) == []


async def test_a_launch_over_max_run_usd_is_refused_with_the_setting(control_plane, flash_settings) -> None:
    (flash_settings.home / "settings.toml").write_text(
        '[approval]\nmode = "above_threshold"\nauto_approve_usd = 1000.0\n[budget]\nmax_run_usd = 0.1\n'
    )
    async with client_for(control_plane, flash_settings) as client:
        config = await rl_project(client)
        error = await call_error(client, "launch_training", config=config)
    assert "over max_run_usd $0.10" in error and "settings.toml [budget]" in error and "nothing was launched" in error
    assert runs_on_the_plane(control_plane) == []


async def test_the_daily_budget_counts_earlier_runs(control_plane, flash_settings) -> None:
    (flash_settings.home / "settings.toml").write_text(
        '[approval]\nmode = "above_threshold"\nauto_approve_usd = 1000.0\n[budget]\nmax_run_usd = 100.0\n'
        "daily_usd = 0.3\nmax_concurrent_runs = 10\n"
    )
    async with client_for(control_plane, flash_settings) as client:
        config = await rl_project(client)
        first = await call(client, "launch_training", config=config)
        await call(client, "edit_config", config=config, set={"train.max_steps": 5})
        error = await call_error(client, "launch_training", config=config)
    assert first["approved_by"] == "policy" and "over daily_usd $0.30" in error
    assert len(runs_on_the_plane(control_plane)) == 1
    await _cancel_all(control_plane, flash_settings)


async def test_no_tool_approves_and_settings_are_out_of_reach(control_plane, strict) -> None:
    async with client_for(control_plane, strict) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert not {name for name in names if "approve" in name or "budget" in name or "setting" in name}
    home_as_workspace = ServerSettings.create(strict.home.parent, home=strict.home, plane="flash")
    async with client_for(control_plane, home_as_workspace) as client:
        for path in ("state/settings.toml", "state/approvals.db", "state/audit.jsonl"):
            await call_error(client, "write_project_file", path=path, content="[budget]\nmax_run_usd = 1e9\n")
    assert "1e9" not in (strict.home / "settings.toml").read_text()


async def _cancel_all(control_plane, settings) -> None:
    async with client_for(control_plane, settings) as client:
        for run in runs_on_the_plane(control_plane):
            if run["state"] not in ("cancelled", "done", "failed"):
                await call(client, "cancel_run", run_id=run["run_id"])
