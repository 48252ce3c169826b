"""The real Flash 1.3.28 control plane in HOSTED mode, with the world outside it stood in for.

What stays real: `create_app()` and everything behind it (auth, project and environment checks,
publishing to the hub with git, admission, pricing, allocation, the supervisor, settlement,
billing). What is stood in for, each at the point where Flash leaves its own process:

- the Freesolo backend (key verify, projects, environment registry, billing, run mirroring): a
  small HTTP server on 127.0.0.1 that Flash reaches through its own urllib client;
- GitHub (the environment hub): a local bare git repository that Flash's own `git clone/push` use,
  and `git rev-parse` on it for the commit the REST API would return;
- Hugging Face (model revision and geometry, source snapshot, package staging, worker artifacts,
  checkpoint listing) as in the standalone fixture;
- Modal: `ModalProvider.submit_attempt` is a worker that reports heartbeats, waits until the test
  finishes it (or a cancel terminates its sandbox), and returns the metrics a finished worker returns;
  sandbox status/terminate/list answer as if the sandbox is gone.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from flash_mcp.planes.flash.plane import FlashPlane
from tests.conftest import PROJECT
from tests.flashplane.conftest import API_URL, AppTransport, stub_control_plane_storage, stub_hugging_face

USER_KEY = "fslo_acmeuser_key_for_hosted_tests"
OPERATOR_KEY = "fslo_internal_operator_key_hosted"
ORG = {"id": "org-acme", "slug": "acme", "name": "Acme Labs"}
PROJECT_SLUG = "starter"
WORKER_WAIT_S = 120.0  # a gate, not a pause: the test finishes the worker once it has seen it run


class FreesoloBackend(ThreadingHTTPServer):
    """The Freesolo backend as Flash calls it: verify keys, own projects, mirror envs, bill runs."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _BackendHandler)
        self.environments: dict[str, str] = {}  # slug -> project id
        self.charges: list[dict[str, Any]] = []
        self.prechecks: list[dict[str, Any]] = []
        self.calls: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, method: str, path: str, bearer: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append(f"{method} {path}")
        internal = bearer == OPERATOR_KEY
        if path == "/api/auth/verify":
            if bearer != USER_KEY:
                return 401, {"detail": "invalid key"}
            return 200, {"email": "ml@acme.test", "org": ORG, "api_key": {"id": "key-1", "key_prefix": "fslo_acmeuser"}}
        if path == f"/api/projects/{PROJECT}" and bearer == USER_KEY:
            return 200, {"project": {"id": PROJECT, "slug": PROJECT_SLUG, "org_id": ORG["id"], "name": "Starter"}}
        if path.startswith("/api/projects/"):
            return 404, {"detail": "project not found"}
        if not internal:
            return 401, {"detail": "internal routes need the operator key"}
        if path == "/api/flash/projects/validate/internal":
            if body.get("projectId") != PROJECT or body.get("orgId") != ORG["id"]:
                return 404, {"detail": "no such project"}
            return 200, {"ok": True, "projectId": PROJECT, "orgId": ORG["id"], "projectSlug": PROJECT_SLUG}
        if path == "/api/flash/environments/internal" and method == "POST":
            self.environments[str(body.get("slug"))] = str(body.get("projectId"))
            return 200, {"ok": True}
        if path == "/api/flash/environments/validate/internal":
            if self.environments.get(str(body.get("slug"))) != body.get("projectId"):
                return 404, {"detail": "environment does not belong to the requested project"}
            return 200, {"ok": True}
        if path == "/api/billing/training-usage/precheck":
            self.prechecks.append(body)
            return 200, {"ok": True}
        if path == "/api/billing/training-usage/internal":
            self.charges.append(body)
            return 200, {"ok": True, "charged": True}
        return 200, {"ok": True}  # run mirroring, events, checkpoint records, environment use


