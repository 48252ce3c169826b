"""The Flash plane: push, dry-run, submit, read and cancel runs on a Flash control plane (1.3.28 HTTP API)."""

from __future__ import annotations

import base64
import re
import time
import urllib.parse
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx

from flash_mcp.core.errors import UserError
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.domain.evaluation.record import EvalSpec
from flash_mcp.domain.evaluation.request import ConfigView, EvalApproval, EvalRequest
from flash_mcp.domain.packaging.package import build_package, normalize_name, tar_gz
from flash_mcp.planes.base import (
    TERMINAL,
    ChatAnswer,
    Checkpoint,
    Deployment,
    DryRun,
    Identity,
    LogWindow,
    PushRecord,
    PushResult,
    Quote,
    Rescore,
    RunView,
    SubmitRequest,
    Turns,
    WorkerArtifact,
)
from flash_mcp.planes.flash import evaluate, guarded, heartbeats, serving, views
from flash_mcp.planes.flash.capabilities import CAPABILITIES
from flash_mcp.planes.flash.client import FlashClient, FlashError
from flash_mcp.planes.flash.credentials import load_credentials
from flash_mcp.planes.flash.guarded import APPROVAL_REQUIRED, GUARDED, unguarded
from flash_mcp.planes.flash.payload import run_body
from flash_mcp.planes.flash.records import FlashRecords

