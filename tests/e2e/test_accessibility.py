"""axe-core on every main page, in a real Chromium against the live server: no serious or
critical violation (contrast, labels, landmarks, names). Also the table's live region and its
keyboard shortcuts, which only a browser can show."""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import DEMO_PASSWORD

try:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # CI must run these tests; elsewhere a missing package only skips them.
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright or axe-playwright-python is not installed", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.processes]

TEAM = "/teams/demo/"
TABLE = "/teams/demo/table/"
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)


def new_page(browser: Browser, base_url: str, **context_options) -> Page:
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1280, "height": 900}, **context_options
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def log_in(page: Page, username: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"**{next_url}")


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    results = Axe().run(page)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [
                " ".join(map(str, node["target"])) + " " + str(node.get("failureSummary", ""))[-90:]
                for node in violation["nodes"][:5]
            ]
            found.append(f"{page.url}: {violation['id']} ({violation['impact']}) {targets}")
    return found


def test_every_main_page_passes_axe(browser: Browser, live_server_url: str):
    problems: list[str] = []
    # The dark scheme has its own colours: both are checked.
    for scheme in ("light", "dark"):
        anonymous = new_page(browser, live_server_url, color_scheme=scheme)
        anonymous.goto("/accounts/login/")
        problems += serious_violations(anonymous)

        alice = new_page(browser, live_server_url, color_scheme=scheme)
        log_in(alice, "alice", TEAM)
        if scheme == "light":
            # Guests allowed, so the team page shows the guest link and the join page exists.
            alice.locator("input[name=allow_guests]").check()
            alice.get_by_role("button", name="Save guest settings").click()
            expect(alice.locator("#guest-link")).to_be_visible()
        problems += serious_violations(alice)
        link = alice.locator("#guest-link").input_value()
        for path in (
            "/teams/",
            "/teams/demo/history/",
            "/teams/demo/decks/",
            "/teams/demo/settings/",
            "/account/notifications/",
        ):
            alice.goto(path)
            problems += serious_violations(alice)

        # The live table: a round in progress, then revealed.
        alice.goto(TABLE)
        expect(alice.locator("#table")).to_have_attribute("data-connection", "live")
        if alice.locator("#table").get_attribute("data-round-status") != "voting":
            alice.get_by_role("button", name="Start a round on the chosen story").click()
        expect(alice.locator("#table")).to_have_attribute("data-round-status", "voting")
        alice.locator('#hand button.play-card[data-value="5"]').click()
        problems += serious_violations(alice)
        alice.get_by_role("button", name="Reveal the cards").click()
        expect(alice.locator("#table")).to_have_attribute("data-round-status", "revealed")
        problems += serious_violations(alice)
        alice.get_by_role("button", name="Restart the round").click()
        expect(alice.locator("#table")).to_have_attribute("data-round-status", "voting")

        guest = new_page(browser, live_server_url, color_scheme=scheme)
        guest.goto(link)
        expect(guest.locator("#id_name")).to_be_visible()
        problems += serious_violations(guest)

        for page in (anonymous, alice, guest):
            page.context.close()
    assert problems == [], "\n".join(problems)


def test_the_skip_link_is_the_first_stop_and_moves_focus_to_the_content(
    browser: Browser, live_server_url: str
):
    page = new_page(browser, live_server_url)
    page.goto("/")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).not_to_be_in_viewport()
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    page.context.close()
