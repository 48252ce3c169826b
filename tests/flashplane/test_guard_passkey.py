"""Approving with a passkey on the guard's page, in headless Chromium with a virtual authenticator (Selenium).

The guard runs in front of the real control plane (test_guard.py's fixture) and serves its approval page on a
loopback port. The virtual authenticator verifies the user, as a platform authenticator would after a
fingerprint. Screenshots of each page land in test-output/screenshots/.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from mcp import Client
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from flash_mcp.guard.daemon import Guard
from flash_mcp.guard.web import ApprovalPageServer
from flash_mcp.planes.flash.plane import FlashPlane
from flash_mcp.server import build_server
from tests.conftest import call_error
from tests.flashplane.conftest import SHOTS, ControlPlane, source
from tests.flashplane.guarding import DECIDER, request_as
from tests.flashplane.test_flash_plane import rl_project, runs_on_the_plane

pytestmark = pytest.mark.anyio
BODY = {"spec": {"algorithm": "grpo", "model": "Qwen/Qwen3.5-0.8B"}}


def status_after_click(browser: webdriver.Chrome, button: str, shot: str) -> str:
    found = WebDriverWait(browser, 30).until(  # the page has loaded and shows it
        lambda b: b.find_element(By.XPATH, f"//button[normalize-space()='{button}']")
    )
    browser.save_screenshot(str(SHOTS / f"{shot}-before.png"))
    found.click()
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "status").text)
    browser.save_screenshot(str(SHOTS / f"{shot}-after.png"))
    return browser.find_element(By.ID, "status").text


def enrol(guard: Guard, page: ApprovalPageServer, browser: webdriver.Chrome) -> None:
    sock = guard.socket_path  # type: ignore[attr-defined]
    assert request_as(None, sock, "POST", "/guard/v1/passkeys/enrol")[0] == 403  # the agent's user cannot
    status, answer = request_as(DECIDER, sock, "POST", "/guard/v1/passkeys/enrol")
    assert status == 200 and answer["url"].startswith(page.url("/enrol?token="))
    browser.get(answer["url"])
    assert status_after_click(browser, "Register my passkey", "enrol") == "passkey registered"
    browser.get(answer["url"])  # the link is single use
    assert status_after_click(browser, "Register my passkey", "enrol-again").startswith("not registered")


async def test_the_human_approves_a_real_proposal_with_the_passkey_and_the_run_starts(
    guard: Guard,
    page: ApprovalPageServer,
    browser: webdriver.Chrome,
    control_plane: ControlPlane,
    flash_settings,
) -> None:
    enrol(guard, page, browser)
    server = build_server(flash_settings, plane_factory=lambda: FlashPlane(flash_settings.home))
    async with Client(server) as client:
        refused = await call_error(client, "launch_training", config=await rl_project(client))
    (proposal,) = guard.store.list("pending")
    assert f"the passkey, on {page.url('/proposals/')}{proposal.id}" in refused
    sock = guard.socket_path  # type: ignore[attr-defined]
    status, answer = request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{proposal.id}/approve",
                                {"digest": proposal.digest})  # fmt: skip
    assert status == 403 and answer["detail"]["code"] == "passkey_required"  # sudo alone no longer approves

    browser.get(page.url(f"/proposals/{proposal.id}"))
    assert proposal.digest in source(browser) and f"${proposal.quote_usd:.2f}" in source(browser)
    assert status_after_click(browser, "Approve with my passkey", "approve").startswith("submitted: run ")
    (run,) = runs_on_the_plane(control_plane)
    assert guard.store.get(proposal.id).run_id == run["run_id"]


def test_an_assertion_for_one_proposal_does_not_approve_another(
    guard: Guard,
    page: ApprovalPageServer,
    browser: webdriver.Chrome,
) -> None:
    enrol(guard, page, browser)
    first, second = (guard.store.propose("/v1/runs", BODY, 1.0, name) for name in ("first", "second"))
    browser.get(page.url(f"/proposals/{first.id}"))
    replayed = browser.execute_async_script("""
        const [first, second, done] = arguments;
        const post = (path, body) => fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                  body: JSON.stringify(body || {})});
        (async () => {
          const options = await (await post('/api/proposals/' + first + '/options')).json();
          await post('/api/proposals/' + second + '/options');  // the second has a live challenge of its own
          const got = await navigator.credentials.get(
            {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
          const answer = await post('/api/proposals/' + second + '/approve', got.toJSON());
          done([answer.status, (await answer.json()).error]);
        })().catch((e) => done(['error', String(e)]));
    """, first.id, second.id)  # fmt: skip
    assert replayed[0] == 403 and "refused" in replayed[1], replayed
    assert guard.store.get(second.id).status == "pending" and guard.store.get(first.id).status == "pending"


def test_a_look_alike_page_on_another_port_collects_no_usable_approval(
    guard: Guard,
    page: ApprovalPageServer,
    browser: webdriver.Chrome,
) -> None:
    enrol(guard, page, browser)
    proposal = guard.store.propose("/v1/runs", BODY, 1.0, "phished")
    guard_http = httpx.Client(base_url=page.url(""), headers={"Origin": page.passkeys.origin})  # a shell spoofs Origin
    options = guard_http.post(f"/api/proposals/{proposal.id}/options").json()
    evil = ThreadingHTTPServer(("127.0.0.1", 0), _LookAlike)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://localhost:{evil.server_address[1]}/")
        assertion = browser.execute_async_script("""
            const [options, done] = arguments;
            navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)})
              .then((got) => done(got.toJSON()), (e) => done({error: String(e)}));
        """, options)  # fmt: skip
    finally:
        evil.shutdown()
    assert "error" not in assertion, assertion  # the authenticator did sign: rpId localhost matches any port
    refused = guard_http.post(f"/api/proposals/{proposal.id}/approve", content=json.dumps(assertion))
    assert refused.status_code == 403 and "origin" in refused.json()["error"].lower()
    assert guard.store.get(proposal.id).status == "pending"


def test_the_page_refuses_a_foreign_host_or_origin_and_denies_without_the_passkey(
    guard: Guard,
    page: ApprovalPageServer,
    browser: webdriver.Chrome,
) -> None:
    proposal = guard.store.propose("/v1/runs", BODY, 1.0, "denied")
    port = page.server_address[1]
    assert httpx.get(f"http://127.0.0.1:{port}/proposals/{proposal.id}").status_code == 421  # DNS rebinding
    foreign = httpx.post(page.url(f"/api/proposals/{proposal.id}/deny"), headers={"Origin": "http://evil.test"})
    assert foreign.status_code == 403
    browser.get(page.url(f"/proposals/{proposal.id}"))
    assert status_after_click(browser, "Deny", "deny") == "denied"
    assert guard.store.get(proposal.id).status == "denied"


class _LookAlike(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>Approve</title><p>Looks like the guard.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_loosening_the_guard_takes_the_passkey_tightening_does_not(
    guard: Guard, page: ApprovalPageServer, browser: webdriver.Chrome
) -> None:
    enrol(guard, page, browser)
    sock = guard.socket_path  # type: ignore[attr-defined]
    tighter = request_as(DECIDER, sock, "POST", "/guard/v1/settings", {"set": {"budget.daily_usd": 10.0}})[1]
    assert tighter["status"] == "applied"
    looser = request_as(DECIDER, sock, "POST", "/guard/v1/settings", {"set": {"budget.daily_usd": 500.0}})[1]
    assert looser["status"] == "pending" and looser["looser"] == ["budget.daily_usd"]
    assert "daily_usd = 10.0" in (guard.home / "settings.toml").read_text()  # sudo alone did not raise it
    browser.get(looser["confirm_at"])
    assert status_after_click(browser, "Confirm with my passkey", "loosen") == "applied"
    assert "daily_usd = 500.0" in (guard.home / "settings.toml").read_text()


def test_another_passkey_is_added_only_with_the_first(
    guard: Guard, page: ApprovalPageServer, browser: webdriver.Chrome
) -> None:
    enrol(guard, page, browser)
    status, answer = request_as(DECIDER, guard.socket_path, "POST", "/guard/v1/passkeys/enrol")  # type: ignore[attr-defined]
    assert status == 200 and "/changes/gc-" in answer["url"]
    browser.get(answer["url"])
    browser.find_element(By.XPATH, "//button[normalize-space()='Confirm with my passkey']").click()
    WebDriverWait(browser, 30).until(lambda b: "/enrol?token=" in b.current_url)
    assert status_after_click(browser, "Register my passkey", "second-passkey") == "passkey registered"
