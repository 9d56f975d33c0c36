"""axe-core on every main page, in a real Chromium against the live server: no serious or
critical violation (contrast, labels, landmarks, names). Also the table's live region and its
keyboard shortcuts, which only a browser can show."""

from __future__ import annotations

import os
import re

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


def visit(page: Page, path: str) -> list[str]:
    """Open ``path`` (it must answer 2xx: an error page would pass for the wrong reason)."""
    response = page.goto(path)
    assert response is not None
    assert response.ok, f"{path}: {response.status}"
    return serious_violations(page)


def test_every_main_page_passes_axe(browser: Browser, live_server_url: str):
    problems: list[str] = []
    # The dark scheme has its own colours: both are checked.
    for scheme in ("light", "dark"):
        anonymous = new_page(browser, live_server_url, color_scheme=scheme)
        for path in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
            problems += visit(anonymous, path)

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
            "/teams/demo/import/",
            "/teams/new/",
            "/account/notifications/",
        ):
            problems += visit(alice, path)

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
        # An accepted estimate (the green pill), on a quick round so the backlog stays as it is.
        alice.get_by_role("button", name="Start a quick round").click()
        expect(alice.locator("#table")).to_have_attribute("data-round-status", "voting")
        alice.locator('#hand button.play-card[data-value="5"]').click()
        alice.get_by_role("button", name="Reveal the cards").click()
        expect(alice.locator("#table")).to_have_attribute("data-round-status", "revealed")
        alice.get_by_role("button", name="Accept the estimate", exact=True).click()
        expect(alice.locator("#table")).to_have_attribute("data-round-status", "accepted")
        problems += serious_violations(alice)

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


def open_table(browser: Browser, base_url: str, username: str) -> Page:
    page = new_page(browser, base_url)
    log_in(page, username, TABLE)
    expect(page.locator("#table")).to_have_attribute("data-connection", "live")
    return page


def test_keys_play_cards_and_run_the_round_and_the_live_region_says_so(
    browser: Browser, live_server_url: str
):
    alice = open_table(browser, live_server_url, "alice")
    bob = open_table(browser, live_server_url, "bob")
    announcer = alice.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(alice.locator("#shortcuts-help")).to_contain_text("R reveals the cards")
    expect(bob.locator("#shortcuts-help .facilitator-only")).to_be_hidden()

    # Whatever the previous test left: R reveals a round in progress.
    if alice.locator("#table").get_attribute("data-round-status") == "voting":
        alice.keyboard.press("r")
        expect(alice.locator("#table")).to_have_attribute("data-round-status", "revealed")
        expect(announcer).to_contain_text("Cards revealed")

    # N starts the next round: both tables vote, the region announces it.
    alice.keyboard.press("n")
    for page in (alice, bob):
        expect(page.locator("#table")).to_have_attribute("data-round-status", "voting")
    expect(announcer).to_have_text(re.compile(r"^Round started: .+\. 0 of \d+ voted\.$"))

    # Bob presses 3: the third card is played and acked; Alice hears the count move.
    third = bob.locator("#hand button.play-card").nth(2)
    value = third.get_attribute("data-value")
    bob.keyboard.press("3")
    expect(third).to_have_attribute("aria-pressed", "true")
    expect(third).to_have_attribute("aria-busy", "false")
    expect(announcer).to_have_text(re.compile(r"^1 of \d+ voted\.$"))
    # Bob is no facilitator: R does nothing for him.
    bob.keyboard.press("r")
    expect(bob.locator("#table")).to_have_attribute("data-round-status", "voting")

    # Alice presses R: the cards are revealed, and the region says the result.
    alice.keyboard.press("r")
    for page in (alice, bob):
        expect(page.locator("#table")).to_have_attribute("data-round-status", "revealed")
    expect(alice.locator("#participants .seat", has_text="Bob").locator(".seat-card")).to_have_text(
        value
    )
    expect(announcer).to_have_text(re.compile(r"^Cards revealed: 1 vote, suggested estimate .+\.$"))
    expect(bob.locator("#announcer")).to_contain_text("Cards revealed")

    # A digit typed into a text field is text, not a vote.
    alice.locator("#accept-value").fill("")
    alice.locator("#accept-value").press("1")
    expect(alice.locator("#accept-value")).to_have_value("1")
    expect(alice.locator("#table")).to_have_attribute("data-round-status", "revealed")
    for page in (alice, bob):
        page.context.close()


DARK_BG = "rgb(18, 20, 26)"
LIGHT_BG = "rgb(246, 247, 251)"


def background(page: Page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def test_the_theme_toggle_overrides_the_system_and_is_remembered(
    browser: Browser, live_server_url: str
):
    # A light system: light until the reader picks dark, and dark after a reload.
    page = new_page(browser, live_server_url, color_scheme="light")
    page.goto("/accounts/login/")
    toggle = page.get_by_role("button", name="Dark theme")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert background(page) == LIGHT_BG
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background(page) == DARK_BG
    page.reload()
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "true")
    assert background(page) == DARK_BG
    page.context.close()

    # A dark system with nothing stored: dark; the toggle turns it light.
    page = new_page(browser, live_server_url, color_scheme="dark")
    page.goto("/accounts/login/")
    toggle = page.get_by_role("button", name="Dark theme")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert background(page) == DARK_BG
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert background(page) == LIGHT_BG
    page.context.close()
