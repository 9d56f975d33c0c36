"""The facilitator ends the session in the browser; the summary e-mail reaches a real SMTP
server (the live server sends it from its outbox, after the table has moved on)."""

from __future__ import annotations

import os

import pytest

from notifications.tests.servers import text_of
from tests.e2e.conftest import DEMO_PASSWORD
from tests.processes import wait_until

try:
    from playwright.sync_api import Browser, expect
except ImportError:  # CI must run these tests; elsewhere a missing package only skips them.
    if os.environ.get("CI"):
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.processes]

TABLE = "/teams/demo/table/"
TIMEOUT_MS = 10_000


def test_the_facilitator_ends_the_session_and_the_summary_e_mail_arrives(
    browser: Browser, live_server_url: str, mail_server
):
    errors: list[str] = []
    context = browser.new_context(base_url=live_server_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto("/accounts/login/?next=/account/notifications/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/account/notifications/")

    # Alice opts in to session summaries on her settings page.
    page.get_by_label("E-mail me a summary when a session of my teams ends").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your notification settings are saved.")).to_be_visible()

    # She plays a quick round, reveals and accepts, then ends the session.
    page.goto(TABLE)
    table = page.locator("#table")
    expect(table).to_have_attribute("data-connection", "live")
    # The demo table is shared with the other browser tests: close a round left open.
    if table.get_attribute("data-round-status") == "voting":
        page.click("#reveal-btn")
        expect(table).to_have_attribute("data-round-status", "revealed")
    page.fill("#quick-title", "Pricing page")
    page.click("#quick-btn")
    expect(page.locator("#round-text")).to_have_text("Pricing page")
    page.locator('#hand button.play-card[data-value="5"]').click()
    page.click("#reveal-btn")
    expect(page.locator("#accept-form")).to_be_visible()
    page.fill("#accept-value", "5")
    page.click("#accept-btn")
    expect(page.locator("#round-status")).to_have_attribute("data-status", "accepted")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="End the session and send its summary").click()
    expect(page.locator("#toast")).to_contain_text("The session has ended")

    arrived = wait_until(
        lambda: [m for m in mail_server.to("alice@example.com") if "session" in m["Subject"]],
        timeout=30,
        what="the session summary e-mail at the SMTP server",
    )
    body = text_of(arrived[-1])
    assert "Pricing page: 5" in body
    assert f"{live_server_url}/notifications/unsubscribe/" in body
    assert not [m for m in mail_server.messages if "bob@example.com" in str(m["To"])]
    assert errors == []
    context.close()
