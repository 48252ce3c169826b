"""The guard's page on loopback: what it holds (its proposals, budgets and spend, audit trail), a proposal to
approve with the passkey or deny with a reason, passkey enrolment, and settings changes to confirm.

Served by the guard (its own user) on http://localhost:PORT, with no third-party assets. Every request must
name that exact Host, every POST must come from that exact Origin, and an approval is a WebAuthn assertion on
the proposal's own challenge (passkeys.py), so a look-alike page on another port collects nothing usable.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import socketserver
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.guard.daemon import Guard, GuardError, json_object
from flash_mcp.guard.passkeys import PasskeyError, Passkeys, parse_credential
from flash_mcp.guard.policy import apply as apply_settings
from flash_mcp.guard.store import REASON_MAX, GuardProposal

SHOWN = 200  # the index shows this many proposals of each kind (pending, decided) and audit events

_PROPOSAL = re.compile(r"/(?:api/)?proposals/(gp-[0-9a-f]{12})(/options|/approve|/deny)?")
_CHANGE = re.compile(r"/(?:api/)?changes/(gc-[0-9a-f]{12})(/options|/confirm)?")
_SCRIPT = """
const say = (text) => { document.getElementById('status').textContent = text; };
async function post(path, body) {
  const answer = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                    body: JSON.stringify(body || {})});
  const data = await answer.json();
  if (!answer.ok) throw new Error(data.error || answer.statusText);
  return data;
}
async function enrol(token) {
  try {
    const options = await post('/api/enrol/options', {token});
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
    const made = await navigator.credentials.create({publicKey});
    await post('/api/enrol', {token, credential: made.toJSON()});
    say('passkey registered');
  } catch (e) { say('not registered: ' + e.message); }
}
async function approve(id) {
  try {
    const options = await post('/api/proposals/' + id + '/options');
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
    const got = await navigator.credentials.get({publicKey});
    const done = await post('/api/proposals/' + id + '/approve', got.toJSON());
    say(done.status + (done.run_id ? ': run ' + done.run_id : ''));
  } catch (e) { say('not approved: ' + e.message); }
}
async function confirmChange(id) {
  try {
    const options = await post('/api/changes/' + id + '/options');
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
    const got = await navigator.credentials.get({publicKey});
    const done = await post('/api/changes/' + id + '/confirm', got.toJSON());
    if (done.next) { window.location = done.next; return; }
    say(done.status);
  } catch (e) { say('not confirmed: ' + e.message); }
}
async function deny(id) {
  try {
    const done = await post('/api/proposals/' + id + '/deny', {reason: document.getElementById('reason').value});
    say(done.status);
  } catch (e) { say('not denied: ' + e.message); }
}
"""


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<meta name='viewport' content='width=device-width'><style>body{font:16px system-ui;max-width:60rem;"
        "margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:1rem;overflow:auto;white-space:pre-wrap}"
        "button{font-size:1rem;padding:.5rem 1rem;margin-right:1rem}table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #ddd;padding:.35rem;text-align:left;vertical-align:top}"
        "textarea{width:100%;font:inherit}:focus{outline:3px solid #1a73e8}</style></head><body>"
        "<nav aria-label='the guard'><a href='/'>Everything the guard holds: proposals, budgets, audit trail</a></nav>"
        f"<main><h1>{html.escape(title)}</h1>{body}<p role='status' aria-live='polite' id='status'></p></main>"
        f"<script>{_SCRIPT}</script></body></html>"
    ).encode()


def _when(at: float | None) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


def _table(caption: str, headers: list[str], rows: list[list[str]]) -> str:
    """A table whose cells are already escaped HTML."""
    head = "".join(f"<th scope='col'>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    titled = f"<caption>{html.escape(caption)}</caption>"
    return f"<table>{titled}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _usd(value: float) -> str:
    return f"${value:.2f}"


def _proposals_table(proposals: list[GuardProposal]) -> str:
    if not proposals:
        return "<p>No proposals yet: a paid run or deployment the agent asks for waits here for you.</p>"
    rows = [[f"<a href='/proposals/{p.id}'>{p.id}</a>", html.escape(p.summary), _usd(p.quote_usd),
             html.escape(_status(p)), _when(p.created_at)] for p in proposals]  # fmt: skip
    return _table("The guard's proposals, pending first", ["Proposal", "Summary", "Quote", "Status", "Created"], rows)


def _status(p: GuardProposal) -> str:
    return "expired" if p.status == "pending" and p.expires_at <= time.time() else p.status


def _budgets_table(budgets: list[tuple[str, float, float]]) -> str:
    (_, cap, _), *periods = budgets
    rows = [["per-run cap", _usd(cap), "—", "each quote may be at most this"]]
    for (label, limit, spent), period in zip(periods, ("today", "this month"), strict=True):
        rows.append([f"{label} ({period})", _usd(limit), _usd(spent), _usd(limit - spent)])
    return _table("The guard's budgets and its own ledger", ["Budget", "Limit", "Spent", "Left"], rows)


def _audit_section(kinds: list[str], events: list[dict[str, Any]], chosen: str | None) -> str:
    options = "<option value=''>every kind</option>" + "".join(
        f"<option value='{html.escape(k)}'{' selected' if k == chosen else ''}>{html.escape(k)}</option>" for k in kinds
    )
    picker = (f"<form method='get' action='/'><label for='event'>Event kind</label> <select id='event' "
              f"name='event'>{options}</select> <button type='submit'>Filter</button></form>")  # fmt: skip
    rows = [[_when(e["at"]), html.escape(e["event"]),
             f"<code>{html.escape(json.dumps({k: v for k, v in e.items() if k not in ('at', 'event')}))}</code>"]
            for e in events]  # fmt: skip
    shown = f"of kind “{chosen}”" if chosen else "of every kind"
    return picker + (_table(f"The latest {len(events)} events {shown}, newest first", ["When", "Event", "Facts"],
                            rows) if events else f"<p>No events {html.escape(shown)}.</p>")  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    server: ApprovalPageServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _guarded(self, act: Any) -> None:
        try:
            if self.headers.get("Host") != self.server.host:
                raise GuardError(421, "wrong_host", f"this page answers only as {self.server.host}")
            act()
        except GuardError as exc:
            self._json(exc.status, {"error": exc.detail})
        except PasskeyError as exc:
            self._json(403, {"error": str(exc)})
        except UserError as exc:
            self._json(400, {"error": str(exc)})

    def _get(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/":
            return self._index(urllib.parse.parse_qs(query).get("event", [""])[0][:100] or None)
        if path == "/enrol":
            token = query.removeprefix("token=")
            if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", token):
                raise GuardError(400, "bad_token", "this enrolment link is malformed; ask for a new one")
            body = f"<button onclick=\"enrol('{token}')\">Register my passkey</button>"
            return self._html(_page("Register the passkey that approves spend", body))
        change = _CHANGE.fullmatch(path)
        if change and not change.group(2):
            return self._change_page(change.group(1))
        match = _PROPOSAL.fullmatch(path)
        proposal = self.server.guard.store.get(match.group(1)) if match and not match.group(2) else None
        if proposal is None:
            raise GuardError(404, "not_found", "no such page")
        shown = html.escape(json.dumps(proposal.public()["body"], indent=1))
        body = (
            f"<p><strong>{html.escape(proposal.summary)}</strong> — ${proposal.quote_usd:.2f} (Flash's dry-run "
            f"quote). Status: <strong>{html.escape(_status(proposal))}</strong>.</p><p>Approving allows one submit "
            f"of exactly this request to <code>{html.escape(proposal.path)}</code> (digest "
            f"<code>{proposal.digest}</code>), once; a changed request needs a new proposal.</p>"
            f"{self._decision(proposal)}<h2>The request as it will be submitted</h2><pre>{shown}</pre>"
        )
        self._html(_page(f"Proposal {proposal.id}", body))

    def _index(self, event: str | None) -> None:
        store = self.server.guard.store
        decided = [p for p in store.list(limit=2 * SHOWN) if p.status != "pending"][:SHOWN]
        body = (
            f"<h2>Proposals</h2>{_proposals_table(store.list('pending', SHOWN) + decided)}"
            f"<h2>Budgets and spend</h2>{_budgets_table(self.server.guard.budgets())}"
            f"<h2>Audit trail</h2>{_audit_section(store.audit_kinds(), store.audit_events(SHOWN, event), event)}"
        )
        self._html(_page("The spend guard", body))

    def _after(self, quote: float) -> str:
        """The per-run cap against the quote, and what the daily and monthly budgets leave once it is spent."""
        (_, cap, _), *periods = self.server.guard.budgets(quote)
        within = "within it" if quote <= cap else "over it: the guard will refuse it"
        items = [f"<li>per-run cap {_usd(cap)}: this quote, {_usd(quote)}, is {within}</li>"]
        items += [f"<li>{label} budget {_usd(limit)}: {_usd(limit - total)} left after it"
                  f"{'' if total <= limit else ' (over: the guard will refuse it)'}</li>"
                  for label, limit, total in periods]  # fmt: skip
        return f"<ul>{''.join(items)}</ul>"

    def _decision(self, proposal: GuardProposal) -> str:
        """Approve and Deny while it is live; once decided, its outcome."""
        if _status(proposal) == "pending":
            return (
                f"<h2>What the budgets leave after this quote</h2>{self._after(proposal.quote_usd)}"
                f"<button type='button' onclick=\"approve('{proposal.id}')\">Approve with my passkey</button>"
                "<h2>Or deny it</h2><label for='reason'>Reason the agent will read (optional)</label>"
                f"<textarea id='reason' name='reason' rows='2' maxlength='{REASON_MAX}'></textarea>"
                f"<button type='button' onclick=\"deny('{proposal.id}')\">Deny</button>"
            )
        facts = [("Status", _status(proposal)), ("Decided", _when(proposal.decided_at)), ("Run", proposal.run_id),
                 ("Error", proposal.error), ("Reason it was denied", proposal.denied_reason)]  # fmt: skip
        rows = "".join(f"<dt>{name}</dt><dd>{html.escape(value)}</dd>" for name, value in facts if value)
        return f"<h2>Outcome</h2><dl>{rows}</dl>"

    def _change_page(self, change_id: str) -> None:
        found = self.server.guard.store.change(change_id)
        if found is None:
            raise GuardError(404, "not_found", "no such change")
        change, _, status = found
        what = "register another passkey" if change.get("passkey") else "change the guard's settings"
        shown = html.escape(json.dumps(change.get("settings") or change, indent=1))
        body = (
            f"<p>This would <strong>{what}</strong>, which loosens what the guard allows, so it takes your passkey. "
            f"Status: <strong>{html.escape(status)}</strong>.</p><pre>{shown}</pre>"
            f"<button onclick=\"confirmChange('{change_id}')\">Confirm with my passkey</button>"
        )
        self._html(_page(f"Change {change_id}", body))

    def _post_change(self, change_id: str, act: str | None, body: bytes) -> None:
        guard, passkeys = self.server.guard, self.server.passkeys
        found = guard.store.change(change_id)
        if found is None or found[2] != "pending":
            raise GuardError(404, "not_found", "no such pending change")
        change, digest, _ = found
        if act == "/options":
            return self._raw(passkeys.approval_options(change_id, digest, kind="change"))
        if act != "/confirm":
            raise GuardError(404, "not_found", "no such action")
        passkeys.verify_approval(change_id, digest, parse_credential(body), kind="change")
        if not guard.store.settle_change(change_id):
            raise GuardError(409, "not_pending", "this change was confirmed already")
        if change.get("passkey") == "add":
            return self._json(
                200, {"status": "confirmed", "next": self.server.url(f"/enrol?token={passkeys.enrolment_token()}")}
            )
        apply_settings(guard.home, change.get("settings") or {})
        self._json(200, {"status": "applied"})

    def _post(self) -> None:
        if self.headers.get("Origin") != self.server.passkeys.origin:
            raise GuardError(403, "wrong_origin", "requests must come from the guard's own page")
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= 1 << 20:
            raise GuardError(413, "too_large", "the request is too large")
        body = self.rfile.read(length)
        guard, passkeys, path = self.server.guard, self.server.passkeys, self.path
        if path == "/api/enrol/options":
            return self._raw(passkeys.registration_options(str(parse_credential(body).get("token"))))
        if path == "/api/enrol":
            sent = parse_credential(body)
            passkeys.register(str(sent.get("token")), sent.get("credential") or {})
            return self._json(200, {"status": "registered"})
        change = _CHANGE.fullmatch(path)
        if change and path.startswith("/api/"):
            return self._post_change(change.group(1), change.group(2), body)
        match = _PROPOSAL.fullmatch(path)
        proposal = guard.store.get(match.group(1)) if match and path.startswith("/api/") else None
        if proposal is None or match is None:
            raise GuardError(404, "not_found", "no such proposal")
        act = match.group(2)
        if act == "/options":
            return self._raw(passkeys.approval_options(proposal.id, proposal.digest))
        if act == "/approve":
            passkeys.verify_approval(proposal.id, proposal.digest, parse_credential(body))
            return self._json(200, guard.approve(proposal.id, proposal.digest))
        if act == "/deny":
            return self._json(200, guard.deny(proposal.id, json_object(body).get("reason")))
        raise GuardError(404, "not_found", "no such action")

    def _html(self, page: bytes) -> None:
        self._send(200, page, "text/html; charset=utf-8")

    def _json(self, status: int, value: dict[str, Any]) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _raw(self, text: str) -> None:
        self._send(200, text.encode(), "application/json")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        for name, value in (("Content-Type", kind), ("Content-Length", str(len(body))), ("Cache-Control", "no-store"),
                            ("X-Frame-Options", "DENY"), ("Content-Security-Policy",
                             "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                             "connect-src 'self'; frame-ancestors 'none'")):  # fmt: skip
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class ApprovalPageServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, guard: Guard, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.guard = guard
        self.host = f"localhost:{self.server_address[1]}"
        self.passkeys = Passkeys(guard.home, f"http://{self.host}")
        guard.page_url, guard.passkey_registered = f"http://{self.host}", self.passkeys.registered
        guard.enrolment = self.passkeys.enrolment_token

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"
