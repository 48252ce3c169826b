"""The spend guard (flash_mcp/guard/) in front of the real Flash 1.3.28 control plane app.

The guard fixture (tests/flashplane/guarding.py) serves it over a real Unix socket; the MCP server, in-process, is
the human's (and so the agent's) user; other users' requests come from children that take those uids first.
"""

from __future__ import annotations

import json
import os
import pwd

import httpx
import pytest
from mcp import Client

from flash_mcp.core.advice import INSTALLED_GUARD
from flash_mcp.core.errors import UserError
from flash_mcp.guard.daemon import Guard
from flash_mcp.guard.routes import classify
from flash_mcp.planes.flash import serving
from flash_mcp.planes.flash.client import FlashClient, FlashError
from flash_mcp.planes.flash.guarded import SOCKET_ENV, guard_transport, guarded_credentials
from flash_mcp.planes.flash.plane import FlashPlane
from flash_mcp.server import build_server
from tests.conftest import call, call_error
from tests.flashplane.conftest import INTERNAL_KEY, MODEL, ControlPlane
from tests.flashplane.guarding import DECIDER, STRANGER, request_as
from tests.flashplane.test_flash_plane import rl_project, runs_on_the_plane

pytestmark = pytest.mark.anyio


def test_the_routes_the_guard_forwards_and_the_ones_that_spend() -> None:
    assert classify("GET", "/v1/runs/r-1/logs?offset=0", b"").verdict == "forward"
    assert classify("POST", "/v1/runs", b'{"spec": {}, "dry_run": true}').verdict == "forward"
    assert classify("POST", "/v1/runs", b'{"spec": {}}').verdict == "approval"
    assert classify("POST", "/v1/runs", b'{"dry_run": true, "dry_run": false}').verdict == "approval"
    assert classify("POST", "/v1/runs", b'{"dry_run": "true"}').verdict == "approval"
    assert classify("POST", "/v1/runs/r-1/deploy", b'{"dry_run": false}').verdict == "approval"
    assert classify("POST", "/v1/runs/r-1/export", b"{}").verdict == "refuse"
    assert classify("GET", "/v1/runs/../me", b"").verdict == "refuse"
    assert classify("DELETE", "/v1/envs/a", b"").verdict == "refuse"


async def test_a_paid_launch_becomes_a_guard_proposal_that_only_the_human_approves(
    guard: Guard, control_plane: ControlPlane, flash_settings
) -> None:
    # The agent's own settings.toml auto-approves up to $1000: in guarded mode that approves nothing.
    server = build_server(flash_settings, plane_factory=lambda: FlashPlane(flash_settings.home))
    async with Client(server) as client:
        config = await rl_project(client)
        refused = await call_error(client, "launch_training", config=config)
        assert "the spend guard holds this as proposal gp-" in refused and "nothing was submitted" in refused
        assert runs_on_the_plane(control_plane) == []
        assert INTERNAL_KEY not in refused
        (proposal,) = guard.store.list("pending")
        assert proposal.quote_usd > 0  # the guard priced the body itself, with Flash's dry run
        sock = guard.socket_path  # type: ignore[attr-defined]

        # The agent's user may read the proposal, never decide it, and cannot submit around it.
        assert request_as(None, sock, "POST", f"/guard/v1/proposals/{proposal.id}/approve",
                          {"digest": proposal.digest})[0] == 403  # fmt: skip
        status, answer = request_as(None, sock, "POST", "/v1/runs", proposal.body)
        assert status == 403 and answer["detail"]["code"] == "guard_approval_required"
        assert request_as(STRANGER, sock, "GET", "/v1/runs")[0] == 403
        assert runs_on_the_plane(control_plane) == []

        # A decider (the human through sudo) approves the digest it was shown: one run, the exact body.
        assert request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{proposal.id}/approve",
                          {"digest": "0" * 64})[0] == 409  # fmt: skip
        status, approved = request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{proposal.id}/approve",
                                      {"digest": proposal.digest})  # fmt: skip
        assert status == 200 and approved["status"] == "submitted", approved
        (run,) = runs_on_the_plane(control_plane)
        assert run["run_id"] == approved["run_id"]
        again = request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{proposal.id}/approve",
                           {"digest": proposal.digest})  # fmt: skip
        assert again[0] == 409 and len(runs_on_the_plane(control_plane)) == 1

        assert (await call(client, "whoami"))["detail"]["spend_authority"].startswith("guarded:")
        listed = await call(client, "list_runs")
        assert approved["run_id"] in json.dumps(listed)  # reads pass through the guard with its key


