"""Money as the plane charges it: the paid path from a hosted push to a settled cost, the reconciled
ledger, the overrun watch, and the concurrency limit counted across servers and the flash CLI.

The hosted tests run the real control plane in hosted mode (tests/flashplane/hosted.py says what
stands in for the Freesolo backend, GitHub, Hugging Face and Modal); the others use the standalone one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import load_human_settings
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.loop.spend import Spend
from flash_mcp.server import build_server
from flash_mcp.surface.server.run_watch import RunWatcher
from tests.conftest import PROJECT, call, call_error
from tests.flashplane.conftest import AUTO_APPROVE, INTERNAL_KEY, MODEL, ControlPlane
from tests.flashplane.hosted import USER_KEY, HostedPlane, hosted_plane_fixture  # noqa: F401 - the fixture
from tests.flashplane.test_flash_plane import RL_STEPS, rl_project

pytestmark = pytest.mark.anyio
STRICT = "[budget]\nmax_run_usd = 50.0\n"  # the defaults a human gets: every paid run needs approval


@asynccontextmanager
async def connected(world: Any, settings: ServerSettings) -> AsyncIterator[Client]:
    server = build_server(settings, plane_factory=lambda: world.plane(settings.home))
    async with Client(server) as client:
        yield client


def raw(world: Any, method: str, path: str, key: str = USER_KEY, **body: Any) -> Any:
    """The control plane's HTTP API as the `flash` CLI calls it (the client is not closed: that closes the app)."""
    http = httpx.Client(transport=world.transport, base_url="http://flash.test")
    return http.request(method, path, headers={"Authorization": f"Bearer {key}"}, json=body or None).json()


def paid_runs(world: Any) -> list[str]:
    """Run ids the hosted plane lists for the org's key, dry-run quotes left out."""
    return [run["run_id"] for run in raw(world, "GET", "/v1/runs")["runs"] if run["state"] != "dry_run"]


def plane_status(world: Any, run_id: str, key: str = USER_KEY) -> dict[str, Any]:
    """The run as the control plane itself reports it (what `flash runs status` prints)."""
    return raw(world, "GET", f"/v1/runs/{run_id}", key)


async def pushed_project(client: Client, world: HostedPlane) -> str:
    """setup -> hosted push -> configs updated with the returned id."""
    await call(client, "setup_project", directory="p", project=PROJECT)
    await call(client, "edit_config", config="p/configs/rl.toml", set={"model": MODEL, "train.max_steps": 4})
    pushed = await call(client, "push_environment", name="math", directory="p")
    assert pushed["environment_id"] == "acme/starter/math" and pushed["account"] == "Acme Labs"
    assert "p/configs/rl.toml" in pushed["configs_updated"]
    assert "acme/starter/math/environment.py" in world.hub_files("acme/starter/math")
    assert "POST /api/flash/environments/internal" in world.backend.calls  # the project association
    return "p/configs/rl.toml"


async def approve(world: Any, proposal_id: str, monkeypatch: pytest.MonkeyPatch, capsys) -> str:
    """The human runs `flash-mcp approve ID --yes` (in-process main(), the plane it builds is this one)."""
    import flash_mcp.planes
    from flash_mcp.cli import main

    monkeypatch.setattr(flash_mcp.planes, "make_plane", lambda settings: world.plane(settings.home))
    capsys.readouterr()
    assert await anyio.to_thread.run_sync(lambda: main(["approve", proposal_id, "--yes"])) == 0
    return capsys.readouterr().out


async def until(client: Client, run_id: str, done) -> dict[str, Any]:
    """get_run with its own wait until `done(run)`; a minute at most."""
    with anyio.fail_after(60):
        run = await call(client, "get_run", run_id=run_id)
        while not done(run):
            run = await call(client, "get_run", run_id=run_id, wait_s=5)
    return run


async def spend_view(client: Client) -> str:
    return (await client.read_resource("flash://spend")).contents[0].text


