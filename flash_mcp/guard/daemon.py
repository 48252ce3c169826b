"""The guard's Unix-socket HTTP server: Flash forwarded with the key added, proposals, the human's decisions.

Routes: `/v1/...` as `routes.classify` says (re-encoded JSON, so Flash parses exactly what the guard checked);
`/guard/v1/status`; `/guard/v1/proposals` (the human's user proposes and reads); `.../approve` and `.../deny`
(only a decider: root or the guard's user, i.e. the human through sudo). On approval the guard prices the body
again with a dry run, checks its budgets, and submits exactly the body it stored, once.
"""

from __future__ import annotations

import json
import os
import re
import socketserver
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from flash_mcp.core.advice import INSTALLED_GUARD, guard_command
from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import load_human_settings
from flash_mcp.guard.peers import Role, default_deciders, peer_of, role_of
from flash_mcp.guard.policy import apply as apply_settings
from flash_mcp.guard.policy import loosens
from flash_mcp.guard.routes import classify
from flash_mcp.guard.store import GuardProposal, GuardStore, canonical
from flash_mcp.guard.upstream import Forwarder, load_upstream

MAX_BODY = 128 << 20
STRANDED = (
    "the guard stopped while submitting this proposal and Flash lists no run for it; nothing was submitted again. "
    "Check list_runs, then propose again if no run started"
)
_PROPOSAL = re.compile(r"/guard/v1/proposals/(gp-[0-9a-f]{12})(/approve|/deny)?")


