"""The guard's own page in headless Chromium (Selenium): its index of proposals, budgets with the spend of its own
ledger, and audit trail; a proposal's budgets after its quote and its outcome; a denial with a reason the agent reads
in `list_proposals`; a forged deny refused; and the human's review page linking to the guard's index.

The guard runs in front of the real control plane (test_guard.py's fixture), proposals come from the MCP client.
Screenshots land in test-output/screenshots/.
"""

from __future__ import annotations

import httpx
import pytest
from mcp import Client
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from flash_mcp.core.settings import ServerSettings
from flash_mcp.guard.daemon import Guard
from flash_mcp.guard.store import REASON_MAX
from flash_mcp.guard.web import ApprovalPageServer
from flash_mcp.planes.flash.plane import FlashPlane
from flash_mcp.review.app import ReviewServer
from flash_mcp.server import build_server
from tests.conftest import call, call_error, serving
from tests.flashplane.conftest import SHOTS, ControlPlane, source
from tests.flashplane.guarding import DECIDER, request_as
from tests.flashplane.test_flash_plane import rl_project, runs_on_the_plane
from tests.flashplane.test_guard_passkey import status_after_click
from tests.flashplane.test_review_page import assert_labelled, tab_reaches

pytestmark = pytest.mark.anyio
GUARD_BUDGETS = "[budget]\nmax_run_usd = 900.0\ndaily_usd = 1500.0\nmonthly_usd = 4000.0\n"
REASON = "max_steps=4 <b>is</b> too few & the env is untested; try 40"


def captioned(browser: webdriver.Chrome, caption: str) -> WebElement:
    """The table whose caption starts with `caption`."""
    return browser.find_element(By.XPATH, f'//table[caption[starts-with(normalize-space(), "{caption}")]]')


def column(browser: webdriver.Chrome, caption: str, index: int) -> list[str]:
    """The text of column `index` (from 1) of the table captioned `caption`, row by row."""
    table = captioned(browser, caption)
    return [cell.text for cell in table.find_elements(By.XPATH, f"./tbody/tr/td[{index}]")]


def row_of(browser: webdriver.Chrome, caption: str, first: str) -> list[str]:
    """The cells of the row of that table whose first cell reads `first`."""
    for row in captioned(browser, caption).find_elements(By.XPATH, "./tbody/tr"):
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        if cells and cells[0] == first:
            return cells
    pytest.fail(f"no row {first!r} in {caption!r}")


async def launch(client: Client, config: str) -> str:
    """launch_training through MCP: the guard holds it as a proposal; its refusal says so."""
    return await call_error(client, "launch_training", config=config)


@pytest.fixture
def budgets(guard: Guard) -> Guard:
    (guard.home / "settings.toml").write_text(GUARD_BUDGETS, encoding="utf-8")
    return guard