def test_the_agents_user_cannot_read_the_guards_key(guard: Guard) -> None:
    key_file = guard.home / "flash.json"
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover
        try:
            account = pwd.getpwnam(STRANGER)
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            try:
                key_file.read_text()
                os.write(write, b"read")
            except PermissionError:
                os.write(write, b"refused")
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        assert pipe.read() == b"refused"
    os.waitpid(child, 0)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_a_denied_proposal_cannot_be_approved_and_the_budget_holds(guard: Guard) -> None:
    sock = guard.socket_path  # type: ignore[attr-defined]
    body = {"spec": {"algorithm": "grpo", "model": "m"}}
    small = guard.store.propose("/v1/runs", body, 1.0, "small")
    assert request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{small.id}/deny", {})[1]["status"] == "denied"
    assert request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{small.id}/approve",
                      {"digest": small.digest})[0] == 409  # fmt: skip
    (guard.home / "settings.toml").write_text("[budget]\nmax_run_usd = 5.0\n", encoding="utf-8")
    big = guard.store.propose("/v1/runs", body, 50.0, "big")
    status, answer = request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{big.id}/approve", {"digest": big.digest})
    assert status == 402 and "per-run budget" in answer["detail"]["message"]
    assert guard.store.get(big.id).status == "pending"


async def test_a_submit_whose_answer_is_lost_is_looked_up_never_sent_twice(
    guard: Guard, control_plane: ControlPlane, flash_settings
) -> None:
    sock = guard.socket_path  # type: ignore[attr-defined]
    server = build_server(flash_settings, plane_factory=lambda: FlashPlane(flash_settings.home))
    async with Client(server) as client:
        await call_error(client, "launch_training", config=await rl_project(client))
    (proposal,) = guard.store.list("pending")

    def lost(response):
        raise httpx.ReadError("the connection dropped after Flash created the run")

    control_plane.transport.fail_next[("POST", "/v1/runs")] = lost
    status, answer = request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{proposal.id}/approve",
                                {"digest": proposal.digest})  # fmt: skip
    (run,) = runs_on_the_plane(control_plane)
    assert status == 200 and answer["status"] == "submitted" and answer["run_id"] == run["run_id"]
    again = request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{proposal.id}/approve", {"digest": proposal.digest})
    assert again[0] == 409 and len(runs_on_the_plane(control_plane)) == 1


def test_a_guard_that_died_mid_submit_marks_it_unknown_on_restart_and_sends_nothing(
    guard: Guard, control_plane: ControlPlane
) -> None:
    proposal = guard.store.propose("/v1/runs", {"spec": {"algorithm": "grpo", "model": MODEL}}, 1.0, "crash")
    assert guard.store.claim(proposal.id, proposal.digest)  # claimed, then the process died before the POST
    restarted = Guard(guard.home, human_uid=guard.human_uid, transport=control_plane.transport)
    (settled,) = restarted.reconcile()
    assert settled.status == "unknown" and "nothing was submitted again" in (settled.error or "")
    assert runs_on_the_plane(control_plane) == []


async def test_an_installed_guard_that_is_down_fails_closed_and_local_work_goes_on(
    tmp_path, monkeypatch: pytest.MonkeyPatch, flash_settings
) -> None:
    monkeypatch.setenv(SOCKET_ENV, str(tmp_path / "gone.sock"))
    server = build_server(flash_settings, plane_factory=lambda: FlashPlane(flash_settings.home))
    async with Client(server) as client:
        refused = await call_error(client, "whoami")
        assert "the spend guard is installed but not answering" in refused
        assert (await call(client, "whoami", plane="local"))["plane"] == "local"