class _BackendHandler(BaseHTTPRequestHandler):
    server: FreesoloBackend

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        status, payload = self.server.answer(self.command, self.path.split("?")[0], bearer, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


class ModalWorker:
    """Modal's side of an attempt: a sandbox that trains until the test finishes it or a cancel terminates it."""

    def __init__(self) -> None:
        self.heartbeats: list[dict[str, Any]] = []
        self.final_step = 0
        self.wall_seconds = 0.0
        self.finished = False
        self.sandboxes: dict[str, threading.Event] = {}  # set when the sandbox stops: finished or terminated
        self._lock = threading.Lock()

    def finish(self) -> None:
        """Let every attempt (running or still to come) finish training."""
        with self._lock:
            self.finished = True
            for stopped in self.sandboxes.values():
                stopped.set()

    def terminate(self, instance_id: str) -> None:
        with self._lock:
            self.sandboxes.setdefault(instance_id, threading.Event()).set()

    def submit_attempt(self, provider: Any, spec: Any, *, log=None, on_handle=None, attempt: int = 0,
                       runtime_secrets=None, source_snapshot=None, _deadline_at=None) -> Any:  # fmt: skip
        from flash.providers._lifecycle.instances.poll import _format_heartbeat
        from flash.providers.core.base import JobHandle, PollResult
        from flash.providers.modal.auth import scope_fingerprint
        from flash.providers.modal.handles import ModalJobHandle
        from flash.providers.modal.pricing import hourly_rate
        from flash.runner.lifecycle.status import record_heartbeat
        from flash.snapshot.archive import TERMINAL_ATTESTATION_KEY, source_attestation

        sandbox = f"sb-{spec.run_id.replace('flash-', '')}-{attempt}"
        with self._lock:
            stopped = self.sandboxes.setdefault(sandbox, threading.Event())
            if self.finished:
                stopped.set()
        handle = ModalJobHandle(
            instance_id=sandbox, gpu=spec.gpu.type, hourly_usd=hourly_rate(spec.gpu.type), attempt=attempt,
            started_ts=time.time(), name=f"flash-{spec.run_id}-{attempt}", run_id=spec.run_id,
            hf_repo=spec.train.hf_repo, phase=spec.phase, gpu_count=1, scope=scope_fingerprint(),
        )  # fmt: skip
        on_handle(JobHandle.from_dict(handle.to_dict()))
        for beat in self.heartbeats:
            beat = {**beat, "attempt": attempt, "ts": time.time()}
            record_heartbeat(spec.run_id, {**beat, "run_id": spec.run_id})
            print(_format_heartbeat(beat), file=log, flush=True)
        stopped.wait(WORKER_WAIT_S)
        if not self.finished:
            return PollResult(False, failure="job_preempted", detail="sandbox terminated")
        attestation = source_attestation(source_snapshot, run_id=spec.run_id, attempt=attempt)
        metrics = {"step": self.final_step, "wall_seconds": self.wall_seconds, TERMINAL_ATTESTATION_KEY: attestation}
        return PollResult(True, metrics=metrics)


@dataclasses.dataclass
class HostedPlane:
    transport: AppTransport
    backend: FreesoloBackend
    hub: Path
    worker: ModalWorker
    checkpoints: list[dict[str, Any]]

    def plane(self, home: Path) -> FlashPlane:
        return FlashPlane(home, transport=self.transport, sleep=lambda _: None)

    def hub_files(self, slug: str) -> list[str]:
        listed = subprocess.run(["git", "-C", str(self.hub), "ls-tree", "-r", "--name-only", "main", slug],
                                capture_output=True, text=True, check=True)  # fmt: skip
        return listed.stdout.split()


def _bare_hub(root: Path) -> Path:
    """freesolo-co/environment-hub: a bare repository with one commit on main."""
    hub, seed = root / "environment-hub.git", root / "hub-seed"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(hub)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    (seed / "README.md").write_text("environment hub\n")
    for args in (["add", "README.md"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "seed"],
                 ["push", "-q", str(hub), "main"]):  # fmt: skip
        subprocess.run(["git", "-C", str(seed), *args], check=True)
    return hub


@pytest.fixture(name="hosted_plane")
def hosted_plane_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HostedPlane]:
    from flash._internal.background import Supervisor
    from flash.envs.loading import loader
    from flash.providers._lifecycle.net import worker as provider_worker
    from flash.providers.modal import api as modal_api
    from flash.providers.modal import checkpoint_upload
    from flash.providers.modal.provider import ModalProvider
    from flash.runner.accounting import artifacts
    from flash.runner.results import checkpoints as checkpoint_service
    from flash.server.asgi.app import create_app
    from flash.server.domain.registry import envs
    from flash.server.platform import runtime
    from flash.snapshot.archive import descriptor_for_archive

    data = tmp_path / "control-plane"
    (data / "runs").mkdir(parents=True)
    backend = FreesoloBackend()
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    hub = _bare_hub(tmp_path)
    monkeypatch.delenv("FLASH_STANDALONE", raising=False)
    for name, value in {
        "FREESOLO_INTERNAL_KEY": OPERATOR_KEY, "FREESOLO_BASE_URL": backend.url, "GITHUB_TOKEN": "gh-test-token",
        "HF_TOKEN": "hf_dummy", "MODAL_TOKEN_ID": "ak-dummy", "MODAL_TOKEN_SECRET": "as-dummy",
        "FLASH_HF_NAMESPACE": "flash-tests", "FREESOLO_API_KEY": USER_KEY, "FLASH_API_URL": API_URL,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    stub_control_plane_storage(monkeypatch, data)
    world = HostedPlane(None, backend, hub, ModalWorker(), [])  # type: ignore[arg-type]

    # GitHub: the hub repository is the local bare repo; the REST API's commit lookup is rev-parse.
    monkeypatch.setattr(envs, "_repo_url", lambda repo: str(hub))

    def ref_sha(parsed, pinned_sha=None, **_):
        if pinned_sha and re.fullmatch(r"[0-9a-f]{40}", pinned_sha):
            return pinned_sha
        found = subprocess.run(["git", "-C", str(hub), "rev-parse", parsed.ref], capture_output=True, text=True)
        if found.returncode:
            raise RuntimeError(f"GitHub: no ref {parsed.ref}")
        return found.stdout.strip()

    monkeypatch.setattr(loader, "_resolve_ref_sha", ref_sha)

    stub_hugging_face(monkeypatch)

    def staged(spec, *, deadline_at=None):
        """Package staging uploads to and re-reads from the run's HF artifact repo: pin the commit only."""
        sha = ref_sha(loader._parse_github_environment_ref(loader.managed_slug_to_github_ref(spec.environment.id)))
        return dataclasses.replace(spec, environment=dataclasses.replace(spec.environment, resolved_sha=sha))

    monkeypatch.setattr(provider_worker, "publish_source_snapshot",
                        lambda repo=None, **_: descriptor_for_archive(b"flash source", "b" * 40).to_dict())  # fmt: skip
    monkeypatch.setattr(artifacts, "stage_environment_package", staged)
    monkeypatch.setattr(runtime, "_worker_artifacts", lambda spec: {})
    monkeypatch.setattr(checkpoint_service, "list_checkpoints", lambda spec: list(world.checkpoints))

    # Modal.
    worker = world.worker
    monkeypatch.setattr(ModalProvider, "submit_attempt",
                        lambda self, spec, **kw: worker.submit_attempt(self, spec, **kw))  # fmt: skip
    monkeypatch.setattr(modal_api, "terminate", worker.terminate)
    monkeypatch.setattr(modal_api, "get_instance", lambda instance_id, **_: None)
    monkeypatch.setattr(modal_api, "list_instances", lambda *a, **k: [])
    monkeypatch.setattr(checkpoint_upload, "run_volumes", lambda run_id: [])
    monkeypatch.setattr(checkpoint_upload, "cleanup", lambda handle: None)

    app = create_app()
    app.state.training_jobs = Supervisor()
    world.transport = AppTransport(app)
    try:
        yield world
    finally:
        worker.finish()
        drained = app.state.training_jobs.close(30.0)
        world.transport.close()
        backend.shutdown()
        backend.server_close()
        assert drained, "a control-plane job thread outlived the test"
