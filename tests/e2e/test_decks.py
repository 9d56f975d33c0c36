"""A facilitator makes a deck of the team's own and the default; two members play a round with
it. The tables were open all along: the new deck reaches them without a reload, through the
live server's Redis channel layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.test_rounds import DESKTOP, TIMEOUT_MS, close, open_table

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # CI must run these tests; elsewhere a missing package only skips them.
    if os.environ.get("CI"):
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.processes]


def hand(page: Page) -> list[str]:
    return page.locator("#hand button.play-card").evaluate_all(
        "buttons => buttons.map(b => b.dataset.value)"
    )


def test_a_custom_deck_reaches_open_tables_and_is_played(
    browser: Browser, live_server_url: str, team: str, tmp_path: Path
):
    expect.set_options(timeout=TIMEOUT_MS)
    # The facilitator's table and Bob's are open before the deck exists.
    lead = open_table(browser, live_server_url, team, "lead", DESKTOP)
    bob = open_table(browser, live_server_url, team, "bob", DESKTOP)
    expect(bob.locator("#hand button.play-card").first).to_have_attribute("data-value", "0")

    # In another tab the facilitator adds the deck on the team's decks page and makes it the
    # default.
    admin_tab = lead.context.new_page()
    admin_tab.set_default_timeout(TIMEOUT_MS)
    admin_tab.goto(f"/teams/{team}/decks/")
    admin_tab.locator("#new-deck summary").click()
    admin_tab.fill("#id_name", "Our scale")
    admin_tab.fill("#id_cards", "XS=1 S=2 M=3 L=5 XL=8 ? ∞ pass")
    admin_tab.get_by_role("button", name="Add deck").click()
    expect(admin_tab.locator(".deck", has_text="Our scale")).to_contain_text("numeric")
    # The new deck is in the open tables' pickers at once, not yet dealt.
    expect(lead.locator("#deck-select option", has_text="Our scale")).to_have_count(1)
    admin_tab.get_by_role("button", name="Make Our scale the default deck").click()
    expect(admin_tab.locator(".deck", has_text="Our scale")).to_contain_text("default")
    admin_tab.screenshot(path=tmp_path / "decks-page.png", full_page=True)

    # Both open tables show the new deck without a reload.
    for page in (lead, bob):
        expect(page.locator("#deck-name")).to_have_text("· Our scale")
        expect(page.locator('#hand button.play-card[data-value="XL"]')).to_have_count(1)
        assert hand(page) == ["XS", "S", "M", "L", "XL", "?", "∞", "pass"]
    expect(lead.locator("#deck-select")).to_have_value(
        lead.locator("#deck-select option", has_text="Our scale").get_attribute("value") or ""
    )

    # A round with it: Bob plays L, the facilitator S.
    lead.get_by_role("button", name="Start a quick round").click()
    for page in (lead, bob):
        expect(page.locator("#table")).to_have_attribute("data-round-status", "voting")
    bob.locator('#hand button.play-card[data-value="L"]').click()
    expect(bob.locator('#hand button.play-card[data-value="L"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    lead.locator('#hand button.play-card[data-value="S"]').click()
    expect(lead.locator('#hand button.play-card[data-value="S"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    lead.get_by_role("button", name="Reveal the cards").click()
    for page in (lead, bob):
        expect(page.locator("#table")).to_have_attribute("data-round-status", "revealed")
        expect(page.locator('#stats [data-stat="mean"] dd')).to_have_text("3.5")
        expect(page.locator('#stats [data-stat="median"] dd')).to_have_text("3.5")
        expect(page.locator('#stats [data-stat="range"] dd')).to_have_text(
            "S \u2013 L"
        )  # an en dash, as the page writes it
        expect(page.locator("#distribution .dist-row")).to_have_count(2)
    # The median 3.5 lies between M (3) and L (5): the nearest card is M.
    expect(lead.locator("#accept-value")).to_have_value("M")
    lead.screenshot(path=tmp_path / "custom-deck-revealed.png", full_page=True)
    close(lead, bob)
