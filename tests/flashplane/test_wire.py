"""The flash plane's wire format: payloads, heartbeat parsing and error mapping, checked against Flash's own code."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from flash.client.specs import spec_payload
from flash.providers._lifecycle.instances.poll import _format_heartbeat
from flash.schema import spec_and_train_keys_from_file

from flash_mcp.core.errors import UserError
from flash_mcp.domain.project.scaffold import scaffold_project
from flash_mcp.planes.flash import heartbeats
from flash_mcp.planes.flash.client import FlashClient, FlashError
from flash_mcp.planes.flash.credentials import Credentials, load_credentials
from flash_mcp.planes.flash.payload import run_body
from tests.conftest import PROJECT


@pytest.mark.parametrize("config", ["sft.toml", "rl.toml", "opd.toml"])
@pytest.mark.parametrize("gpu", [None, 2])
def test_the_run_body_is_what_flash_train_sends(tmp_path: Path, config: str, gpu: int | None) -> None:
    import tomllib

    scaffold_project(tmp_path, project=PROJECT, multi_turn=False, reasoning=False)
    path = tmp_path / "configs" / config
    text = path.read_text().replace('id = ""', 'id = "acme/proj/math"')
    if gpu:
        text += f'\n[gpu]\ncount = {gpu}\ntype = "H100"\n'
    path.write_text(text)
    spec, authored = spec_and_train_keys_from_file(str(path), project_required=True)
    body = run_body(tomllib.loads(text), dry_run=True, secret_folders=[])
    assert body["spec"] == spec_payload(spec, authored)
    assert ("count" in body["spec"]["gpu"]) == bool(gpu)
    assert body["client_train_schema"]["authored_keys"] == sorted(authored) and body["dry_run"] is True


def test_declared_secrets_travel_and_missing_ones_stop_the_launch(tmp_path: Path, monkeypatch) -> None:
    raw = {"project": PROJECT, "model": "Qwen/Qwen3.5-0.8B", "algorithm": "grpo",
           "environment": {"id": "acme/proj/math", "secrets": ["JUDGE_KEY"]}}  # fmt: skip
    with pytest.raises(UserError, match="missing declared environment secret\\(s\\): JUDGE_KEY"):
        run_body(raw, dry_run=False, secret_folders=[tmp_path])
    (tmp_path / ".env").write_text("JUDGE_KEY='from-dotenv'\nOTHER=x\n")
    monkeypatch.setenv("WANDB_API_KEY", "from-env")
    body = run_body(raw, dry_run=False, secret_folders=[tmp_path])
    assert body["runtime_secrets"] == {"JUDGE_KEY": "from-dotenv", "WANDB_API_KEY": "from-env"}


def test_log_lines_parse_into_metric_rows_and_gpu_telemetry_is_left_out() -> None:
    beat = {
        "stage": "rl_step",
        "attempt": 1,
        "step": 3,
        "reward": 0.5,
        "kl": 0.02,
        "reward_metrics": {"exact": 0.75},
        "gpu": {"device_name": "NVIDIA H100", "driver_version": "550.1", "torch_cuda": "12.4", "gpu_util_pct": 91},
    }
    rows = heartbeats.from_log(_format_heartbeat(beat) + "\nallocated 1x H100\n")  # fmt: skip
    assert rows == [{"attempt": 1, "step": 3, "reward": 0.5, "kl": 0.02, "exact": 0.75}]


def test_a_superseded_attempts_rows_are_marked() -> None:
    dead = heartbeats.from_console("console_rl_attempt0.txt", 'HEARTBEAT {"stage": "rl_step", "step": 5, "loss": 1.0}')
    live = heartbeats.from_heartbeat({"stage": "rl_step", "attempt": 1, "step": 2, "loss": 0.5})
    merged = heartbeats.merge([dead, live], live_attempt=1)
    assert merged == [
        {"step": 2, "loss": 0.5, "attempt": 1},
        {"step": 5, "loss": 1.0, "attempt": 0, "superseded": True},
    ]


def test_credentials_follow_the_cli_precedence(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FLASH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FREESOLO_API_KEY", raising=False)
    monkeypatch.delenv("FLASH_API_URL", raising=False)
    (tmp_path / "config.json").write_text(json.dumps({"api_key": "fslo_saved", "api_url": "https://plane.example/"}))
    saved = load_credentials()
    assert (saved.api_url, saved.api_key, saved.shadowed) == ("https://plane.example", "fslo_saved", False)
    monkeypatch.setenv("FLASH_API_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("FREESOLO_API_KEY", "fslo_env")
    env = load_credentials()
    assert (env.api_url, env.api_key, env.key_source, env.shadowed) == ("http://127.0.0.1:8080", "fslo_env",
                                                                       "FREESOLO_API_KEY", True)  # fmt: skip
    assert "fslo_env" not in repr(env)


def _client(handler) -> FlashClient:
    return FlashClient(Credentials("http://plane.test", "fslo_secret", "config.json"), httpx.MockTransport(handler))


def test_redirects_are_refused_not_followed() -> None:
    client = _client(lambda request: httpx.Response(307, headers={"location": "http://elsewhere/v1/me"}))
    with pytest.raises(FlashError, match="redirects are not followed"):
        client.request("GET", "/v1/me")


def test_a_body_of_the_wrong_shape_names_the_missing_key() -> None:
    client = _client(lambda request: httpx.Response(200, json={"runs": [None]}))
    with pytest.raises(FlashError, match=r"missing or malformed 'runs'.*/v1/health"):
        client.request("GET", "/v1/runs", require={"runs": [dict]})
    html = _client(lambda request: httpx.Response(200, text="<html>", headers={"content-type": "text/html"}))
    with pytest.raises(FlashError, match="did not return JSON"):
        html.request("GET", "/v1/runs")


def test_structured_details_keep_their_code_and_never_echo_the_key() -> None:
    detail = {"code": "deployment_cleanup_failed", "retryable": True, "message": "teardown of fslo_secret failed"}
    client = _client(lambda request: httpx.Response(502, json={"detail": detail}))
    with pytest.raises(FlashError) as caught:
        client.request("POST", "/v1/runs/x/cancel")
    assert caught.value.code == "deployment_cleanup_failed" and caught.value.status == 502
    assert "[deployment_cleanup_failed]" in str(caught.value) and "fslo_secret" not in str(caught.value)


def test_an_unreachable_plane_says_where_it_looked() -> None:
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(FlashError, match=r"cannot reach the Flash service at http://plane\.test.*FLASH_API_URL"):
        _client(refuse).request("GET", "/v1/me")
