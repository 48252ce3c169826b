"""A paid run proposed before the human logged in to Flash: the proposal carries the package digest and Flash's
offline estimate; `flash-mcp approve` asks for the login, pushes that exact package to the real (hosted) control
plane, takes the live quote and submits only within the approved amount."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call
from tests.flashplane.conftest import INTERNAL_KEY, MODEL, ControlPlane
from tests.flashplane.hosted import USER_KEY, HostedPlane, hosted_plane_fixture  # noqa: F401 - the fixture
from tests.flashplane.test_approval import cli
from tests.flashplane.test_flash_plane import rl_project, runs_on_the_plane
from tests.flashplane.test_ledger import STRICT, paid_runs, plane_status

pytestmark = pytest.mark.anyio


@pytest.fixture
def logged_out(flash_settings: ServerSettings, monkeypatch: pytest.MonkeyPatch) -> ServerSettings:
    """A local-plane server whose human has not run `flash login` (no key in the env, none saved)."""
    monkeypatch.delenv("FREESOLO_API_KEY", raising=False)
    (flash_settings.home / "settings.toml").write_text(STRICT, encoding="utf-8")
    return dataclasses.replace(flash_settings, plane="local")


@asynccontextmanager
async def session(world: HostedPlane, settings: ServerSettings) -> AsyncIterator[Client]:
    server = build_server(settings, plane_factories={"flash": lambda: world.plane(settings.home)})
    async with Client(server) as client:
        yield client


async def rehearsed(client: Client, algorithm: str = "rl") -> tuple[str, dict]:
    """setup -> local push (the rehearsal's id in the config) -> the proposal on Flash, by argument."""
    await call(client, "setup_project", directory="p", project=PROJECT)
    config = f"p/configs/{algorithm}.toml"
    await call(client, "edit_config", config=config, set={"model": MODEL, "train.max_steps": 4})
    local = await call(client, "push_environment", name="math", directory="p")
    proposed = await call(client, "launch_training", config=config, plane="flash")
    assert proposed["status"] == "awaiting_approval", proposed
    return config, {"local": local, **proposed}


async def approve_in_process(world: HostedPlane | ControlPlane, proposal_id: str, monkeypatch, capsys) -> tuple:
    import flash_mcp.planes
    from flash_mcp.cli import main

    monkeypatch.setattr(flash_mcp.planes, "make_plane", lambda settings: world.plane(settings.home))
    capsys.readouterr()
    code = await anyio.to_thread.run_sync(lambda: main(["approve", proposal_id, "--yes"]))
    said = capsys.readouterr()
    return code, said.out + said.err


def envs_pushed(world: HostedPlane) -> int:
    return world.transport.posts("/v1/envs")


async def test_proposed_logged_out_then_approved_pushes_that_package_and_submits(
    hosted_plane: HostedPlane, logged_out: ServerSettings, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    world, home = hosted_plane, logged_out.home
    async with session(world, logged_out) as client:
        config, proposed = await rehearsed(client)
        again = await call(client, "launch_training", config=config, plane="flash")
    proposal, offline = proposed["proposal"], proposed["proposal"]["offline"]
    assert again["proposal"]["id"] == proposal["id"]  # a repeat returns the same proposal
    assert offline["package"]["digest"] == proposed["local"]["digest"] == proposal["environment_digest"]
    assert offline["hosted_estimate"]["usd"] > 0 and offline["approved_usd"] == offline["hosted_estimate"]["usd"]
    assert proposed["quote_usd"] == offline["approved_usd"] and "flash login" not in json.dumps(proposed["next"])
    assert "log in" in proposed["next"][0] and proposal["id"] in proposed["approve_command"]
    assert world.transport.requests == []  # nothing reached Flash

    refused = cli("approve", proposal["id"], "--yes", home=home)  # still logged out
    assert refused.returncode == 1 and "flash login" in refused.stderr and "still pending" in refused.stderr
    assert ApprovalStore(home).get(proposal["id"]).status == "pending"

    monkeypatch.setenv("FREESOLO_API_KEY", USER_KEY)  # the human logs in
    code, said = await approve_in_process(world, proposal["id"], monkeypatch, capsys)
    [run_id] = paid_runs(world)
    assert code == 0 and f"submitted {run_id}" in said, said
    assert envs_pushed(world) == 1 and "acme/starter/math/environment.py" in world.hub_files("acme/starter/math")
    status = plane_status(world, run_id)
    assert status["spec"]["environment"]["id"] == "acme/starter/math"
    assert status["estimated_cost_usd"] <= offline["approved_usd"] + 0.005
    stored = ApprovalStore(home).get(proposal["id"])
    assert stored.status == "submitted" and stored.run_id == run_id
    events = ApprovalStore(home).audit_events()
    assert [e["event"] for e in events] == ["propose", "approve", "submit"]
    assert events[1]["environment_digest"] == offline["package"]["digest"] and events[1]["how"] == "cli"


async def test_an_environment_changed_after_the_proposal_is_refused_before_any_push(
    hosted_plane: HostedPlane, logged_out: ServerSettings, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    world = hosted_plane
    async with session(world, logged_out) as client:
        _, proposed = await rehearsed(client)
    environment = logged_out.workspace.root / "p" / "environment.py"
    environment.write_text(environment.read_text() + "\n# edited after the proposal\n")
    monkeypatch.setenv("FREESOLO_API_KEY", USER_KEY)
    code, said = await approve_in_process(world, proposed["proposal"]["id"], monkeypatch, capsys)
    assert code == 1 and "environment changed since the proposal" in said, said
    assert envs_pushed(world) == 0 and paid_runs(world) == []
    assert ApprovalStore(logged_out.home).get(proposed["proposal"]["id"]).status == "refused"


async def test_a_live_quote_over_the_approved_amount_submits_nothing(
    hosted_plane: HostedPlane, logged_out: ServerSettings, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    world = hosted_plane
    async with session(world, logged_out) as client:
        _, proposed = await rehearsed(client)
    store = ApprovalStore(logged_out.home)
    with store.writing() as db:  # an offline estimate far below what the plane quotes live
        db.execute("UPDATE proposals SET details = json_set(details, '$.offline.approved_usd', 0.01)")
    assert store.get(proposed["proposal"]["id"]).offline["approved_usd"] == 0.01
    monkeypatch.setenv("FREESOLO_API_KEY", USER_KEY)
    code, said = await approve_in_process(world, proposed["proposal"]["id"], monkeypatch, capsys)
    assert code == 1 and "live quote" in said and "over the approved $0.01" in said, said
    assert paid_runs(world) == []


async def test_sft_is_proposed_with_the_reason_it_has_no_offline_estimate(
    hosted_plane: HostedPlane, logged_out: ServerSettings
) -> None:
    async with session(hosted_plane, logged_out) as client:
        _, proposed = await rehearsed(client, "sft")
        priced = await call(client, "estimate_cost", config="p/configs/sft.toml")
    offline = proposed["proposal"]["offline"]
    assert offline["hosted_estimate"]["usd"] is None and "SFT" in offline["hosted_estimate"]["reason"]
    assert offline["approved_usd"] == 50.0 and "max_run_usd" in proposed["proposal"]["quote_label"]
    assert priced["hosted_estimate"]["reason"] == offline["hosted_estimate"]["reason"]


def test_every_algorithm_gets_an_offline_estimate_or_its_reason() -> None:
    from flash_mcp.domain.config.fit import hosted_estimate

    for algorithm in ("sft", "grpo", "opd"):
        raw = {"algorithm": algorithm, "model": "Qwen/Qwen3.5-9B", "project": PROJECT,
               "environment": {"id": "acme/starter/math"}, "train": {"max_steps": 4, "max_examples": 8}}  # fmt: skip
        estimate = hosted_estimate(raw)
        assert (estimate["usd"] or 0) > 0 or estimate["reason"], (algorithm, estimate)
        assert (estimate["usd"] is None) == (algorithm == "sft"), (algorithm, estimate)


async def test_a_flash_server_logged_out_proposes_a_github_environment_with_nothing_to_push(
    control_plane: ControlPlane, flash_settings: ServerSettings, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("FREESOLO_API_KEY", raising=False)
    (flash_settings.home / "settings.toml").write_text(STRICT, encoding="utf-8")
    server = build_server(flash_settings, plane_factory=lambda: control_plane.plane(flash_settings.home))
    async with Client(server) as client:
        config = await rl_project(client)
        proposed = await call(client, "launch_training", config=config)
    offline = proposed["proposal"]["offline"]
    assert proposed["status"] == "awaiting_approval" and offline["package"] is None
    assert proposed["proposal"]["environment_digest"] is None and control_plane.transport.requests == []
    monkeypatch.setenv("FREESOLO_API_KEY", INTERNAL_KEY)
    code, said = await approve_in_process(control_plane, proposed["proposal"]["id"], monkeypatch, capsys)
    [run] = runs_on_the_plane(control_plane)
    assert code == 0 and f"submitted {run['run_id']}" in said, said
    assert control_plane.transport.posts("/v1/envs") == 0
