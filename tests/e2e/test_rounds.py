"""Presence-aware rounds in a real browser against a real server: the timer the server runs
reveals, auto-reveal once everyone present has voted, kick and promote from the table, and a
facilitator on a phone plays a round without scrolling to the controls.

Each test plays at a team of its own (the ``team`` fixture: users ``<slug>-lead``, ``-bob``,
``-carol`` and ``-olga``), so what it changes (auto-reveal, roles, members) touches no other
test's table.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import DEMO_PASSWORD

try:
    from playwright.sync_api import Browser, Locator, Page, expect
except ImportError:  # CI must run these tests; elsewhere a missing package only skips them.
    if os.environ.get("CI"):
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.processes]

TIMEOUT_MS = 10_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=TIMEOUT_MS)


def open_table(
    browser: Browser, base_url: str, slug: str, who: str, viewport: dict, locale: str = "en-US"
) -> Page:
    """Log ``<slug>-<who>`` in with a browser set to ``locale`` (its Accept-Language) and open
    the team's live table."""
    table = f"/teams/{slug}/table/"
    context = browser.new_context(base_url=base_url, viewport=viewport, locale=locale)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"/accounts/login/?next={table}")
    page.fill("#id_username", f"{slug}-{who}")
    page.fill("#id_password", DEMO_PASSWORD)
    page.press("#id_password", "Enter")  # the button's name is in the page's language
    page.wait_for_url(f"**{table}")
    expect(page.locator("#table")).to_have_attribute("data-connection", "live")
    return page


def seat(page: Page, name: str) -> Locator:
    return page.locator("#participants .seat", has_text=name)


def card(page: Page, value: str) -> Locator:
    return page.locator(f'#hand button.play-card[data-value="{value}"]')


def status(page: Page) -> Locator:
    return page.locator("#table")


def in_view_without_scrolling(locator: Locator) -> bool:
    """Whether the element is fully on screen where the page is now."""
    return locator.evaluate(
        "el => { const r = el.getBoundingClientRect();"
        " return r.width > 0 && r.top >= 0 && r.left >= 0"
        " && r.bottom <= innerHeight && r.right <= innerWidth; }"
    )


def close(*pages: Page) -> None:
    for page in pages:
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()


def test_the_timer_reveals_at_zero(browser: Browser, live_server_url: str, team: str, tmp_path):
    """The facilitator starts a 5 s timer with auto-reveal: every page counts down from the
    server's deadline (a reload too), and the server reveals when it runs out."""
    lead = open_table(browser, live_server_url, team, "lead", DESKTOP)
    bob = open_table(browser, live_server_url, team, "bob", DESKTOP)
    lead.get_by_role("button", name="Start a quick round").click()
    expect(status(bob)).to_have_attribute("data-round-status", "voting")
    card(bob, "5").click()
    expect(seat(lead, "Bob")).to_have_attribute("data-voted", "true")

    lead.fill("#timer-seconds", "5")
    expect(lead.locator("#timer-auto-reveal")).to_be_checked()
    lead.get_by_role("button", name="Start the round timer").click()
    for page in (lead, bob):
        expect(page.locator("#round-timer")).to_be_visible()
        expect(page.locator("#round-timer")).to_contain_text(re.compile(r"0:0[1-5]"))
    lead.screenshot(path=tmp_path / "timer-running.png", full_page=True)
    bob.reload()  # the deadline is the server's: a reloaded page shows the same countdown
    expect(bob.locator("#round-timer")).to_contain_text(re.compile(r"0:0[0-5]"))

    # Nobody clicks reveal: the server does when the time is up.
    for page in (lead, bob):
        expect(status(page)).to_have_attribute("data-round-status", "revealed", timeout=15_000)
        expect(seat(page, "Bob").locator(".seat-card")).to_have_text("5")
        expect(page.locator("#round-timer")).to_be_hidden()
    close(lead, bob)


