"""A bad network at the live table, in a real browser: a silent drop is noticed by the page's
heartbeat, a card played meanwhile is shown as pending and arrives after the reconnect, and a
member's card shows in each of their tabs."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from tests.e2e.conftest import DEMO_PASSWORD
from tests.e2e.test_browser import DESKTOP, TABLE, TIMEOUT_MS, card, open_table, seat

try:
    from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect
except ImportError:  # CI must run these tests; elsewhere a missing package only skips them.
    if os.environ.get("CI"):
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.processes]
SOCKETS = re.compile(r".*/ws/teams/.*")


def log_in(context: BrowserContext, username: str, errors: list[str]) -> Page:
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda error: errors.append(f"{username}: {error}"))
    page.goto(f"/accounts/login/?next={TABLE}")
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"**{TABLE}")
    expect(page.locator("#table")).to_have_attribute("data-connection", "live")
    return page


def start_a_round(alice: Page) -> None:
    """A fresh round on the next story (whatever the table's state after the other tests)."""
    status = alice.locator("#table").get_attribute("data-round-status")
    if status == "voting":
        alice.get_by_role("button", name="Reveal the cards").click()
        expect(alice.locator("#table")).to_have_attribute("data-round-status", "revealed")
    alice.get_by_role("button", name="Start a round on the chosen story").click()
    expect(alice.locator("#table")).to_have_attribute("data-round-status", "voting")


def test_a_silent_drop_is_noticed_and_the_card_played_meanwhile_arrives(
    browser: Browser, live_server_url: str
):
    errors: list[str] = []
    alice = open_table(browser, live_server_url, "alice", DESKTOP, errors)
    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    connections: list[dict] = []

    def through_a_network_that_can_go_silent(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        link = {"silent": False, "opened": time.monotonic()}
        connections.append(link)
        ws.on_message(lambda message: None if link["silent"] else server.send(message))
        server.on_message(lambda message: None if link["silent"] else ws.send(message))

    context.route_web_socket(SOCKETS, through_a_network_that_can_go_silent)
    bob = log_in(context, "bob", errors)
    start_a_round(alice)
    expect(bob.locator("#table")).to_have_attribute("data-round-status", "voting")

    # The network drops without a word: nothing in, nothing out, no close.
    connections[-1]["silent"] = True
    dropped = time.monotonic()
    card(bob, "3").click()
    expect(card(bob, "3")).to_have_class(re.compile(r"\bpending\b"))
    expect(card(bob, "3")).to_have_attribute("aria-busy", "true")
    expect(seat(alice, "Bob")).to_have_attribute("data-voted", "false")

    # The heartbeat notices (1 s + 1.5 s here, 15 s + 10 s by default), the page reconnects
    # on a fresh connection, and the card goes out then.
    expect(card(bob, "3")).to_have_attribute("aria-pressed", "true")
    assert len(connections) == 2
    assert connections[1]["opened"] - dropped < 6
    expect(card(bob, "3")).not_to_have_class(re.compile(r"\bpending\b"))
    expect(seat(alice, "Bob")).to_have_attribute("data-voted", "true")
    expect(bob.locator("#table")).to_have_attribute("data-connection", "live")

    assert errors == []
    alice.context.close()
    context.close()


def test_a_card_played_in_one_tab_shows_in_the_members_other_tab(
    browser: Browser, live_server_url: str
):
    errors: list[str] = []
    alice = open_table(browser, live_server_url, "alice", DESKTOP, errors)
    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    first = log_in(context, "bob", errors)
    second = context.new_page()
    second.set_default_timeout(TIMEOUT_MS)
    second.goto(TABLE)
    expect(second.locator("#table")).to_have_attribute("data-connection", "live")
    start_a_round(alice)
    for page in (first, second):
        expect(page.locator("#table")).to_have_attribute("data-round-status", "voting")

    card(first, "8").click()
    expect(card(first, "8")).to_have_attribute("aria-pressed", "true")
    expect(card(second, "8")).to_have_attribute("aria-pressed", "true")
    # Still secret to everyone else.
    expect(seat(alice, "Bob")).to_have_attribute("data-voted", "true")
    assert "8" not in alice.locator("#participants").inner_text()

    assert errors == []
    alice.context.close()
    context.close()


def test_an_unreachable_team_database_is_shown_and_the_table_comes_back_by_itself(
    browser: Browser, live_server_url: str
):
    """While the server answers `shard_unavailable` (what it says when the team's shard cannot
    be reached; tests/faults breaks a real one), the page says so and keeps a card clicked
    meanwhile; the first heartbeat answered again brings the table back and plays the card."""
    errors: list[str] = []
    alice = open_table(browser, live_server_url, "alice", DESKTOP, errors)
    context = browser.new_context(base_url=live_server_url, viewport=DESKTOP)
    shard = {"down": False}

    def through_a_server_whose_database_may_be_down(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if not shard["down"]:
                server.send(message)
                return
            command = json.loads(message)
            ws.send(
                json.dumps(
                    {
                        "type": "error",
                        "request_id": command.get("request_id"),
                        "code": "shard_unavailable",
                        "message": "The team's database cannot be reached; nothing was changed.",
                    }
                )
            )

        ws.on_message(from_page)
        server.on_message(ws.send)

    context.route_web_socket(SOCKETS, through_a_server_whose_database_may_be_down)
    bob = log_in(context, "bob", errors)
    start_a_round(alice)
    expect(bob.locator("#table")).to_have_attribute("data-round-status", "voting")

    shard["down"] = True
    # The next heartbeat (every second here) hears it.
    expect(bob.locator("#table")).to_have_attribute("data-connection", "unavailable")
    expect(bob.locator("#connection")).to_contain_text("database cannot be reached")
    card(bob, "5").click()
    expect(seat(alice, "Bob")).to_have_attribute("data-voted", "false")
    # Answered, so not a dead connection: the page does not drop the socket over it.
    time.sleep(3)
    expect(bob.locator("#table")).to_have_attribute("data-connection", "unavailable")

    shard["down"] = False
    expect(bob.locator("#table")).to_have_attribute("data-connection", "live")
    expect(card(bob, "5")).to_have_attribute("aria-pressed", "true")
    expect(seat(alice, "Bob")).to_have_attribute("data-voted", "true")

    assert errors == []
    alice.context.close()
    context.close()
