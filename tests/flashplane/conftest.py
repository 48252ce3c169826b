"""The real Flash 1.3.28 control plane (`create_app()`), served in-process through httpx's ASGI transport.

Standalone mode with an internal key. Only the calls that leave the machine are stubbed: Hugging
Face (model revision, model geometry, source snapshot, worker artifacts, checkpoint listing) and Modal
(the job body `_run_job_inner`, which here writes the log lines and heartbeats a worker would, and the
instance listing cancel tears down).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import httpx
import pytest
from mcp import Client
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions
from selenium.webdriver.support.ui import WebDriverWait

from flash_mcp.core.settings import ServerSettings
from flash_mcp.guard.daemon import Guard
from flash_mcp.guard.upstream import Upstream
from flash_mcp.guard.web import ApprovalPageServer
from flash_mcp.planes.flash.plane import FlashPlane
from flash_mcp.server import build_server
from tests.conftest import ERAS, serving
from tests.flashplane.guarding import serving_guard

INTERNAL_KEY = "fslo_internal_operator_key_for_tests"
API_URL = "http://flash.test"
MODEL = "Qwen/Qwen3.5-0.8B"
GITHUB_ENV = "github:acme/envs@main:math"
AUTO_APPROVE = (
    '[approval]\nmode = "above_threshold"\nauto_approve_usd = 1000.0\n'
    "[budget]\nmax_run_usd = 1000.0\nmax_concurrent_runs = 10\n"
)


class AppTransport(httpx.BaseTransport):
    """A sync transport over `httpx.ASGITransport`: the app runs on its own event loop thread."""

    def __init__(self, app: Any):
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._asgi = httpx.ASGITransport(app=app)
        self.requests: list[tuple[str, str]] = []
        # Hooks keyed by (method, path), used once; a dry-run POST /v1/runs is keyed "/v1/runs#dry_run".
        # `refuse_next` answers instead of the app (nothing reaches
        # it); `fail_next` sees the app's real answer and may replace it or raise (a lost response).
        self.refuse_next: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}
        self.fail_next: dict[tuple[str, str], Callable[[httpx.Response], httpx.Response]] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.requests.append((request.method, request.url.path))
        key = (request.method, request.url.path + ("#dry_run" if re.search(rb'"dry_run":\s*true', body) else ""))
        refusal = self.refuse_next.pop(key, None)
        if refusal is not None:
            return refusal(request)

        async def forward() -> tuple[int, httpx.Headers, bytes]:
            inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._asgi.handle_async_request(inner)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = self._portal.call(forward)
        response = httpx.Response(status, headers=headers, content=content, request=request)
        hook = self.fail_next.pop(key, None)
        return hook(response) if hook else response

    def posts(self, path: str) -> int:
        return sum(1 for method, seen in self.requests if method == "POST" and seen == path)

    def close(self) -> None:
        self._portal_cm.__exit__(None, None, None)


@dataclasses.dataclass
class ControlPlane:
    transport: AppTransport
    data_dir: Path
    worker_artifacts: dict[str, str]
    checkpoints: list[dict[str, Any]]
    heartbeats: list[dict[str, Any]]

    def plane(self, home: Path) -> FlashPlane:
        return FlashPlane(home, transport=self.transport, sleep=lambda _: None)


def stub_control_plane_storage(monkeypatch: pytest.MonkeyPatch, data: Path) -> None:
    """The control plane keeps its runs, results and database under `data`."""
    from flash.runner.lifecycle import state
    from flash.server.platform import db

    monkeypatch.setattr(state, "RUNS_DIR", str(data / "runs"))
    monkeypatch.setattr(state, "RESULTS_DIR", str(data / "results"))
    monkeypatch.setattr(db, "DB_PATH", str(data / "server.db"))


def stub_hugging_face(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hugging Face, the one boundary the control plane cannot reach here: a pinned revision, catalog geometry."""
    from flash.core.catalog import MODELS
    from flash.engine.plan import vram
    from flash.runner.lifecycle import preparation

    def pinned_revision(spec, *, required=False):
        pin = {"model_revision": "a" * 40, "model_revision_auto": True, "model_revision_force_pin": False}
        return dataclasses.replace(spec, **pin)

    def catalog_geometry(model_id, revision="", *, strict=False):
        info = MODELS[model_id]
        return info.params_b, info.vocab_size, info.hidden_size, info.num_layers, info.num_attention_heads

    monkeypatch.setattr(preparation, "_resolve_model_revision", pinned_revision)
    monkeypatch.setattr(vram, "fetch_hf_model_geometry", catalog_geometry)


