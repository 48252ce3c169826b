"""The review page's evaluations and comparisons in headless Chromium (Selenium), over two evaluations made
through MCP on the local plane with the tiny offline model: the list, an evaluation, and a comparison showing
compare_evaluations' own verdict, its interval drawn, and the flipped rows with both completions.
Screenshots land in test-output/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from flash_mcp.core.settings import ServerSettings
from flash_mcp.core.visible import visible_controls
from flash_mcp.loop import evaluations
from flash_mcp.planes import make_plane
from flash_mcp.review.app import ReviewServer
from flash_mcp.server import build_server
from tests.conftest import call, serving
from tests.flashplane.conftest import browser, source  # noqa: F401 (a fixture)
from tests.flashplane.test_review_page import assert_labelled, shot
from tests.local.conftest import wait_for_evaluation
from tests.local.test_evaluation_attacks import hostile_project

pytestmark = pytest.mark.anyio
# Pays for an even-length answer: two seeds of one sampled model then disagree on some rows (flips both ways).
EVEN_LENGTH = """
    def score_response(self, example, response_text):
        return RewardResult(score=1.0 if len(response_text) % 2 == 0 else 0.0, threshold=1.0)
"""
SAMPLED = {"max_tokens": 4, "temperature": 1.0}


@pytest.fixture
def review(settings: ServerSettings) -> Iterator[ReviewServer]:
    server = ReviewServer(settings.home, lambda name: make_plane(settings))
    with serving(server):
        yield server


async def test_the_human_reads_an_evaluation_and_a_comparison_with_its_verdict_and_flips(
    settings: ServerSettings,
    workspace: Path,
    isolated_home: Path,
    review: ReviewServer,
    browser: webdriver.Chrome,  # noqa: F811
) -> None:
    async with Client(build_server(settings)) as client:
        config = await hostile_project(client, workspace, isolated_home, EVEN_LENGTH)
        first = await call(client, "evaluate", config=config, seed=1, **SAMPLED)
        second = await call(client, "evaluate", config=config, seed=2, **SAMPLED)
        done = [await wait_for_evaluation(client, e["eval_id"]) for e in (first, second)]
        assert all(d["state"] == "done" for d in done), [d["error"] for d in done]
        told = await call(client, "compare_evaluations", a=first["eval_id"], b=second["eval_id"], flips_limit=20)
    spec = done[1]["spec"]
    latest = evaluations.latest_for_environment(settings.home, spec["environment_id"], spec["environment_digest"])
    assert latest is not None and latest.eval_id == second["eval_id"], "a proposal shows the newest rehearsal"
    flips = told["flipped_improved"]["shown"] + told["flipped_regressed"]["shown"]
    assert flips, "two seeds of a sampled model disagree on some row's length"

    browser.get(review.login_link())
    browser.find_element(By.LINK_TEXT, "Evaluations").click()
    assert first["eval_id"] in source(browser) and second["eval_id"] in source(browser)
    assert_labelled(browser)
    shot(browser, "evaluations")
    browser.find_element(By.LINK_TEXT, first["eval_id"]).click()
    facts = browser.find_element(By.TAG_NAME, "table").text
    assert "State done" in facts and "Target base" in facts
    assert f"Mean reward {done[0]['summary']['mean_reward']:.3g}" in facts
    shot(browser, "evaluation")

    browser.find_element(By.LINK_TEXT, "Evaluations").click()
    Select(browser.find_element(By.ID, "a")).select_by_visible_text(first["eval_id"])
    Select(browser.find_element(By.ID, "b")).select_by_visible_text(second["eval_id"])
    browser.find_element(By.XPATH, "//button[normalize-space()='Compare']").click()
    WebDriverWait(browser, 60).until(lambda b: "/compare?" in b.current_url and b.find_elements(By.TAG_NAME, "h1"))
    answered = browser.find_elements(By.CSS_SELECTOR, ".verdict strong")
    assert answered, browser.find_element(By.TAG_NAME, "main").text[:800]
    verdict = answered[0].text
    assert verdict == told["verdict"], "the page shows compare_evaluations' verdict, never its own"
    chart = browser.find_element(By.CSS_SELECTOR, "svg[role=img]").get_attribute("aria-label")
    assert f"{told['difference']:.3g}" in chart and told["verdict"] in chart
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "td pre")]
    flip = flips[0]
    assert flip["row_id"] in source(browser)
    shown = {visible_controls(flip["completion_a"]).strip(), visible_controls(flip["completion_b"]).strip()}
    assert shown <= {c.strip() for c in cells}, (shown, cells)
    assert_labelled(browser)
    shot(browser, "comparison")
