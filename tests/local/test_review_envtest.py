"""The proposal page's environment-test verdicts in headless Chromium (Selenium), over a real MCP session on the
local plane: test_environment, push, a proposal whose page shows the test of that exact package (its verdict, the
reward audit's verdict and findings); then environment.py edited and pushed again, and the new proposal's page
says no test matches its package and shows the older one as stale, by digest. Screenshots land in
test-output/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client
from selenium import webdriver
from selenium.webdriver.common.by import By

from flash_mcp.core.settings import ServerSettings
from flash_mcp.planes import make_plane
from flash_mcp.review.app import ReviewServer
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call, serving
from tests.envs.scorers import OPEN
from tests.flashplane.conftest import browser  # noqa: F401 (a fixture)
from tests.flashplane.test_review_page import assert_labelled, shot
from tests.local.conftest import FAST_SFT

pytestmark = pytest.mark.anyio
ROWS = 30
LENGTHY = OPEN["pays-length"]  # SFT does not train on the reward: the test passes, the audit warns


@pytest.fixture
def approving(settings: ServerSettings) -> ServerSettings:
    """Local runs wait for the human, so every launch is a proposal."""
    path = settings.home / "settings.toml"
    path.write_text('[approval]\nmode = "always"\nlocal_runs = true\n\n' + path.read_text(), encoding="utf-8")
    return settings


@pytest.fixture
def review(approving: ServerSettings) -> Iterator[ReviewServer]:
    server = ReviewServer(approving.home, lambda name: make_plane(approving))
    with serving(server):
        yield server


async def _propose(client: Client) -> dict:
    pushed = await call(client, "push_environment", name="lengthy", directory="p")
    launched = await call(client, "launch_training", config="p/configs/sft.toml", overrides=FAST_SFT)
    assert launched["status"] == "awaiting_approval", launched
    assert launched["proposal"]["environment_digest"] == pushed["digest"]
    return launched["proposal"]


def _checks(driver: webdriver.Chrome) -> str:
    """The checks section's text, scrolled into view for the screenshot."""
    heading = driver.find_element(By.XPATH, "//h2[normalize-space()='Checks for this environment']")
    driver.execute_script("arguments[0].scrollIntoView()", heading)
    main = driver.find_element(By.TAG_NAME, "main").text
    return main.split("Checks for this environment", 1)[1].split("Diff against", 1)[0]


async def test_the_proposal_page_shows_the_test_of_its_exact_package_and_a_stale_one_after_an_edit(
    approving: ServerSettings,
    workspace: Path,
    review: ReviewServer,
    browser: webdriver.Chrome,  # noqa: F811
) -> None:
    async with Client(build_server(approving)) as client:
        await call(client, "setup_project", directory="p", project=PROJECT)
        (workspace / "p" / "environment.py").write_text(LENGTHY.source(), encoding="utf-8")
        rows = "".join(json.dumps(row) + "\n" for row in LENGTHY.rows(ROWS))
        (workspace / "p" / "dataset" / "train.jsonl").write_text(rows, encoding="utf-8")
        report = await call(client, "test_environment", directory="p", config="p/configs/sft.toml")
        assert report["verdict"] == "pass", report["summary"]
        opened = {f["code"] for f in report["audit"]["families"] if f["status"] in ("open", "partial")}
        assert {"length-credit", "score-out-of-range"} <= opened, report["audit"]
        tested = await _propose(client)

        source = workspace / "p" / "environment.py"
        source.write_text(source.read_text(encoding="utf-8") + "\n# tightened later\n", encoding="utf-8")
        edited = await _propose(client)
    assert edited["environment_digest"] != tested["environment_digest"]

    browser.get(review.login_link())
    browser.get(f"{review.origin}/proposals/{tested['id']}")
    checks = _checks(browser)
    assert "Environment test of this exact package: pass" in checks, checks
    assert f"{report['rows_passed']}/{report['rows_checked']} rows passed" in checks
    assert "algorithm sft" in checks and tested["environment_digest"][:16] in checks
    assert "Reward audit: warn" in checks, checks
    codes = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "table code")]
    assert opened <= set(codes), codes
    assert "no environment test of this exact package" not in checks
    assert_labelled(browser)
    shot(browser, "proposal-envtest")

    browser.get(f"{review.origin}/proposals/{edited['id']}")
    checks = _checks(browser)
    assert "no environment test of this exact package" in checks, checks
    stale = browser.find_element(By.CSS_SELECTOR, ".envtest .stale").text
    assert stale.startswith("Stale:") and tested["environment_digest"][:16] in stale
    assert edited["environment_digest"][:16] in stale and "it said pass, reward audit warn" in stale
    assert "Environment test of this exact package" not in checks and "length-credit" not in checks
    shot(browser, "proposal-envtest-stale")
