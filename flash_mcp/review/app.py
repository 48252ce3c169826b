"""`flash-mcp review`: the review page's server on loopback, as the human's user, over the human's state.

Every request must name this server's exact Host (no DNS rebinding); every POST must come from its exact Origin
and carry the session's CSRF token; everything but the login link needs a session. Approving here is the human's
`flash-mcp approve`: in guarded mode it hands the run to the spend guard, whose page takes the passkey.
"""

from __future__ import annotations

import getpass
import socketserver
import urllib.parse
from collections.abc import Callable
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from flash_mcp.core.advice import human_command
from flash_mcp.core.errors import UserError
from flash_mcp.core.visible import visible_controls
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.loop import approvals, compare, envtest, evaluate, evaluations, run_pages
from flash_mcp.loop.spend import Spend, render
from flash_mcp.planes.base import Plane
from flash_mcp.review import pages
from flash_mcp.review.sessions import Sessions

COOKIE = "flash_review"
_HEADERS = {
    "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
}  # fmt: skip


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ReviewServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, home: Path, planes: Callable[[str | None], Plane], port: int = 0,
                 sessions: Sessions | None = None):  # fmt: skip
        """`planes(name)` builds (or returns) the plane of that name; None: the one whose runs the pages show."""
        super().__init__(("127.0.0.1", port), _Handler)
        self.home, self.planes, self.sessions = home, planes, sessions or Sessions()
        self.host = f"localhost:{self.server_address[1]}"
        self.origin = f"http://{self.host}"

    def plane(self) -> Plane:
        return self.planes(None)

    def login_link(self) -> str:
        return f"{self.origin}/login?token={self.sessions.login_link_token()}"


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._guarded(post=False)

    def do_POST(self) -> None:
        self._guarded(post=True)

    def _guarded(self, *, post: bool) -> None:
        try:
            if self.headers.get("Host") != self.server.host:
                raise Refused(421, f"this page answers only as {self.server.host}")
            path, _, query = self.path.partition("?")
            if path == "/login" and not post:
                return self._log_in(urllib.parse.parse_qs(query).get("token", [""])[0])
            session = self.server.sessions.get(self._cookie())
            if session is None:
                raise Refused(401, f"log in with the link `{human_command('review')}` printed (links work once)")
            if post:
                if self.headers.get("Origin") != self.server.origin:
                    raise Refused(403, "a form from another origin is refused")
                fields = self._form()
                if not self.server.sessions.csrf_ok(session, fields.get("csrf")):
                    raise Refused(403, "the form's CSRF token is missing or wrong; reload the page")
                return self._post(path, fields)
            self._get(path, urllib.parse.parse_qs(query), session.csrf)
        except Refused as exc:
            self._send(exc.status, pages.page("Refused", "", str(exc)))

    def _log_in(self, token: str) -> None:
        session_id = self.server.sessions.log_in(token)
        if session_id is None:
            again = human_command("review")
            raise Refused(403, f"this login link was used or has expired: run `{again}` for a new one")
        self.send_response(303)
        self.send_header("Location", "/")
        self.send_header("Set-Cookie", f"{COOKIE}={session_id}; HttpOnly; SameSite=Strict; Path=/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _get(self, path: str, query: dict[str, list[str]], csrf: str) -> None:
        parts = [p for p in path.split("/") if p]
        store = ApprovalStore(self.server.home)
        if not parts:
            pending = store.list("pending")
            body = f"<h2>Waiting for you</h2>{pages.proposals_table([p.public() for p in pending if p.live])}"
            return self._send(200, pages.page("Overview", body + self._runs_html()))
        if parts == ["proposals"]:
            return self._send(200, pages.page("Proposals", pages.proposals_table([p.public() for p in store.list()])))
        if len(parts) == 2 and parts[0] == "proposals":
            return self._proposal(parts[1], csrf)
        if parts == ["runs"]:
            return self._send(200, pages.page("Runs", self._runs_html()))
        if len(parts) == 3 and parts[0] == "runs" and parts[2] == "chart.png":
            return self._send(200, run_pages.chart_png(self.server.plane(), parts[1], self.server.home), "image/png")
        if len(parts) == 2 and parts[0] == "runs":
            return self._run(parts[1], csrf)
        if parts == ["spend"]:
            return self._spend(query.get("event", [""])[0] or None)
        if parts == ["evaluations"]:
            return self._evaluations()
        if len(parts) == 2 and parts[0] == "evaluations":
            return self._evaluation(parts[1])
        if parts == ["compare"]:
            return self._compare(query.get("a", [""])[0], query.get("b", [""])[0])
        raise Refused(404, "no such page")

    def _proposal(self, proposal_id: str, csrf: str, note: str | None = None) -> None:
        proposal = approvals.find(proposal_id)
        if proposal is None:
            raise Refused(404, f"no proposal {proposal_id}")
        left = Spend(self.server.home, self.server.plane()).report()
        after = [f"after it, today's budget leaves ${left.today.left_usd - proposal.quote_usd:.2f} "
                 f"and this month's ${left.month.left_usd - proposal.quote_usd:.2f}"]  # fmt: skip
        rehearsal = evaluations.latest_for_environment(
            self.server.home, proposal.environment_id, proposal.environment_digest
        )
        tested = envtest.proposal_standing(self.server.home, proposal)
        body = pages.proposal_detail(proposal.public(), csrf, after, proposal.denied_reason, rehearsal, tested)
        self._send(200, pages.page(f"Proposal {proposal.id}", body, note))

    def _run(self, run_id: str, csrf: str, note: str | None = None) -> None:
        plane = self.server.plane()
        try:
            summary = run_pages.summary_page(plane, run_id, self.server.home)
            samples = run_pages.samples_page(plane, run_id, None)
        except UserError as exc:
            raise Refused(404, str(exc)) from None
        body = (
            f"{pages.form(f'/runs/{run_id}/cancel', csrf, 'Cancel this run')}"
            f"<img src='/runs/{urllib.parse.quote(run_id)}/chart.png' alt='reward and loss by step, with noise bands'"
            f" width='900'><pre>{pages.escape(summary)}</pre><h2>Samples</h2><pre>{pages.escape(samples)}</pre>"
        )
        self._send(200, pages.page(f"Run {run_id}", body, note))

    def _evaluations(self) -> None:
        lines = evaluations.list_evaluations(self.server.home, 100, None).evaluations
        done = [e.eval_id for e in lines if e.state == "done"]
        body = f"<h2>Compare two</h2>{pages.compare_picker(done)}<h2>All</h2>{pages.evaluations_table(lines)}"
        self._send(200, pages.page("Evaluations", body))

    def _evaluation(self, eval_id: str) -> None:
        try:
            found = evaluations.report(evaluate.read_evaluation(self.server.home, eval_id), 0, evaluations.ROWS_MAX)
        except UserError as exc:
            raise Refused(404, str(exc)) from None
        self._send(200, pages.page(f"Evaluation {eval_id}", pages.evaluation_detail(found, visible_controls)))

    def _compare(self, a: str, b: str) -> None:
        """compare_evaluations' own answer (its verdict, never one made here), with the interval drawn."""
        done = [e.eval_id for e in evaluations.list_evaluations(self.server.home, 100, None).evaluations
                if e.state == "done"]  # fmt: skip
        picker = pages.compare_picker(done, a, b)
        try:
            found = compare.compare(self.server.home, a, b, flips_limit=compare.FLIPS_MAX,
                                    rescore=compare.through(self.server.planes))  # fmt: skip
        except UserError as exc:
            return self._send(200, pages.page("Comparison", picker, str(exc)))
        title = f"{b} against {a}"
        self._send(200, pages.page(title, picker + pages.comparison_detail(found, visible_controls)))

    def _runs_html(self) -> str:
        try:
            views, _ = self.server.plane().list_runs(None, 30, 0)
        except UserError as exc:
            return f"<h2>Runs</h2><p class='note'>{pages.escape(str(exc))}</p>"
        return f"<h2>Runs</h2>{pages.runs_table(views)}"

    def _spend(self, event: str | None) -> None:
        report = Spend(self.server.home, self.server.plane()).report()
        events = list(reversed(ApprovalStore(self.server.home).audit_events()))
        body = f"<pre>{pages.escape(render(report))}</pre><h2>Audit trail</h2>{pages.audit_table(events, event)}"
        self._send(200, pages.page("Spend and audit", body))

    def _post(self, path: str, fields: dict[str, str]) -> None:
        parts = [p for p in path.split("/") if p]
        who = {"name": "flash-mcp review", "user": getpass.getuser()}
        if len(parts) == 3 and parts[0] == "proposals" and parts[2] in ("approve", "deny"):
            proposal = approvals.find(parts[1])
            if proposal is None:
                raise Refused(404, f"no proposal {parts[1]}")
            try:
                if parts[2] == "deny":
                    approvals.deny(proposal, who, reason=fields.get("reason", "").strip()[:500] or None)
                    note = "denied; the agent reads your reason in list_proposals"
                else:
                    view = approvals.approve(proposal, who, self.server.planes(proposal.plane), how="review page")
                    note = f"approved: run {view.run_id} started" if view else "approved"
            except UserError as exc:
                note = str(exc)
            return self._proposal(proposal.id, self.server.sessions.get(self._cookie()).csrf, note)  # type: ignore[union-attr]
        if len(parts) == 3 and parts[0] == "runs" and parts[2] == "cancel":
            try:
                note = f"cancel sent: the run is {self.server.plane().cancel(parts[1]).state}"
            except UserError as exc:
                note = str(exc)
            return self._run(parts[1], self.server.sessions.get(self._cookie()).csrf, note)  # type: ignore[union-attr]
        raise Refused(404, "no such form")

    def _cookie(self) -> str | None:
        cookie = SimpleCookie(self.headers.get("Cookie") or "")
        return cookie[COOKIE].value if COOKIE in cookie else None

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= 64 << 10:
            raise Refused(413, "the form is too large")
        fields = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        return {key: values[0] for key, values in fields.items()}

    def _send(self, status: int, body: bytes, kind: str = "text/html; charset=utf-8") -> None:
        self.send_response(status)
        for name, value in {"Content-Type": kind, "Content-Length": str(len(body)), **_HEADERS}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
