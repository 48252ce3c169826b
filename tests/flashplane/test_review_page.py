"""The review page (`flash-mcp review`) in headless Chromium (Selenium), over a real proposal made through MCP
against the real control plane: log in with the one-time link, approve and see the run start, deny with a reason
the agent reads; forged forms, foreign Origin or Host, a reused link and an expired session refused.
Screenshots land in test-output/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from mcp import Client
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from flash_mcp.core.settings import ServerSettings
from flash_mcp.loop import notify
from flash_mcp.review.app import COOKIE, ReviewServer
from flash_mcp.review.sessions import IDLE_S, Sessions
from flash_mcp.server import build_server
from tests.conftest import call, serving
from tests.flashplane.conftest import SHOTS, ControlPlane, source
from tests.flashplane.test_flash_plane import rl_project, runs_on_the_plane
from tests.loop.test_notify import Receiver, receiver  # noqa: F401 (receiver: a fixture)

pytestmark = pytest.mark.anyio


@pytest.fixture
def strict(flash_settings: ServerSettings) -> ServerSettings:
    (flash_settings.home / "settings.toml").write_text("[budget]\nmax_run_usd = 50.0\n", encoding="utf-8")
    return flash_settings


@pytest.fixture
def review(strict: ServerSettings, control_plane: ControlPlane) -> Iterator[ReviewServer]:
    now = [1_000_000.0]
    server = ReviewServer(strict.home, lambda name: control_plane.plane(strict.home), sessions=Sessions(lambda: now[0]))
    server.now = now  # type: ignore[attr-defined]
    with serving(server):
        yield server


async def propose(control_plane: ControlPlane, settings: ServerSettings, **train: object) -> dict:
    server = build_server(settings, plane_factory=lambda: control_plane.plane(settings.home))
    async with Client(server) as client:
        launched = await call(client, "launch_training", config=await rl_project(client, **train))
    assert launched["status"] == "awaiting_approval", launched
    return launched


def shot(driver: webdriver.Chrome, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"review-{name}.png"))


def assert_labelled(driver: webdriver.Chrome) -> None:
    """Every visible form control has a <label for> or an aria-label, and every button a name."""
    for control in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select, textarea"):
        name = control.get_attribute("id")
        labels = driver.find_elements(By.CSS_SELECTOR, f"label[for='{name}']") if name else []
        assert labels or control.get_attribute("aria-label"), control.get_attribute("outerHTML")
    for button in driver.find_elements(By.TAG_NAME, "button"):
        assert button.text.strip() or button.get_attribute("aria-label"), button.get_attribute("outerHTML")


def tab_reaches(driver: webdriver.Chrome, text: str, presses: int = 40) -> None:
    """Tabbing from the top of the page reaches the button named `text`."""
    body = driver.find_element(By.TAG_NAME, "body")
    body.click()
    for _ in range(presses):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        if driver.switch_to.active_element.text.strip() == text:
            return
    pytest.fail(f"{presses} tabs never reached {text!r}")


def log_in(driver: webdriver.Chrome, review: ReviewServer) -> None:
    link = review.login_link()
    driver.get(link)
    assert "Waiting for you" in source(driver)
    driver.delete_all_cookies()
    driver.get(link)  # a link works once
    assert "this login link was used or has expired" in source(driver), (
        driver.current_url,
        source(driver)[:500],
        driver.title,
    )
    driver.get(review.login_link())


async def test_the_human_approves_from_the_page_and_the_run_starts(
    review: ReviewServer,
    browser: webdriver.Chrome,
    control_plane: ControlPlane,
    strict: ServerSettings,
) -> None:
    launched = await propose(control_plane, strict)
    log_in(browser, review)
    shot(browser, "overview")
    browser.find_element(By.LINK_TEXT, launched["proposal"]["id"]).click()
    assert f"${launched['quote_usd']:.2f}" in source(browser) and "exactly as it will be submitted" in source(browser)
    main = browser.find_element(By.TAG_NAME, "main").text
    allows = main.split("What approving allows", 1)[1].split("Checks for this environment", 1)[0]
    assert "one submit" in allows and launched["proposal"]["plane"] in allows
    assert f"${launched['quote_usd']:.2f}" in allows
    checks = main.split("Checks for this environment", 1)[1].split("Diff against", 1)[0]
    assert "Environment test:" in checks and "Latest evaluation: none of this environment yet" in checks
    assert_labelled(browser)
    tab_reaches(browser, "Approve and submit")
    tab_reaches(browser, "Deny")
    shot(browser, "proposal")
    browser.find_element(By.XPATH, "//button[normalize-space()='Approve and submit']").click()
    shot(browser, "approved")
    note = browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    (run,) = runs_on_the_plane(control_plane)
    assert note == f"approved: run {run['run_id']} started"
    browser.get(review.origin + "/runs/" + run["run_id"])
    assert run["run_id"] in source(browser) and browser.find_element(By.TAG_NAME, "img").get_attribute("alt")
    shot(browser, "run")
    browser.get(review.origin + "/spend")
    assert "submit" in source(browser)
    shot(browser, "spend")


async def test_a_denial_with_a_reason_reaches_the_agent(
    review: ReviewServer,
    browser: webdriver.Chrome,
    control_plane: ControlPlane,
    strict: ServerSettings,
) -> None:
    launched = await propose(control_plane, strict)
    log_in(browser, review)
    browser.get(f"{review.origin}/proposals/{launched['proposal']['id']}")
    browser.find_element(By.ID, "reason").send_keys("max_steps=4 is too few to learn anything; try 40")
    browser.find_element(By.XPATH, "//button[normalize-space()='Deny']").click()
    shot(browser, "denied")
    assert runs_on_the_plane(control_plane) == []
    server = build_server(strict, plane_factory=lambda: control_plane.plane(strict.home))
    async with Client(server) as client:
        (listed,) = (await call(client, "list_proposals", status="denied"))["proposals"]
    assert listed["denied_reason"] == "max_steps=4 is too few to learn anything; try 40"


async def test_forged_forms_foreign_origins_and_hosts_and_stale_sessions_are_refused(
    review: ReviewServer, control_plane: ControlPlane, strict: ServerSettings
) -> None:
    launched = await propose(control_plane, strict)
    page = httpx.Client(base_url=review.origin, follow_redirects=False)
    assert page.get("/").status_code == 401
    login = page.get("/login", params={"token": review.sessions.login_link_token()})
    assert login.status_code == 303 and COOKIE in login.headers["set-cookie"]
    approve = f"/proposals/{launched['proposal']['id']}/approve"
    assert page.post(approve, data={}, headers={"Origin": review.origin}).status_code == 403  # no CSRF token
    assert page.post(approve, data={"csrf": "guess"}, headers={"Origin": review.origin}).status_code == 403
    assert page.post(approve, data={}, headers={"Origin": "http://localhost:1"}).status_code == 403
    port = review.server_address[1]
    assert httpx.get(f"http://127.0.0.1:{port}/", cookies=page.cookies).status_code == 421  # DNS rebinding
    assert page.get("/proposals").status_code == 200
    review.now[0] += IDLE_S + 1  # type: ignore[attr-defined]
    assert page.get("/proposals").status_code == 401
    assert runs_on_the_plane(control_plane) == []


async def test_a_waiting_proposal_is_told_to_the_humans_webhook_once(
    receiver: Receiver,  # noqa: F811
    control_plane: ControlPlane,
    strict: ServerSettings,
) -> None:
    hook = receiver.url("/hook")
    (strict.home / "settings.toml").write_text(
        f'[budget]\nmax_run_usd = 50.0\n[notify]\nwebhooks = [{{ url = "{hook}", format = "json" }}]\n'
    )
    launched = await propose(control_plane, strict)
    notify._notifier(strict.home).deliver_due()  # the background thread may have sent it already: never twice
    ((_, body, status),) = receiver.on("/hook")
    told = json.loads(body)
    assert status == 200 and told["event"] == "proposal-waiting" and launched["proposal"]["id"] in told["message"]