PUSH_TIMEOUT = 1800.0
CANCEL_TIMEOUT, CANCEL_CONFIRM_S = 60.0, 120.0
# Retried only when Flash says the run was not created (X-Flash-Submission-Outcome: not-created).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SUBMIT_RETRY_DELAYS = (1.0, 2.0, 5.0)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class FlashPlane:
    name = "flash"
    capabilities = CAPABILITIES

    def __init__(self, home: Path, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep):  # fmt: skip
        self.home = home
        guard = guarded.guard_socket() if transport is None else None
        self.guarded = guard is not None
        if guard is not None:
            self.client = FlashClient(guarded.guarded_credentials(), guarded.guard_transport(guard))
        else:
            self.client = FlashClient(load_credentials(), transport)
        self.records = FlashRecords(home / "flash.db", self.client.api_url)
        self._sleep = sleep

    # -- identity and pushes -------------------------------------------------------------------

    @cached_property
    def _me(self) -> dict[str, Any]:
        return self.client.request("GET", "/v1/me", require={"kind": str, "key_prefix": str})

    def identity(self) -> Identity:
        me = self._me
        if me["kind"] == "internal":
            who = f"the operator of the self-hosted plane at {self.client.api_url} (internal key)"
        else:
            who = str(me.get("org_name") or me.get("org_slug") or me.get("email") or me["key_prefix"])
        shown = ("kind", "key_prefix", "org_slug", "org_name", "email", "project_id")
        detail: dict[str, Any] = {key: me[key] for key in shown if me.get(key)}
        detail.update(api_url=self.client.api_url, key_source=self.client.credentials.key_source)
        detail["spend_authority"] = GUARDED if self.guarded else unguarded()
        if self.client.credentials.shadowed:
            detail["warning"] = (
                "FREESOLO_API_KEY overrides a different key saved by `flash login`: runs land in the env var's org"
            )
        return Identity(plane=self.name, who=who, detail=detail)

    def guard_proposals(self, status: str | None) -> list[dict[str, Any]]:
        """The spend guard's proposals, where a guard holds the key; unguarded there are none."""
        return guarded.proposals(self.client, status) if self.guarded else []

    def push(self, project: Path, name: str, project_id: str | None) -> PushResult:
        slug = normalize_name(name)
        if slug is None:
            raise UserError(f"environment name {name!r} has no usable letters or digits; use e.g. 'math-env'")
        if not project_id or not _UUID.match(project_id.strip()):
            raise UserError(
                "project id must be a valid UUID: pass project=<project-uuid> (or set `project` in the configs); "
                "`flash projects list` shows yours"
            )
        package = build_package(project, slug, exclude=(self.home,))
        body = {
            "name": slug,
            "package_b64": base64.b64encode(tar_gz(package.members)).decode(),
            "project_id": project_id.strip().lower(),
        }
        result = self.client.request("POST", "/v1/envs", body=body, timeout=PUSH_TIMEOUT, require={"id": str})
        self.records.add_push(result["id"], package.digest, str(project))
        return PushResult(
            plane=self.name,
            environment_id=result["id"],
            digest=package.digest,
            files=len(package.members),
            bytes=package.total_bytes,
            packaged=package.listing(),
            account=self.identity().who,
        )

    def pushed(self, environment_id: str) -> PushRecord | None:
        return self.records.latest_push(environment_id)

    def push_unchanged(self, record: PushRecord) -> bool:
        return record.unchanged(exclude=(self.home,))

    # -- dry run and submit -------------------------------------------------------------------

    def dry_run(self, request: SubmitRequest) -> DryRun:
        body = run_body(request.raw, dry_run=True, secret_folders=request.secret_folders)
        status = self.client.request("POST", "/v1/runs", body=body, require={"run_id": str, "state": str})
        quote = status.get("estimated_cost_usd")
        if not isinstance(quote, (int, float)) or isinstance(quote, bool):
            raise FlashError("Flash's dry-run answered without estimated_cost_usd; the plane cannot quote this run")
        profile = status.get("workload_profile") if isinstance(status.get("workload_profile"), dict) else {}
        return DryRun(
            plane=self.name,
            rows=heartbeats.as_int(profile.get("examples")),
            steps=heartbeats.as_int((status.get("spec") or {}).get("train", {}).get("max_steps")),
            tokens=heartbeats.as_int(profile.get("tokens")),
            wall_time_s=None,
            trained_model=(status.get("spec") or {}).get("model"),
            quote=Quote(
                plane=self.name,
                usd=float(quote),
                label=f"Flash's quote from a server dry-run (recorded as dry_run run {status['run_id']})",
                account=self.identity().who,
            ),
            notes=views.dry_run_notes(status),
        )

    def submit(self, request: SubmitRequest) -> RunView:
        body = run_body(request.raw, dry_run=False, secret_folders=request.secret_folders)
        started = time.time()
        status = self._create_once(body, started)
        self.records.add_submission(status["run_id"], request.config_path)
        return self._view(status)

    def _create_once(self, body: dict[str, Any], started: float) -> dict[str, Any]:
        """POST /v1/runs, retried only when Flash says no run was created; an unknown outcome is looked up."""
        for delay in (*SUBMIT_RETRY_DELAYS, None):
            try:
                return self.client.request("POST", "/v1/runs", body=body, require={"run_id": str, "state": str})
            except FlashError as exc:
                if exc.code == APPROVAL_REQUIRED:
                    return self._propose_to_guard("/v1/runs", body)
                if exc.not_created and exc.status in RETRY_STATUSES and delay is not None:
                    self._sleep(delay)
                    continue
                if exc.not_created or _rejected(exc):
                    raise
                found = self._find_submitted(body["spec"], started)
                if found is not None:
                    return found
                raise FlashError(
                    f"{exc}. Flash did not confirm whether the run was created and no matching run is listed yet; "
                    "nothing was resubmitted. Check list_runs before launching again",
                    status=exc.status,
                    ambiguous=True,
                ) from None
        raise AssertionError("unreachable: the last attempt raises or returns")

    def _propose_to_guard(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Guarded mode: the run the guard submitted under the human's policy, or an error naming who approves."""
        spec = body.get("spec") or {}
        proposal = guarded.propose(self.client, path, body, f"{spec.get('algorithm', '?')} on {spec.get('model', '?')}")
        return self.client.request("GET", _run_path(str(proposal["run_id"])), require={"run_id": str, "state": str})

    def _find_submitted(self, spec: dict[str, Any], since: float) -> dict[str, Any] | None:
        """The run an unconfirmed submit created: same spec, created since the submit began."""
        try:
            runs = self._all_runs()
        except FlashError:
            return None
        matches = [
            run for run in runs
            if run.get("state") != "dry_run" and (run.get("created_at") or 0) >= since - 5 and _same_spec(spec, run)
        ]  # fmt: skip
        return max(matches, key=lambda run: run.get("created_at") or 0, default=None)

    # -- reading runs -------------------------------------------------------------------------

    def list_runs(self, state: str | None, limit: int, offset: int) -> tuple[list[RunView], int]:
        runs = [run for run in self._all_runs() if state is None or run.get("state") == state]
        configs = self.records.configs()
        return [self._view(run, configs) for run in runs[offset : offset + limit]], len(runs)

    def get_run(self, run_id: str) -> RunView:
        return self._view(self._status(run_id))

    def run_ids(self, prefix: str, limit: int = 20) -> list[str]:
        return [run["run_id"] for run in self._all_runs() if str(run["run_id"]).startswith(prefix)][:limit]

    def spec(self, run_id: str) -> dict[str, Any]:
        return self._status(run_id).get("spec") or {}

    def read_logs(self, run_id: str, offset: int, max_bytes: int) -> LogWindow:
        page = self.client.request(
            "GET", f"{_run_path(run_id)}/logs?offset={int(offset)}", require={"logs": str, "offset": int}
        )
        data = page["logs"].encode("utf-8")
        size = max(page["offset"], offset)
        if offset > size:
            raise UserError(f"offset {offset} is past the end of the log ({size} bytes)")
        window = views.clip_utf8(data, max_bytes)
        end = offset + len(window)
        more = end < size
        worker = [] if more else self._worker_artifacts(run_id)
        return LogWindow(
            run_id=run_id, offset=offset, next_offset=end, size=size, text=window.decode("utf-8"), more=more,
            worker=worker,
        )  # fmt: skip

    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        status = self._status(run_id)
        log = self.client.request("GET", f"{_run_path(run_id)}/logs?offset=0", require={"logs": str, "offset": int})
        consoles = [heartbeats.from_console(name, text) for name, text in self._worker(run_id).items()]
        sources = [heartbeats.from_log(log["logs"]), *consoles, heartbeats.from_heartbeat(status.get("last_heartbeat"))]
        return heartbeats.merge(sources, views.live_attempt(status))

    def samples(self, run_id: str, step: int | None) -> list[dict[str, Any]]:
        log = self.client.request("GET", f"{_run_path(run_id)}/logs?offset=0", require={"logs": str, "offset": int})
        return [sample for sample in views.samples_from_log(log["logs"]) if step is None or sample.get("step") == step]

    def checkpoints(self, run_id: str) -> list[Checkpoint]:
        listed = self.client.request("GET", f"{_run_path(run_id)}/checkpoints", require={"checkpoints": [dict]})
        found = [
            Checkpoint(id=f"{run_id}/step-{entry['step']}", step=int(entry["step"]), path=views.hub_path(entry))
            for entry in sorted(listed["checkpoints"], key=lambda e: e.get("step") or 0)
            if isinstance(entry.get("step"), int)
        ]
        status = self._status(run_id)
        if status.get("adapter_ref"):
            found.append(Checkpoint(id=str(status["adapter_ref"]), step=None, path=None))
        return found

    def cancel(self, run_id: str) -> RunView:
        try:
            status = self.client.request(
                "POST", f"{_run_path(run_id)}/cancel", timeout=CANCEL_TIMEOUT, require={"state": str}
            )
        except FlashError as exc:
            if not exc.ambiguous:
                raise
            status = self._await_terminal(run_id)
        return self._view(status)

    def _await_terminal(self, run_id: str) -> dict[str, Any]:
        """A cancel whose answer was lost: the run's own status says whether it landed."""
        deadline, state = time.monotonic() + CANCEL_CONFIRM_S, "unknown"
        while time.monotonic() < deadline:
            try:
                status = self._status(run_id)
            except FlashError:
                status = {}
            state = str(status.get("state") or state)
            if state in TERMINAL:
                return status
            self._sleep(2.0)
        raise FlashError(f"the cancel was sent but not confirmed; {run_id} is {state}. Call get_run, then cancel again")

    # -- evaluation (planes/flash/evaluate.py) -------------------------------------------------

    def plan_evaluation(self, config: ConfigView, request: EvalRequest) -> EvalApproval:
        return evaluate.plan(self, config, request)  # a deployment bills per token: always approved first

    def start_evaluation(self, config: ConfigView, request: EvalRequest, approval: EvalApproval | None,
                         store: ApprovalStore | None, how: str) -> str:  # fmt: skip
        if approval is None or store is None:
            raise UserError("a Flash-plane evaluation deploys a checkpoint: it starts only once approved")
        return evaluate.start(self, store, approval, how)

    def rescore(self, spec: EvalSpec, pairs: list[tuple[str, str]], turns: Turns = None) -> Rescore:
        return Rescore(None, "re-scoring through a fresh environment worker is local only; on the flash plane only "
                             "identical completions across the two sides were checked")  # fmt: skip

    # -- serving (see serving.py) ---------------------------------------------------------------

    def deploy(self, checkpoint_id: str, *, dry_run: bool = False) -> Deployment:
        return serving.deploy(self.client, checkpoint_id, dry_run=dry_run)

    def deployment(self, checkpoint_id: str) -> Deployment:
        return serving.deployment(self.client, checkpoint_id)

    def undeploy(self, checkpoint_id: str) -> Deployment:
        return serving.undeploy(self.client, checkpoint_id)

    def chat(self, checkpoint_id: str, messages: list[dict], *, temperature: float, max_tokens: int) -> ChatAnswer:
        return serving.chat(self.client, checkpoint_id, messages, temperature=temperature, max_tokens=max_tokens)

    def wait(self, seconds: float) -> None:
        self._sleep(seconds)

    # -- internals ----------------------------------------------------------------------------

    def _status(self, run_id: str) -> dict[str, Any]:
        try:
            return self.client.request("GET", _run_path(run_id), require={"run_id": str, "state": str})
        except FlashError as exc:
            if exc.status == 404:
                raise FlashError(
                    f"{exc}. list_runs shows the runs this key can see (runs belong to the key that launched them)",
                    status=404,
                ) from None
            raise

    def _all_runs(self) -> list[dict[str, Any]]:
        runs = self.client.request("GET", "/v1/runs", require={"runs": [dict]})["runs"]
        return sorted(runs, key=lambda run: run.get("created_at") or 0, reverse=True)

    def _worker(self, run_id: str) -> dict[str, str]:
        try:
            worker = self.client.request("GET", f"{_run_path(run_id)}/worker").get("worker")
        except FlashError as exc:
            if exc.status == 404 and "not found" in str(exc).lower():
                return {}
            raise
        return {str(k): v for k, v in worker.items() if isinstance(v, str) and v} if isinstance(worker, dict) else {}

    def _worker_artifacts(self, run_id: str) -> list[WorkerArtifact]:
        artifacts = self._worker(run_id)
        if not artifacts:
            return []
        live = views.live_attempt(self._status(run_id))
        return [views.artifact(name, text, live) for name, text in artifacts.items()]

    def _view(self, status: dict[str, Any], configs: dict[str, str] | None = None) -> RunView:
        return views.run_view(status, self.name, self.records.configs() if configs is None else configs)


def _run_path(run_id: str) -> str:
    if not run_id or not run_id.strip():
        raise UserError("run_id is empty; list_runs shows the runs on this plane")
    return f"/v1/runs/{urllib.parse.quote(run_id.strip(), safe='')}"


def _rejected(exc: FlashError) -> bool:
    """A 4xx other than a timeout or throttle: Flash refused the request, so no run exists."""
    return exc.status is not None and 400 <= exc.status < 500 and exc.status not in RETRY_STATUSES


def _same_spec(sent: dict[str, Any], run: dict[str, Any]) -> bool:
    stored = run.get("spec") if isinstance(run.get("spec"), dict) else {}
    for key in ("model", "algorithm", "project"):
        if sent.get(key) != stored.get(key):
            return False
    if (sent.get("environment") or {}).get("id") != (stored.get("environment") or {}).get("id"):
        return False
    stored_train = stored.get("train") or {}
    return all(stored_train.get(key) == value for key, value in (sent.get("train") or {}).items())
