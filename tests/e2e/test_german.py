"""A German browser (Accept-Language de-DE) at the live table: the texts the scripts write, the
vote count, the screen reader's announcements, a refusal's error code, come in German from the
page's catalogue (/jsi18n/), while the server's socket speaks English."""

from __future__ import annotations

import os
import re

import pytest

from tests.e2e.test_rounds import DESKTOP, close, open_table, seat, status

try:
    from playwright.sync_api import Browser, expect
except ImportError:  # CI must run these tests; elsewhere a missing package only skips them.
    if os.environ.get("CI"):
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.processes]


def test_a_german_user_plays_a_round_in_german(browser: Browser, live_server_url: str, team: str):
    lead = open_table(browser, live_server_url, team, "lead", DESKTOP, "de-DE")
    bob = open_table(browser, live_server_url, team, "bob", DESKTOP, "de-DE")
    for page in (lead, bob):
        expect(page.locator("#connection .conn-text")).to_have_text("Verbunden")
    expect(seat(lead, "Olga").locator(".badge")).to_have_text("Beobachter")
    expect(bob.locator("#hand-hint")).to_have_text("Warten, bis der Moderator eine Runde startet.")

    lead.locator("#quick-btn").click()
    expect(status(bob)).to_have_attribute("data-round-status", "voting")
    # Two present voters (lead, bob): Carol is away, Olga observes. German agrees the verb with
    # the number who voted (ngettext).
    expect(lead.locator("#round-status")).to_have_text("Abstimmung · 0 von 2 haben abgestimmt")
    bob.get_by_role("button", name="Für 5 stimmen").click()
    expect(seat(lead, "Bob")).to_have_attribute("data-voted", "true")
    expect(lead.locator("#round-status")).to_have_text("Abstimmung · 1 von 2 hat abgestimmt")
    expect(lead.locator("#announcer")).to_have_text("1 von 2 hat abgestimmt.")
    expect(bob.locator("#hand-hint")).to_contain_text("Gespielt: 5.")

    # A voter's page sends a facilitator's command: the server refuses it with the code
    # `forbidden`, in the socket's language (the page's).
    bob.evaluate("window.pokerTable.send('reveal_cards')")
    expect(bob.locator("#toast")).to_have_text(
        "Ein Schätzer darf nicht die Karten aufdecken. (forbidden)"
    )

    lead.locator("#reveal-btn").click()
    for page in (lead, bob):
        expect(status(page)).to_have_attribute("data-round-status", "revealed")
        expect(page.locator("#round-status")).to_have_text("Aufgedeckt")
        expect(page.locator('#stats [data-stat="votes"] dt')).to_have_text("Stimmen")
        expect(page.locator('#distribution [data-card="5"] .count')).to_have_text("1 Stimme")
    expect(lead.locator("#announcer")).to_have_text(
        re.compile(r"^Karten aufgedeckt: 1 Stimme, vorgeschlagene Schätzung .+\.$")
    )
    close(lead, bob)


def test_an_english_browser_gets_the_servers_own_message(
    browser: Browser, live_server_url: str, team: str
):
    """Without a translation the page shows the server's message, which may say more than the
    code's text (here the role and the action)."""
    bob = open_table(browser, live_server_url, team, "bob", DESKTOP, "en-US")
    expect(bob.locator("#connection .conn-text")).to_have_text("Live")
    bob.evaluate("window.pokerTable.send('reveal_cards')")
    expect(bob.locator("#toast")).to_have_text("A voter may not reveal the cards. (forbidden)")
    close(bob)