@pytest.fixture
def control_plane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlPlane]:
    from flash._internal.background import Supervisor
    from flash.providers._lifecycle.instances.poll import _format_heartbeat
    from flash.providers._lifecycle.net import worker as provider_worker
    from flash.providers.modal import api as modal_api
    from flash.providers.modal import checkpoint_upload
    from flash.runner.lifecycle.status import _update, record_heartbeat
    from flash.runner.results import checkpoints as checkpoint_service
    from flash.runner.supervise import lifecycle as supervision
    from flash.server.asgi.app import create_app
    from flash.server.platform import runtime
    from flash.snapshot.archive import descriptor_for_archive

    data = tmp_path / "control-plane"
    (data / "runs").mkdir(parents=True)
    for name, value in {
        "FLASH_STANDALONE": "1", "FREESOLO_INTERNAL_KEY": INTERNAL_KEY, "HF_TOKEN": "hf_dummy",
        "MODAL_TOKEN_ID": "ak-dummy", "MODAL_TOKEN_SECRET": "as-dummy", "FLASH_HF_NAMESPACE": "flash-tests",
        "FREESOLO_API_KEY": INTERNAL_KEY, "FLASH_API_URL": API_URL,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    stub_control_plane_storage(monkeypatch, data)
    world = ControlPlane(None, data, {}, [], [])  # type: ignore[arg-type]

    def snapshot(repo=None, **_):
        return descriptor_for_archive(b"flash source snapshot", "b" * 40).to_dict()

    def worker(spec, log_path, runtime_secrets=None, reserved_claim=None):
        """What a Modal worker and the poll loop would leave behind: log lines and heartbeats."""
        with open(log_path, "a") as log:
            print("allocated 1x H100 on modal at $3.95/hr (need >= 40 GB VRAM)", file=log)
            _update(spec.run_id, "running")
            print(f"starting phase=rl model={spec.model} gpu=H100", file=log)
            for beat in world.heartbeats:
                record_heartbeat(spec.run_id, {**beat, "run_id": spec.run_id})
                print(_format_heartbeat(beat), file=log)

    stub_hugging_face(monkeypatch)
    monkeypatch.setattr(provider_worker, "publish_source_snapshot", snapshot)
    monkeypatch.setattr(supervision, "_run_job_inner", worker)
    monkeypatch.setattr(runtime, "_worker_artifacts", lambda spec: dict(world.worker_artifacts))
    monkeypatch.setattr(checkpoint_service, "list_checkpoints", lambda spec: list(world.checkpoints))
    monkeypatch.setattr(modal_api, "list_instances", lambda *a, **k: [])  # the fake worker rented nothing
    monkeypatch.setattr(checkpoint_upload, "run_volumes", lambda run_id: [])

    app = create_app()
    app.state.training_jobs = Supervisor()
    world.transport = AppTransport(app)
    try:
        yield world
    finally:
        drained = app.state.training_jobs.close(10.0)
        world.transport.close()
        assert drained, "a control-plane job thread outlived the test"


@pytest.fixture
def flash_settings(workspace: Path, isolated_home: Path) -> ServerSettings:
    """The human's policy approves runs quoted up to $1000, so these tests exercise the plane, not approval."""
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text(AUTO_APPROVE, encoding="utf-8")
    return ServerSettings.create(workspace, home=isolated_home, plane="flash")


@pytest.fixture(params=ERAS)
async def flash_client(
    request: pytest.FixtureRequest, flash_settings: ServerSettings, control_plane: ControlPlane
) -> AsyncIterator[Client]:
    """An MCP client whose server's flash plane is the embedded control plane."""
    server = build_server(flash_settings, plane_factory=lambda: control_plane.plane(flash_settings.home))
    async with Client(server, mode=request.param) as connected:
        yield connected


@pytest.fixture
def guard(tmp_path: Path, control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    """The spend guard in front of this control plane, holding its key (tests/flashplane/guarding.py)."""
    with serving_guard(tmp_path, Upstream(API_URL, INTERNAL_KEY), control_plane.transport, monkeypatch) as served:
        yield served


@pytest.fixture
def page(guard: Guard) -> Iterator[ApprovalPageServer]:
    """The guard's page on a loopback port (guard/web.py)."""
    server = ApprovalPageServer(guard)
    with serving(server):
        yield server


SHOTS = Path(__file__).parents[2] / "test-output" / "screenshots"  # pages' screenshots, for a reviewer


def source(driver: webdriver.Chrome) -> str:
    """The page's HTML once the browser has a document for it: right after a navigation Chromium sometimes answers
    with an empty one (the old page detached, the new one not yet attached), which no page under test is."""
    return WebDriverWait(driver, 30).until(lambda d: d.page_source)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1280,800"):  # fmt: skip
        options.add_argument(flag)
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        pytest.fail("the page tests need Debian's browser: `sudo apt-get install -y chromium chromium-driver`")
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    authenticator = VirtualAuthenticatorOptions(
        transport="internal", has_resident_key=True, has_user_verification=True, is_user_verified=True
    )
    driver.add_virtual_authenticator(authenticator)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