def test_auto_reveal_once_everyone_present_has_voted(
    browser: Browser, live_server_url: str, team: str, tmp_path: Path
):
    """Carol is away and is not waited for; the cards turn over and the extremes are marked."""
    lead = open_table(browser, live_server_url, team, "lead", DESKTOP)
    bob = open_table(browser, live_server_url, team, "bob", DESKTOP)
    expect(seat(lead, "Carol")).to_have_attribute("data-online", "false")
    lead.get_by_label("Reveal when everyone present has voted").check()
    expect(bob.locator("#table")).to_have_attribute("data-connection", "live")
    lead.get_by_role("button", name="Start a quick round").click()
    expect(status(bob)).to_have_attribute("data-round-status", "voting")
    # Two present voters (lead, bob): Carol is absent, Olga observes.
    expect(lead.locator("#round-status")).to_have_text("Voting · 0 of 2 voted")
    card(bob, "3").click()
    expect(lead.locator("#round-status")).to_have_text("Voting · 1 of 2 voted")
    expect(status(lead)).to_have_attribute("data-round-status", "voting")
    card(lead, "8").click()
    for page in (lead, bob):
        expect(status(page)).to_have_attribute("data-round-status", "revealed")
        expect(seat(page, "Bob").locator(".seat-card")).to_have_class(re.compile(r"\blow\b"))
        expect(seat(page, "Lead").locator(".seat-card")).to_have_class(re.compile(r"\bhigh\b"))
        expect(seat(page, "Bob")).to_contain_text("lowest")
    bob.screenshot(path=tmp_path / "auto-revealed.png", full_page=True)
    close(lead, bob)


def test_a_facilitator_who_does_not_vote_is_not_counted(
    browser: Browser, live_server_url: str, team: str
):
    lead = open_table(browser, live_server_url, team, "lead", DESKTOP)
    bob = open_table(browser, live_server_url, team, "bob", DESKTOP)
    lead.get_by_label("Reveal when everyone present has voted").check()
    lead.get_by_label(re.compile("I am not voting")).check()
    expect(seat(bob, "Lead")).to_contain_text("not voting")
    lead.get_by_role("button", name="Start a quick round").click()
    expect(lead.locator("#round-status")).to_have_text("Voting · 0 of 1 voted")
    card(bob, "2").click()
    expect(status(lead)).to_have_attribute("data-round-status", "revealed")
    close(lead, bob)


def test_kick_and_promote_from_the_table(browser: Browser, live_server_url: str, team: str):
    lead = open_table(browser, live_server_url, team, "lead", DESKTOP)
    bob = open_table(browser, live_server_url, team, "bob", DESKTOP)
    carol = open_table(browser, live_server_url, team, "carol", DESKTOP)
    expect(bob.locator("#controls")).to_be_hidden()

    # Promote Bob: his open page becomes a facilitator's.
    lead.get_by_label("Manage Bob").click()
    lead.get_by_label("Role of Bob").select_option("facilitator")
    expect(bob.locator("#my-role")).to_have_text("facilitator")
    expect(bob.locator("#controls")).to_be_visible()
    expect(seat(lead, "Bob").locator(".badge")).to_have_text("facilitator")

    # Remove Carol: her socket is closed for good and she cannot come back.
    lead.get_by_label("Manage Carol").click()
    lead.get_by_label("Remove Carol from the team").click()
    expect(carol.locator("#connection")).to_contain_text("not a member")
    expect(seat(lead, "Carol")).to_have_count(0)
    response = carol.goto(f"/teams/{team}/table/")
    assert response is not None
    assert response.status in (403, 404)
    close(lead, bob, carol)


def test_a_facilitator_on_a_phone_plays_a_round(
    browser: Browser, live_server_url: str, team: str, tmp_path: Path
):
    """On a phone, each control the facilitator needs is on screen where they are."""
    lead = open_table(browser, live_server_url, team, "lead", PHONE)
    bob = open_table(browser, live_server_url, team, "bob", DESKTOP)
    start = lead.get_by_role("button", name="Start a quick round")
    assert lead.evaluate("scrollY") == 0
    assert in_view_without_scrolling(start)
    lead.screenshot(path=tmp_path / "phone-facilitator.png")
    start.click()
    expect(status(bob)).to_have_attribute("data-round-status", "voting")
    card(lead, "5").click()  # the hand is further down: the page scrolls to it
    card(bob, "8").click()
    expect(seat(lead, "Bob")).to_have_attribute("data-voted", "true")
    reveal = lead.get_by_role("button", name="Reveal the cards")
    assert in_view_without_scrolling(reveal)
    reveal.click()
    expect(status(lead)).to_have_attribute("data-round-status", "revealed")
    accept = lead.get_by_role("button", name="Accept the estimate", exact=True)
    expect(accept).to_be_visible()
    assert in_view_without_scrolling(accept)
    assert in_view_without_scrolling(lead.locator("#accept-value"))
    lead.screenshot(path=tmp_path / "phone-revealed.png")
    accept.click()
    expect(status(bob)).to_have_attribute("data-round-status", "accepted")
    close(lead, bob)
