"""The run tools on the flash plane, against the real Flash 1.3.28 control plane app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call, call_error
from tests.flashplane.conftest import GITHUB_ENV, INTERNAL_KEY, MODEL, ControlPlane

pytestmark = pytest.mark.anyio

RL_STEPS = [
    {"stage": "rl_step", "attempt": 0, "step": 1, "reward": 0.25, "kl": 0.01,
     "metrics_last": [{"step": 1, "reward": 0.25, "kl": 0.01, "entropy": 1.5}]},
    {"stage": "rl_step", "attempt": 0, "step": 2, "reward": 0.5, "kl": 0.02,
     "metrics_last": [{"step": 1, "reward": 0.25, "kl": 0.01, "entropy": 1.5},
                      {"step": 2, "reward": 0.5, "kl": 0.02, "entropy": 1.4}],
     "sampled_completions": [{"prompt_tail": "What is 2 + 2?", "completion": "4\nsure", "reward": 1.0,
                              "generated_at_step": 2}]},
]  # fmt: skip


@asynccontextmanager
async def connected(control_plane: ControlPlane, settings: ServerSettings) -> AsyncIterator[Client]:
    server = build_server(settings, plane_factory=lambda: control_plane.plane(settings.home))
    async with Client(server) as client:
        yield client


async def rl_project(client: Client, **train: object) -> str:
    """The scaffolded project, its rl.toml pointed at a GitHub environment (what a standalone plane accepts)."""
    await call(client, "setup_project", directory="p", project=PROJECT)
    settings = {"environment.id": GITHUB_ENV, "model": MODEL, "train.max_steps": 4, **train}
    edited = await call(client, "edit_config", config="p/configs/rl.toml", set=settings)
    assert edited["written"], edited
    return "p/configs/rl.toml"


def runs_on_the_plane(control_plane: ControlPlane, *, dry_runs: bool = False) -> list[dict]:
    """Runs the control plane holds; launches quote first, so their dry-run records are left out unless asked."""
    listed = httpx.Client(transport=control_plane.transport, base_url="http://flash.test").get(
        "/v1/runs", headers={"Authorization": f"Bearer {INTERNAL_KEY}"}
    )
    return [run for run in listed.json()["runs"] if dry_runs or run["state"] != "dry_run"]


async def test_whoami_names_the_plane_and_never_the_key(flash_client: Client) -> None:
    me = await call(flash_client, "whoami")
    assert me["plane"] == "flash"
    assert "self-hosted plane at http://flash.test" in me["who"]
    assert me["detail"]["kind"] == "internal" and me["detail"]["key_source"] == "FREESOLO_API_KEY"
    assert me["detail"]["spend_authority"].startswith("unguarded: an agent with a shell as this user can approve")
    assert INTERNAL_KEY not in json.dumps(me)


async def test_a_bad_key_gets_flashs_401_with_the_env_var_hint(
    control_plane: ControlPlane, flash_settings: ServerSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FREESOLO_API_KEY", "fslo_not_the_operator_key")
    async with connected(control_plane, flash_settings) as client:
        error = await call_error(client, "list_runs")
    assert "HTTP 401" in error and "invalid or missing API key" in error
    assert "FREESOLO_API_KEY is set and overrides the key saved by `flash login`" in error
    assert "fslo_not_the_operator_key" not in error


async def test_not_logged_in_says_how_to_log_in(
    control_plane: ControlPlane, flash_settings: ServerSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FREESOLO_API_KEY")
    async with connected(control_plane, flash_settings) as client:
        error = await call_error(client, "list_runs")
    assert "not logged in to Flash" in error and "flash login" in error


async def test_dry_run_is_flashs_quote_and_is_listed_as_a_dry_run(
    flash_client: Client, control_plane: ControlPlane
) -> None:
    config = await rl_project(flash_client)
    report = await call(flash_client, "dry_run", config=config)
    assert report["valid"], report["errors"]
    quote = report["dry_run"]["quote"]
    assert quote["usd"] > 0 and "server dry-run" in quote["label"]
    assert quote["account"].startswith("the operator of the self-hosted plane")
    [record] = runs_on_the_plane(control_plane, dry_runs=True)
    assert record["state"] == "dry_run" and record["estimated_cost_usd"] == quote["usd"]
    assert record["spec"]["train"]["max_steps"] == 4 and record["spec"]["environment"]["id"] == GITHUB_ENV
    page = await call(flash_client, "list_runs")
    assert [run["state"] for run in page["runs"]] == ["dry_run"]
    cost = await call(flash_client, "estimate_cost", config=config)
    assert cost["usd"] == quote["usd"] and cost["plane"] == "flash"


async def test_flashs_own_validation_message_reaches_the_agent(flash_client: Client) -> None:
    config = await rl_project(flash_client)
    await call(flash_client, "edit_config", config=config, set={"environment.id": "acme/proj/math"})
    error = await call_error(flash_client, "dry_run", config=config)
    assert "Flash answered HTTP 400" in error
    assert "acme/proj/math" in error or "managed" in error.lower()


async def test_a_run_end_to_end_submit_status_logs_metrics_samples_cancel(
    flash_client: Client, control_plane: ControlPlane
) -> None:
    control_plane.heartbeats.extend(RL_STEPS)
    config = await rl_project(flash_client)
    launched = await call(flash_client, "launch_training", config=config)
    run_id = launched["run_id"]
    assert launched["plane"] == "flash" and launched["config"] == config
    assert launched["account"].startswith("the operator of the self-hosted plane")

    run = await call(flash_client, "get_run", run_id=run_id)
    while run["step"] != 2:
        run = await call(flash_client, "get_run", run_id=run_id, wait_s=2, until="step")
    assert run["state"] == "running" and run["total_steps"] == 4
    assert run["latest_metrics"]["reward"] == 0.5 and run["estimated_cost_usd"] > 0 and run["cost_usd"] is None

    whole = await call(flash_client, "read_run_logs", run_id=run_id, max_bytes=40_000)
    assert "worker: stage=rl_step attempt=0 step=2 reward=0.500" in whole["text"] and not whole["more"]
    first = await call(flash_client, "read_run_logs", run_id=run_id, max_bytes=50)
    assert first["next_offset"] == 50 and first["more"]
    rest = await call(flash_client, "read_run_logs", run_id=run_id, offset=first["next_offset"], max_bytes=40_000)
    assert first["text"] + rest["text"] == whole["text"]

    metrics = await call(flash_client, "get_run_metrics", run_id=run_id)
    assert metrics["series"]["reward"] == [[1, 0.25], [2, 0.5]]
    assert metrics["series"]["entropy"] == [[1, 1.5], [2, 1.4]]
    samples = await call(flash_client, "get_run_samples", run_id=run_id)
    assert samples["samples"][-1]["completion"] == "4\nsure" and samples["samples"][-1]["step"] == 2

    cancelled = await call(flash_client, "cancel_run", run_id=run_id)
    assert cancelled["state"] == "cancelled"
    assert [run["state"] for run in runs_on_the_plane(control_plane)] == ["cancelled"]


async def test_worker_artifacts_and_checkpoints_name_their_attempts(
    flash_client: Client, control_plane: ControlPlane
) -> None:
    control_plane.heartbeats.extend(RL_STEPS)
    control_plane.worker_artifacts["console_rl_attempt0.txt"] = (
        'boot\nHEARTBEAT {"stage": "rl_step", "attempt": 0, "step": 7, "reward": 0.9}\n'
    )
    control_plane.checkpoints.append(
        {"step": 2, "adapter_prefix": "x", "subfolder": "rl/step-2", "repo_id": "flash-tests/a", "repo_type": "model"}
    )
    config = await rl_project(flash_client)
    run_id = (await call(flash_client, "launch_training", config=config))["run_id"]
    run = await call(flash_client, "get_run", run_id=run_id)
    while run["step"] != 2:
        run = await call(flash_client, "get_run", run_id=run_id, wait_s=2, until="step")
    logs = await call(flash_client, "read_run_logs", run_id=run_id, max_bytes=40_000)
    [artifact] = logs["worker"]
    assert artifact["attempt"] == 0 and "HEARTBEAT" in artifact["tail"]
    metrics = await call(flash_client, "get_run_metrics", run_id=run_id)
    assert [7, 0.9] in metrics["series"]["reward"]
    checkpoints = await call(flash_client, "list_checkpoints", run_id=run_id)
    assert checkpoints["checkpoints"][0]["id"] == f"{run_id}/step-2"
    await call(flash_client, "cancel_run", run_id=run_id)


async def test_an_unknown_run_is_flashs_404_with_a_next_step(flash_client: Client) -> None:
    error = await call_error(flash_client, "get_run", run_id="flash-1-nope")
    assert "HTTP 404" in error and "unknown run_id: flash-1-nope" in error and "list_runs" in error
    error = await call_error(flash_client, "cancel_run", run_id="flash-1-nope")
    assert "HTTP 404" in error


async def test_a_lost_submit_response_is_looked_up_not_resubmitted(
    flash_client: Client, control_plane: ControlPlane
) -> None:
    config = await rl_project(flash_client)

    def lose_the_answer(response: httpx.Response) -> httpx.Response:
        raise httpx.ReadTimeout("the answer was lost", request=response.request)

    control_plane.transport.fail_next[("POST", "/v1/runs")] = lose_the_answer
    launched = await call(flash_client, "launch_training", config=config)
    assert control_plane.transport.posts("/v1/runs") == 2  # the quote's dry-run, then one submit
    [run] = runs_on_the_plane(control_plane)
    assert run["run_id"] == launched["run_id"]
    await call(flash_client, "cancel_run", run_id=run["run_id"])


async def test_an_unconfirmed_failure_is_reported_and_never_resubmitted(
    flash_client: Client, control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flash.providers._lifecycle.net import worker as provider_worker

    def hub_down(repo=None, **_):
        raise RuntimeError("hub unavailable")

    monkeypatch.setattr(provider_worker, "publish_source_snapshot", hub_down)
    config = await rl_project(flash_client)
    error = await call_error(flash_client, "launch_training", config=config)
    assert "HTTP 503" in error and "nothing was resubmitted" in error and "list_runs" in error
    assert control_plane.transport.posts("/v1/runs") == 2  # the quote's dry-run, then one submit
    assert runs_on_the_plane(control_plane) == []


async def test_a_run_flash_did_not_create_is_retried_once_it_can_be(
    flash_client: Client, control_plane: ControlPlane
) -> None:
    config = await rl_project(flash_client)

    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503, json={"detail": "admission is busy"}, headers={"X-Flash-Submission-Outcome": "not-created"},
            request=request,
        )  # fmt: skip

    control_plane.transport.refuse_next[("POST", "/v1/runs")] = busy
    launched = await call(flash_client, "launch_training", config=config)
    assert control_plane.transport.posts("/v1/runs") == 3  # the quote, the refused submit, the retry
    [run] = runs_on_the_plane(control_plane)
    assert run["run_id"] == launched["run_id"]
    await call(flash_client, "cancel_run", run_id=run["run_id"])


async def test_pushing_to_a_standalone_plane_says_what_flash_said(flash_client: Client) -> None:
    await call(flash_client, "setup_project", directory="p", project=PROJECT)
    error = await call_error(flash_client, "push_environment", name="math", directory="p")
    assert "HTTP 501" in error