async def test_the_paid_lifecycle_from_hosted_push_to_a_settled_cost(
    hosted_plane: HostedPlane, flash_settings: ServerSettings, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    world, home = hosted_plane, flash_settings.home
    (home / "settings.toml").write_text(STRICT)
    world.worker.heartbeats.extend(RL_STEPS)
    world.worker.final_step, world.worker.wall_seconds = 3, 300.0  # finished one step early
    world.checkpoints.append({"step": 2, "adapter_prefix": "x", "subfolder": "rl/step-2", "repo_id": "acme/a",
                              "repo_type": "model"})  # fmt: skip
    async with connected(world, flash_settings) as client:
        config = await pushed_project(client, world)
        quoted = await call(client, "dry_run", config=config)
        proposal = await call(client, "launch_training", config=config)
        assert proposal["status"] == "awaiting_approval" and proposal["account"] == "Acme Labs"
        approved_usd = proposal["quote_usd"]
        assert approved_usd == quoted["dry_run"]["quote"]["usd"] > 0

        said = await approve(world, proposal["proposal"]["id"], monkeypatch, capsys)
        [run_id] = paid_runs(world)
        assert f"submitted {run_id} on the flash plane" in said and "OVERRUN" not in said

        running = await until(client, run_id, lambda run: run["step"] == 2)
        assert running["state"] == "running" and running["latest_metrics"]["reward"] == 0.5
        assert running["spend"]["approved_usd"] == approved_usd and not running["spend"]["settled"]
        assert running["spend"]["cost_usd"] == plane_status(world, run_id)["estimated_cost_usd"]
        metrics = await call(client, "get_run_metrics", run_id=run_id)
        assert metrics["series"]["reward"] == [[1, 0.25], [2, 0.5]]

        world.worker.finish()
        done = await until(client, run_id, lambda run: run["state"] == "done")
        checkpoints = await call(client, "list_checkpoints", run_id=run_id)
        view = await spend_view(client)

    charged = plane_status(world, run_id)["cost_usd"]
    assert done["spend"]["settled"] and done["spend"]["cost_usd"] == charged
    assert 0 < charged < approved_usd  # Flash charged the quote's share for 3 of 4 steps, not the quote
    assert done["spend"]["counted_usd"] == charged
    assert done["spend"]["difference_usd"] == round(charged - approved_usd, 2)
    assert [c["id"] for c in checkpoints["checkpoints"]] == [f"{run_id}/step-2", f"{run_id}/final"]
    [charge] = [c for c in world.backend.charges if c["runId"] == run_id]
    assert charge["costCents"] == round(charged * 100) and charge["orgId"] == "org-acme"
    assert f"{run_id} | flash | done | ${approved_usd:.2f} | ${charged:.2f} settled" in view
    assert f"today ({dt.date.today().isoformat()}): ${charged:.2f} of daily_usd" in view
    events = ApprovalStore(home).audit_events()
    assert [e["event"] for e in events] == ["propose", "approve", "submit", "settle"]
    assert events[-1]["quote_usd"] == approved_usd and events[-1]["cost_usd"] == charged

    import flash_mcp.planes
    from flash_mcp.cli import main

    monkeypatch.setattr(flash_mcp.planes, "make_plane", lambda settings: world.plane(settings.home))
    assert await anyio.to_thread.run_sync(lambda: main(["spend", "--plane", "flash"])) == 0
    printed = capsys.readouterr().out
    assert f"${charged:.2f} settled" in printed and "monthly_usd $1000.00" in printed and len(printed) < 600
    assert await anyio.to_thread.run_sync(lambda: main(["spend", "--plane", "flash", "--json"])) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["month"]["spent_usd"] == round(charged, 2) and report["runs"][0]["cost_usd"] == charged


@pytest.mark.parametrize("cancel", [False, True], ids=["flag", "cancel"])
async def test_a_run_over_its_approval_is_flagged_and_cancelled_when_the_human_asked(
    hosted_plane: HostedPlane, flash_settings: ServerSettings, monkeypatch: pytest.MonkeyPatch, capsys, cancel: bool
) -> None:
    from flash.providers.modal import pricing

    world, home = hosted_plane, flash_settings.home
    (home / "settings.toml").write_text(STRICT + f"overrun_pct = 25\ncancel_on_overrun = {str(cancel).lower()}\n")
    world.worker.final_step = 4
    world.checkpoints.append({"step": 2, "adapter_prefix": "x", "subfolder": "rl/step-2", "repo_id": "acme/a",
                              "repo_type": "model"})  # fmt: skip
    async with connected(world, flash_settings) as client:
        config = await pushed_project(client, world)
        proposal = await call(client, "launch_training", config=config)
        approved_usd = proposal["quote_usd"]
        # Between the proposal and the human's yes, Modal's sandbox CPU price goes up tenfold: Flash
        # quotes the run again at submit, and that is what it will charge.
        monkeypatch.setattr(pricing, "CPU_HOURLY", pricing.CPU_HOURLY * 10)
        said = await approve(world, proposal["proposal"]["id"], monkeypatch, capsys)
        [run_id] = paid_runs(world)
        requoted = plane_status(world, run_id)["estimated_cost_usd"]
        assert requoted > approved_usd * 1.25
        assert "OVERRUN" in said and ("cancelled this run" in said) is cancel

        if not cancel:
            world.worker.finish()
        end = await until(client, run_id, lambda run: run["state"] in ("done", "cancelled"))
        summary = (await client.read_resource(f"flash://runs/{run_id}")).contents[0].text
        checkpoints = await call(client, "list_checkpoints", run_id=run_id)
        view = await spend_view(client)

    status = plane_status(world, run_id)
    assert end["state"] == status["state"] == ("cancelled" if cancel else "done")
    assert end["spend"]["overrun"] and end["spend"]["cancelled_for_overrun"] is cancel and end["spend"]["settled"]
    assert end["spend"]["cost_usd"] == status["cost_usd"]
    assert any(note.startswith("OVERRUN") for note in end["notes"]) and "tell the human" in end["next"][0]
    assert "OVERRUN" in summary and "## Spend" in summary and "OVERRUN" in view
    assert checkpoints["checkpoints"][0]["id"] == f"{run_id}/step-2"  # cancelling keeps them
    events = ApprovalStore(home).audit_events()
    [overrun] = [e for e in events if e["event"] == "overrun"]
    assert overrun["approved_usd"] == approved_usd and overrun["cost_usd"] == requoted and overrun["overrun_pct"] == 25
    cancels = [e for e in events if e["event"] == "cancel"]
    assert [c["how"] for c in cancels] == (["overrun watch"] if cancel else [])
    if not cancel:
        assert status["cost_usd"] == requoted > approved_usd * 1.25  # settled above the approved amount
        assert f"${requoted:.2f} settled | +{requoted - approved_usd:.2f} | OVERRUN" in view


def second_server(workspace: Path, tmp_path: Path, name: str) -> ServerSettings:
    home = tmp_path / name
    home.mkdir()
    (home / "settings.toml").write_text(AUTO_APPROVE.replace("max_concurrent_runs = 10", "max_concurrent_runs = 1"))
    return ServerSettings.create(workspace, home=home, plane="flash")


async def test_the_concurrency_limit_counts_runs_other_servers_and_the_cli_started(
    control_plane: ControlPlane, workspace: Path, tmp_path: Path
) -> None:
    control_plane.heartbeats.extend(RL_STEPS)
    first, second = second_server(workspace, tmp_path, "one"), second_server(workspace, tmp_path, "two")
    async with connected(control_plane, first) as one, connected(control_plane, second) as two:
        config = await rl_project(one)
        started = await call(one, "launch_training", config=config)
        await call(two, "edit_config", config=config, set={"train.max_steps": 5})
        refused = await call_error(two, "launch_training", config=config)
        await call(one, "cancel_run", run_id=started["run_id"])
        spec = {"model": MODEL, "project": PROJECT, "algorithm": "grpo",
                "environment": {"id": "github:acme/envs@main:math"}, "train": {"max_steps": 2}}  # fmt: skip
        by_cli = raw(control_plane, "POST", "/v1/runs", INTERNAL_KEY, spec=spec)  # `flash train`
        refused_again = await call_error(two, "launch_training", config=config)
        await call(two, "cancel_run", run_id=by_cli["run_id"])
        launched = await call(two, "launch_training", config=config)
        await call(two, "cancel_run", run_id=launched["run_id"])
    assert f"1 runs are active on the flash plane ({started['run_id']};" in refused
    assert "max_concurrent_runs is 1" in refused and "nothing was launched" in refused
    assert f"({by_cli['run_id']};" in refused_again
    assert launched["status"] == "launched"  # dry-run quotes on the plane never count


async def test_the_watcher_settles_a_run_cancelled_outside_the_server(
    control_plane: ControlPlane, flash_settings: ServerSettings
) -> None:
    control_plane.heartbeats.extend(RL_STEPS)
    async with connected(control_plane, flash_settings) as client:
        config = await rl_project(client)
        run_id = (await call(client, "launch_training", config=config))["run_id"]
        before = await spend_view(client)
        raw(control_plane, "POST", f"/v1/runs/{run_id}/cancel", INTERNAL_KEY)  # `flash runs cancel`
        server = build_server(flash_settings, plane_factory=lambda: control_plane.plane(flash_settings.home))
        spend = ApprovalStore(flash_settings.home)
        assert [e["event"] for e in spend.audit_events()] == ["approve", "submit"]
        watcher = RunWatcher(server, lambda: control_plane.plane(flash_settings.home),
                             lambda: Spend(flash_settings.home, control_plane.plane(flash_settings.home)))  # fmt: skip
        await watcher.tick()
        after = await spend_view(client)
    status = plane_status(control_plane, run_id, INTERNAL_KEY)
    settle = spend.audit_events()[-1]
    assert settle["event"] == "settle" and settle["run_id"] == run_id and settle["state"] == "cancelled"
    assert settle["cost_usd"] == status["cost_usd"] and settle["quote_usd"] == status["estimated_cost_usd"]
    assert "running" in before.split(run_id)[1].splitlines()[0]
    assert f"${status['cost_usd']:.2f} settled" in after.split(run_id)[1].splitlines()[0]


@pytest.mark.parametrize(
    ("line", "wrong"), [("overrun_pct = -5", "overrun_pct must be a number >= 0"),
                        ('cancel_on_overrun = "yes"', "cancel_on_overrun must be true or false")],
)  # fmt: skip
def test_overrun_settings_are_the_humans_and_a_typo_is_an_error(isolated_home: Path, line: str, wrong: str) -> None:
    isolated_home.mkdir(parents=True, exist_ok=True)
    assert load_human_settings(isolated_home).budget.overrun_pct == 25.0
    assert load_human_settings(isolated_home).budget.cancel_on_overrun is False
    (isolated_home / "settings.toml").write_text(f"[budget]\n{line}\n")
    with pytest.raises(UserError, match=wrong):
        load_human_settings(isolated_home)
