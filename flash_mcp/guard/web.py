"""The guard's approval page on loopback: enrol the passkey, read a proposal, approve it with the passkey.

Served by the guard (its own user) on http://localhost:PORT, with no third-party assets. Every request must
name that exact Host, every POST must come from that exact Origin, and an approval is a WebAuthn assertion on
the proposal's own challenge (passkeys.py), so a look-alike page on another port collects nothing usable.
"""

from __future__ import annotations

import html
import json
import re
import socketserver
from http.server import BaseHTTPRequestHandler
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.guard.daemon import Guard, GuardError
from flash_mcp.guard.passkeys import PasskeyError, Passkeys, parse_credential
from flash_mcp.guard.policy import apply as apply_settings

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
  try { const done = await post('/api/proposals/' + id + '/deny'); say(done.status); }
  catch (e) { say('not denied: ' + e.message); }
}
"""


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<meta name='viewport' content='width=device-width'><style>body{font:16px system-ui;max-width:60rem;"
        "margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:1rem;overflow:auto;white-space:pre-wrap}"
        "button{font-size:1rem;padding:.5rem 1rem;margin-right:1rem}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}<p role='status' aria-live='polite' id='status'></p>"
        f"<script>{_SCRIPT}</script></body></html>"
    ).encode()


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
            f"quote). Status: <strong>{html.escape(proposal.status)}</strong>.</p><p>Approving allows one submit of "
            f"exactly this request to <code>{html.escape(proposal.path)}</code> (digest "
            f"<code>{proposal.digest}</code>).</p>"
            f"<button onclick=\"approve('{proposal.id}')\">Approve with my passkey</button>"
            f"<button onclick=\"deny('{proposal.id}')\">Deny</button>"
            f"<h2>The request as it will be submitted</h2><pre>{shown}</pre>"
        )
        self._html(_page(f"Proposal {proposal.id}", body))

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
            return self._json(200, guard.deny(proposal.id))
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