async def test_the_index_lists_the_pending_proposal_made_through_mcp_the_budgets_and_the_spend(
    budgets: Guard, page: ApprovalPageServer, browser: webdriver.Chrome, control_plane: ControlPlane,
    flash_settings: ServerSettings,
) -> None:  # fmt: skip
    guard, sock = budgets, budgets.socket_path  # type: ignore[attr-defined]
    server = build_server(flash_settings, plane_factory=lambda: FlashPlane(flash_settings.home))
    async with Client(server) as client:
        config = await rl_project(client)
        await launch(client, config)
        (first,) = guard.store.list("pending")
        approved = request_as(DECIDER, sock, "POST", f"/guard/v1/proposals/{first.id}/approve",
                              {"digest": first.digest})  # fmt: skip
        assert approved[0] == 200 and approved[1]["status"] == "submitted", approved
        await call(client, "edit_config", config=config, set={"train.max_steps": 8})
        refused = await launch(client, config)
    (second,) = guard.store.list("pending")
    assert f"the guard's page {page.url('/')} shows all it holds" in refused
    third = guard.store.propose("/v1/runs", second.body, 1.0, "newer, denied")
    guard.deny(third.id, "not now")

    browser.get(page.url("/"))
    browser.save_screenshot(str(SHOTS / "guard-index.png"))
    assert column(browser, "The guard's proposals", 1) == [second.id, third.id, first.id]  # pending first
    assert row_of(browser, "The guard's proposals", second.id)[1:4] == [
        second.summary, f"${second.quote_usd:.2f}", "pending"]  # fmt: skip
    assert row_of(browser, "The guard's proposals", first.id)[3] == "submitted"
    spent = first.quote_usd
    assert spent > 0 and guard.store.spent() == (spent, spent)
    budget_rows = "The guard's budgets"
    assert row_of(browser, budget_rows, "per-run cap")[1] == "$900.00"
    assert row_of(browser, budget_rows, "daily (today)")[1:] == ["$1500.00", f"${spent:.2f}", f"${1500 - spent:.2f}"]
    assert row_of(browser, budget_rows, "monthly (this month)")[1:] == [
        "$4000.00", f"${spent:.2f}", f"${4000 - spent:.2f}"]  # fmt: skip
    assert_labelled(browser)
    tab_reaches(browser, "Filter")

    browser.find_element(By.LINK_TEXT, second.id).click()  # the proposal's page: its budgets after the quote
    WebDriverWait(browser, 30).until(lambda b: b.current_url == page.url(f"/proposals/{second.id}"))
    browser.save_screenshot(str(SHOTS / "guard-proposal-budgets.png"))
    after = browser.find_element(By.TAG_NAME, "main").text.split("What the budgets leave after this quote", 1)[1]
    assert f"per-run cap $900.00: this quote, ${second.quote_usd:.2f}, is within it" in after
    assert f"daily budget $1500.00: ${1500 - spent - second.quote_usd:.2f} left after it" in after
    assert f"monthly budget $4000.00: ${4000 - spent - second.quote_usd:.2f} left after it" in after
    assert "Approving allows one submit of exactly this request" in browser.find_element(By.TAG_NAME, "main").text
    browser.get(page.url(f"/proposals/{first.id}"))  # a decided one: its outcome, and no buttons
    outcome = browser.find_element(By.TAG_NAME, "main").text.split("Outcome", 1)[1]
    assert f"Run\n{runs_on_the_plane(control_plane)[0]['run_id']}" in outcome and "submitted" in outcome
    assert browser.find_elements(By.TAG_NAME, "button") == []


async def test_a_denial_with_a_reason_on_the_page_reaches_the_agent(
    budgets: Guard, page: ApprovalPageServer, browser: webdriver.Chrome, control_plane: ControlPlane,
    flash_settings: ServerSettings,
) -> None:  # fmt: skip
    server = build_server(flash_settings, plane_factory=lambda: FlashPlane(flash_settings.home))
    async with Client(server) as client:
        await launch(client, await rl_project(client))
        (proposal,) = budgets.store.list("pending")
        browser.get(page.url(f"/proposals/{proposal.id}"))
        assert_labelled(browser)
        tab_reaches(browser, "Deny")
        browser.find_element(By.ID, "reason").send_keys(REASON)
        assert status_after_click(browser, "Deny", "guard-deny-reason") == "denied"
        (listed,) = (await call(client, "list_proposals", status="denied"))["guard"]
    assert listed["id"] == proposal.id and listed["denied_reason"] == REASON
    assert runs_on_the_plane(control_plane) == []

    browser.get(page.url(f"/proposals/{proposal.id}"))
    browser.save_screenshot(str(SHOTS / "guard-denied-outcome.png"))
    outcome = browser.find_element(By.TAG_NAME, "main").text.split("Outcome", 1)[1]
    assert f"Reason it was denied\n{REASON}" in outcome  # shown as text: the markup in it is escaped
    assert browser.find_elements(By.TAG_NAME, "b") == [] and "&lt;b&gt;is&lt;/b&gt;" in source(browser)
    assert browser.find_elements(By.TAG_NAME, "button") == [] and "What the budgets leave" not in source(browser)

    long = budgets.store.propose("/v1/runs", proposal.body, 1.0, "long reason")  # the store keeps REASON_MAX
    origin = {"Origin": page.passkeys.origin}
    denied = httpx.post(page.url(f"/api/proposals/{long.id}/deny"), headers=origin, json={"reason": "x" * 2000})
    assert denied.status_code == 200 and budgets.store.get(long.id).denied_reason == "x" * REASON_MAX


