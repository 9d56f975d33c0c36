"""A team renamed on its settings page is renamed on every open table at once (team_renamed),
heading and window title, without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.test_rounds import DESKTOP, close, open_table

pytestmark = [pytest.mark.browser, pytest.mark.processes]


def test_a_renamed_team_is_renamed_on_open_tables(
    browser: Browser,
    live_server_url: str,
    team: str,
):
    lead = open_table(browser, live_server_url, team, "lead", DESKTOP)
    bob = open_table(browser, live_server_url, team, "bob", DESKTOP)
    expect(bob.locator("#team-name")).to_have_text(team)

    settings = lead.context.new_page()
    settings.goto(f"/teams/{team}/settings/")
    settings.fill("#id_name", "Renamed crew")
    settings.get_by_role("button", name="Save settings").click()
    expect(settings.locator("h1")).to_have_text("Renamed crew")

    for page in (bob, lead):
        expect(page.locator("#team-name")).to_have_text("Renamed crew")
        expect(page).to_have_title(re.compile(r"Renamed crew"))
    settings.close()
    close(lead, bob)