async def test_the_guards_own_policy_approves_within_its_budget_and_the_agent_cannot_change_it(
    guard: Guard, control_plane: ControlPlane, flash_settings
) -> None:
    sock = guard.socket_path  # type: ignore[attr-defined]
    raise_budget = {"set": {"approval.mode": "above_threshold", "approval.auto_approve_usd": 1000.0}}
    assert request_as(None, sock, "POST", "/guard/v1/settings", raise_budget)[0] == 403
    assert request_as(DECIDER, sock, "POST", "/guard/v1/settings", raise_budget)[1]["status"] == "applied"
    server = build_server(flash_settings, plane_factory=lambda: FlashPlane(flash_settings.home))
    async with Client(server) as client:
        launched = await call(client, "launch_training", config=await rl_project(client))
    (run,) = runs_on_the_plane(control_plane)
    assert launched["run_id"] == run["run_id"]
    assert guard.store.list()[0].status == "submitted"


def test_settings_changes_are_validated_and_a_bad_one_leaves_the_file_as_it_was(guard: Guard) -> None:
    sock = guard.socket_path  # type: ignore[attr-defined]
    (guard.home / "settings.toml").write_text("# the human's note\n[budget]\ndaily_usd = 50.0\n", encoding="utf-8")
    status, answer = request_as(DECIDER, sock, "POST", "/guard/v1/settings", {"set": {"budget.daily_usd": -1}})
    assert status == 400 and "daily_usd" in answer["detail"]["message"]
    status, answer = request_as(DECIDER, sock, "POST", "/guard/v1/settings", {"set": {"budget.token": 1}})
    assert status == 400 and "does not hold budget.token" in answer["detail"]["message"]
    assert (guard.home / "settings.toml").read_text() == "# the human's note\n[budget]\ndaily_usd = 50.0\n"
    tighter = request_as(DECIDER, sock, "POST", "/guard/v1/settings", {"set": {"budget.daily_usd": 20.0}})[1]
    assert tighter == {"status": "applied", "looser": []}
    assert "# the human's note" in (guard.home / "settings.toml").read_text()


def test_a_real_deployment_waits_for_the_human_as_a_guard_proposal(guard: Guard) -> None:
    sock = guard.socket_path  # type: ignore[attr-defined]
    client = FlashClient(guarded_credentials(), guard_transport(sock))
    with pytest.raises(UserError, match="the spend guard holds this as proposal gp-"):
        serving.deploy(client, "run-1/final")
    (proposal,) = guard.store.list("pending")
    assert proposal.path == "/v1/runs/run-1/deploy" and proposal.body["dry_run"] is False
    with pytest.raises(FlashError, match="unknown run_id: run-1"):  # a dry run reaches Flash, with the guard's key
        serving.deploy(client, "run-1/final", dry_run=True)


async def test_list_proposals_shows_the_guards_proposals_with_their_state_and_how_to_approve(
    guard: Guard, control_plane: ControlPlane, flash_settings
) -> None:
    server = build_server(flash_settings, plane_factory=lambda: FlashPlane(flash_settings.home))
    async with Client(server) as client:
        config = await rl_project(client)
        await call_error(client, "launch_training", config=config)
        (proposal,) = guard.store.list("pending")
        (shown,) = (await call(client, "list_proposals"))["guard"]
        assert shown["id"] == proposal.id and shown["status"] == "pending" and shown["live"] is True
        assert shown["kind"] == "launch" and shown["quote_usd"] == proposal.quote_usd > 0
        approve = f"`sudo {INSTALLED_GUARD} guard approve {proposal.id}`"  # the guard's own copy, never the clone
        assert shown["approve_with"] == approve
        assert "body" not in shown and INTERNAL_KEY not in json.dumps(shown)

        sock = guard.socket_path  # type: ignore[attr-defined]
        reason = {"reason": "too few steps; try 40"}  # `sudo …/flash-mcp guard deny ID --reason ...`
        assert request_as(None, sock, "POST", f"/guard/v1/proposals/{proposal.id}/deny", reason)[0] == 403
        assert request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{proposal.id}/deny", reason)[0] == 200
        (denied,) = (await call(client, "list_proposals", status="denied"))["guard"]
        assert denied["status"] == "denied" and denied["live"] is False and denied["approve_with"] is None
        assert denied["denied_reason"] == "too few steps; try 40"
        assert (await call(client, "list_proposals", status="pending"))["guard"] == []
        assert runs_on_the_plane(control_plane) == []