class GuardError(Exception):
    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class Guard:
    """The guard's decisions, independent of the socket (tests call it through the socket all the same)."""

    def __init__(self, home: Path, human_uid: int, transport: httpx.BaseTransport | None = None,
                 deciders: frozenset[int] | None = None, human_command: str = str(INSTALLED_GUARD)):  # fmt: skip
        self.home, self.human_uid, self.store = home, human_uid, GuardStore(home)
        self.human_command = human_command  # the guard's own root-owned flash-mcp, from the install
        self.deciders = default_deciders(human_uid) if deciders is None else deciders - {human_uid}
        self._transport = transport
        self.forwarder: Forwarder | None = None
        self.page_url: str | None = None  # the approval page, once it serves (web.py)
        self.passkey_registered = lambda: False  # set by the page server: approvals then take the passkey
        self.enrolment: Any = None  # the page server's one-time enrolment tokens

    def flash(self) -> Forwarder:
        """The forwarder, with the key `guard login` saved (read on first use, so a login applies at once)."""
        if self.forwarder is None and (upstream := load_upstream(self.home)) is not None:
            self.forwarder = Forwarder(upstream, self._transport)
        if self.forwarder is None:
            raise GuardError(503, "guard_not_logged_in",
                             f"the guard holds no Flash key: the human runs {self.sudo('login')}")  # fmt: skip
        return self.forwarder

    def propose(self, request: dict[str, Any]) -> dict[str, Any]:
        path, body = request.get("path"), request.get("body")
        if (
            not isinstance(path, str)
            or not isinstance(body, dict)
            or classify("POST", path, canonical(body)).verdict != "approval"
        ):
            raise GuardError(400, "not_a_spending_request", "propose the exact body of a real submit or deployment")
        quote = self._quote(path, body)
        summary = str(request.get("summary") or "")
        proposal = self.store.propose(path, body, quote, summary).public()
        if self._auto_approves(quote):
            return {**self.approve(proposal["id"], proposal["digest"]), "approve_with": "the guard's own policy"}
        return {**proposal, "approve_with": self.approve_with(proposal["id"]), "page": self.index_url()}

    def index_url(self) -> str | None:
        """The page listing all the guard holds (proposals, budgets, audit trail), while it serves."""
        return f"{self.page_url}/" if self.page_url else None

    def _auto_approves(self, usd: float) -> bool:
        """The human's policy, as the guard holds it: above_threshold approves up to auto_approve_usd in budget."""
        approval = load_human_settings(self.home).approval
        if approval.mode != "above_threshold" or usd > approval.auto_approve_usd:
            return False
        try:
            self._within_budget(usd)
        except GuardError:
            return False
        return True

    def change_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Tightening applies now; loosening waits for the passkey where one is registered."""
        looser = loosens(load_human_settings(self.home), changes)
        if looser and self.passkey_registered() and self.page_url:
            change_id, _ = self.store.add_change({"settings": changes})
            return {"status": "pending", "looser": looser, "confirm_at": f"{self.page_url}/changes/{change_id}"}
        apply_settings(self.home, changes)
        self.store.audit("settings", changes=changes, looser=looser)
        return {"status": "applied", "looser": looser}

    def approve_with(self, proposal_id: str) -> str:
        """How the human approves this proposal: the page with the passkey, or sudo where none is registered."""
        if self.passkey_registered() and self.page_url:
            return f"the passkey, on {self.page_url}/proposals/{proposal_id}"
        return self.sudo("approve", proposal_id)

    def sudo(self, *arguments: str) -> str:
        """A guard command for the human, quoted for the message: `sudo …/flash-mcp guard approve gp-…`."""
        return f"`{guard_command(*arguments, program=Path(self.human_command))}`"

    def listing(self, status: str | None = None) -> list[dict[str, Any]]:
        """The proposals as the MCP server lists them: no bodies, and for a pending one how the human approves."""
        shown = []
        for proposal in self.store.list(status):
            view = {k: v for k, v in proposal.public().items() if k != "body"}
            live = proposal.status == "pending" and proposal.expires_at > time.time()
            view.update(live=live, approve_with=self.approve_with(proposal.id) if live else None)
            shown.append(view)
        return shown

    def _quote(self, path: str, body: dict[str, Any]) -> float:
        """Flash's own price for this body (a dry run); a deployment bills per token, so it is quoted 0."""
        if path != "/v1/runs":
            return 0.0
        status, answer = self.flash().json("POST", path, {**body, "dry_run": True})
        usd = answer.get("estimated_cost_usd") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(usd, int | float) or isinstance(usd, bool):
            raise GuardError(400, "no_quote", f"Flash did not price this request (HTTP {status}): {str(answer)[:300]}")
        return float(usd)

    def approve(self, proposal_id: str, digest: str) -> dict[str, Any]:
        proposal = self.store.get(proposal_id)
        if proposal is None:
            raise GuardError(404, "no_proposal", f"no guard proposal {proposal_id}")
        self._within_budget(proposal.quote_usd)
        if not self.store.claim(proposal_id, digest):
            problem = f"{proposal_id} is {proposal.status} or expired, or its digest is not {digest[:12]}…"
            raise GuardError(409, "not_pending", problem)
        try:
            status, answer = self.flash().json("POST", proposal.path, proposal.body)
        except httpx.TransportError:  # the outcome is unknown: look it up, never send it again
            self.reconcile()
            return self.store.get(proposal_id).public()  # type: ignore[union-attr]
        if status >= 300 or not isinstance(answer, dict):
            self.store.settle(proposal_id, "failed", error=f"HTTP {status}: {str(answer)[:300]}")
        else:
            self.store.record_spend(proposal_id, proposal.quote_usd)
            self.store.settle(proposal_id, "submitted", run_id=str(answer.get("run_id") or "") or None)
        return self.store.get(proposal_id).public()  # type: ignore[union-attr]

    def reconcile(self) -> list[GuardProposal]:
        """After a crash mid-submit: a proposal left `submitting` is matched to the run Flash lists for it, or
        marked `unknown`; it is never submitted again."""
        stranded = self.store.list("submitting")
        if not stranded:
            return []
        status, listed = self.flash().json("GET", "/v1/runs", None)
        runs = listed.get("runs") if status == 200 and isinstance(listed, dict) else None
        for proposal in stranded:
            run = _submitted_run(proposal, runs if isinstance(runs, list) else [])
            if run is not None:
                self.store.record_spend(proposal.id, proposal.quote_usd)
                self.store.settle(proposal.id, "submitted", run_id=str(run.get("run_id")))
            else:
                self.store.settle(proposal.id, "unknown", error=STRANDED)
        return [self.store.get(p.id) for p in stranded]  # type: ignore[misc]

    def _within_budget(self, usd: float) -> None:
        for label, limit, total in self.budgets(usd):
            if total > limit:
                raise GuardError(402, "over_budget", f"${usd:.2f} would pass the guard's {label} budget (${limit:.2f})")

    def budgets(self, usd: float = 0.0) -> list[tuple[str, float, float]]:
        """(budget, its limit, what counts against it with `usd` more): the per-run cap against `usd` alone, the
        daily and monthly budgets against the guard's own ledger plus `usd`."""
        budget = load_human_settings(self.home).budget
        today, month = self.store.spent()
        return [("per-run", budget.max_run_usd, usd), ("daily", budget.daily_usd, today + usd),
                ("monthly", budget.monthly_usd, month + usd)]  # fmt: skip

    def deny(self, proposal_id: str, reason: Any = None) -> dict[str, Any]:
        """The human's no, with the reason (if any) the agent reads in list_proposals."""
        if reason is not None and not isinstance(reason, str):
            raise GuardError(400, "bad_reason", "the reason for a denial is text")
        if not self.store.deny(proposal_id, reason):
            raise GuardError(409, "not_pending", f"{proposal_id} is not pending")
        return self.store.get(proposal_id).public()  # type: ignore[union-attr]

    def status(self) -> dict[str, Any]:
        today, month = self.store.spent()
        pending = len(self.store.list("pending"))
        return {"guarded": True, "logged_in": load_upstream(self.home) is not None, "page": self.page_url,
                "passkey": self.passkey_registered(), "human_uid": self.human_uid,
                "pending": pending, "spent_today_usd": today, "spent_month_usd": month}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    server: GuardServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # the audit trail records what matters
        return

    def _serve(self) -> None:
        guard = self.server.guard
        role = role_of(peer_of(self.connection), guard.human_uid, guard.deciders)
        try:
            body = self._body()
            if role == "stranger":
                raise GuardError(403, "not_your_guard", "this guard serves another user")
            if self.path.startswith("/guard/"):
                self._reply(
                    200, json.dumps(self._guard_route(role, body)).encode(), {"Content-Type": "application/json"}
                )
            else:
                self._forward(body)
        except UserError as exc:  # a setting the guard cannot take, its file left as it was
            self._refuse(GuardError(400, "refused", str(exc)))
        except GuardError as exc:
            self._refuse(exc)

    def _refuse(self, exc: GuardError) -> None:
        outcome = {"X-Flash-Submission-Outcome": "not-created"}
        payload = {"detail": {"code": exc.code, "message": exc.detail}}
        self._reply(exc.status, json.dumps(payload).encode(), {"Content-Type": "application/json", **outcome})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise GuardError(413, "too_large", f"request bodies are capped at {MAX_BODY >> 20} MiB")
        return self.rfile.read(length) if length else b""

    def _guard_route(self, role: Role, body: bytes) -> dict[str, Any]:
        guard, path = self.server.guard, self.path.split("?", 1)[0]
        if path == "/guard/v1/status" and self.command == "GET":
            return guard.status()
        if path == "/guard/v1/passkeys/enrol" and self.command == "POST":
            return self._enrol(role)
        if path == "/guard/v1/settings" and self.command == "POST":
            if role != "decider":
                raise GuardError(403, "human_only", "only the human changes the guard's settings (with sudo)")
            return guard.change_settings(json_object(body).get("set") or {})
        if path == "/guard/v1/proposals":
            if self.command == "POST":
                return guard.propose(json_object(body))
            return {"proposals": guard.listing(self.path.partition("?status=")[2] or None)}
        match = _PROPOSAL.fullmatch(path)
        if match is None:
            raise GuardError(404, "no_route", f"no guard route {self.command} {path}")
        proposal_id, act = match.groups()
        if act is None:
            found = guard.store.get(proposal_id)
            if found is None:
                raise GuardError(404, "no_proposal", f"no guard proposal {proposal_id}")
            return found.public()
        if role != "decider":
            raise GuardError(403, "human_only", f"only the human decides: {guard.sudo(act[1:], proposal_id)}")
        if act == "/deny":
            return guard.deny(proposal_id, json_object(body).get("reason"))
        if guard.passkey_registered():
            raise GuardError(403, "passkey_required", f"approve it with {guard.approve_with(proposal_id)}")
        return guard.approve(proposal_id, str(json_object(body).get("digest") or ""))

    def _enrol(self, role: Role) -> dict[str, Any]:
        guard = self.server.guard
        if role != "decider":
            raise GuardError(403, "human_only", f"only the human registers the passkey: {guard.sudo('passkey')}")
        if guard.page_url is None or guard.enrolment is None:
            raise GuardError(503, "no_page", "the guard's approval page is not serving")
        if guard.passkey_registered():  # another passkey loosens: the current one confirms it first
            change_id, _ = guard.store.add_change({"passkey": "add"})
            return {"url": f"{guard.page_url}/changes/{change_id}"}
        return {"url": f"{guard.page_url}/enrol?token={guard.enrolment()}"}

    def _forward(self, body: bytes) -> None:
        route = classify(self.command, self.path, body)
        if route.verdict == "approval":
            raise GuardError(403, "guard_approval_required",
                             "this spends money: it runs only as a guard proposal the human approves")  # fmt: skip
        if route.verdict == "refuse":
            raise GuardError(403, "refused_by_guard", route.reason)
        content = canonical(json_object(body)) if body else None
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "x-freesolo-project-id")}
        status, kept, answer = self.server.guard.flash().send(self.command, self.path, content, headers)
        self._reply(status, answer, kept)

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _submitted_run(proposal: GuardProposal, runs: list[Any]) -> dict[str, Any] | None:
    """The run this proposal's submit created: same model, algorithm and environment, created once it was claimed."""
    sent = proposal.body.get("spec") if isinstance(proposal.body.get("spec"), dict) else {}
    since = (proposal.decided_at or proposal.created_at) - 5

    def same(run: Any) -> bool:
        stored = run.get("spec") if isinstance(run, dict) and isinstance(run.get("spec"), dict) else {}
        keys = all(sent.get(key) == stored.get(key) for key in ("model", "algorithm", "project"))
        env = (sent.get("environment") or {}).get("id") == (stored.get("environment") or {}).get("id")
        fresh = isinstance(run.get("created_at"), int | float) and run["created_at"] >= since
        return keys and env and fresh and run.get("state") != "dry_run"

    matches = [run for run in runs if same(run)]
    return max(matches, key=lambda run: run["created_at"], default=None)


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (empty: {}), or a 400."""
    try:
        value = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise GuardError(400, "bad_json", "the body is not JSON") from None
    if not isinstance(value, dict):
        raise GuardError(400, "bad_json", "the body is not a JSON object")
    return value


class GuardServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, socket_path: Path, guard: Guard):
        self.guard = guard
        socket_path.unlink(missing_ok=True)
        super().__init__(str(socket_path), _Handler)
        os.chmod(socket_path, 0o666)  # anyone may connect; the kernel's peer credentials decide what they may do