def test_a_forged_deny_from_a_foreign_origin_is_refused(
    budgets: Guard,
    page: ApprovalPageServer,
) -> None:
    proposal = budgets.store.propose("/v1/runs", {"spec": {"algorithm": "grpo"}}, 1.0, "forged")
    url = page.url(f"/api/proposals/{proposal.id}/deny")
    for headers in ({"Origin": "http://evil.test"}, {"Origin": f"http://127.0.0.1:{page.server_address[1]}"}, {}):
        forged = httpx.post(url, headers=headers, json={"reason": "forged"})
        assert forged.status_code == 403 and "guard's own page" in forged.json()["error"], headers
    port = page.server_address[1]
    assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 421  # the index answers only as localhost:PORT
    assert budgets.store.get(proposal.id).status == "pending"
    assert budgets.store.get(proposal.id).denied_reason is None
    assert [e["event"] for e in budgets.store.audit_events()] == ["propose"]


def test_the_audit_filter_narrows_the_trail(
    budgets: Guard,
    page: ApprovalPageServer,
    browser: webdriver.Chrome,
) -> None:
    made = [budgets.store.propose("/v1/runs", {"spec": {"algorithm": "grpo"}}, 1.0, f"p{i}") for i in range(3)]
    budgets.deny(made[0].id, "no")
    budgets.store.audit("<script>alert(1)</script>", note="<img src=x>")  # hostile text is shown, not run
    browser.get(page.url("/"))
    assert sorted(column(browser, "The latest", 2)) == ["<script>alert(1)</script>", "deny", *["propose"] * 3]
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script") == []

    Select(browser.find_element(By.ID, "event")).select_by_visible_text("deny")
    browser.find_element(By.XPATH, "//button[normalize-space()='Filter']").click()
    WebDriverWait(browser, 30).until(lambda b: b.current_url == page.url("/?event=deny"))
    browser.save_screenshot(str(SHOTS / "guard-audit-filtered.png"))
    assert column(browser, "The latest", 2) == ["deny"]
    assert made[0].id in column(browser, "The latest", 3)[0] and '"reason": "no"' in column(browser, "The latest", 3)[0]
    assert Select(browser.find_element(By.ID, "event")).first_selected_option.text == "deny"

    browser.get(page.url("/?event=%3Cscript%3E"))  # an unknown kind: nothing, its name escaped
    assert "No events of kind “<script>”." in browser.find_element(By.TAG_NAME, "main").text


async def test_the_review_page_in_guarded_mode_links_to_the_guards_index(
    budgets: Guard, page: ApprovalPageServer, browser: webdriver.Chrome,
    flash_settings: ServerSettings,
) -> None:  # fmt: skip
    (flash_settings.home / "settings.toml").write_text("[budget]\nmax_run_usd = 50.0\n", encoding="utf-8")
    server = build_server(flash_settings, plane_factory=lambda: FlashPlane(flash_settings.home))
    async with Client(server) as client:
        launched = await call(client, "launch_training", config=await rl_project(client))
    assert launched["status"] == "awaiting_approval", launched  # the human's own gate first
    review = ReviewServer(flash_settings.home, lambda name: FlashPlane(flash_settings.home))
    with serving(review):
        browser.get(review.login_link())
        browser.get(f"{review.origin}/proposals/{launched['proposal']['id']}")
        browser.find_element(By.XPATH, "//button[normalize-space()='Approve and submit']").click()
        note = WebDriverWait(browser, 30).until(lambda b: b.find_element(By.CSS_SELECTOR, "[role=status]"))
        browser.save_screenshot(str(SHOTS / "review-guarded-approve.png"))
        (held,) = budgets.store.list("pending")
        assert f"the spend guard holds this as proposal {held.id}" in note.text
        note.find_element(By.XPATH, f".//a[@href='{page.url('/')}']").click()
        WebDriverWait(browser, 30).until(lambda b: b.current_url == page.url("/"))
    assert column(browser, "The guard's proposals", 1) == [held.id]
