"""Reordering the backlog in a real browser against a real server: by dragging a story's handle
with the mouse and with a finger, and with the keyboard alone. The new order is saved (a reload
shows it) and reaches the open tables of other members without a reload; a move the server
refuses puts the row back and says why.

Each test sets up a team of its own (users ``<prefix>-lead``, ``-bob``, ``-carol`` and
``-olga``, as in test_rounds.py) with the stories A, B, C and D, in that order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.e2e import test_rounds as rounds
from tests.e2e.conftest import DEMO_PASSWORD, TEAM_SETUP

try:
    from playwright.sync_api import Browser, Locator, Page, expect
except ImportError:  # CI must run these tests; elsewhere a missing package only skips them.
    if os.environ.get("CI"):
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.processes]

DESKTOP, PHONE, TIMEOUT_MS = rounds.DESKTOP, rounds.PHONE, rounds.TIMEOUT_MS

# The browser tests' team (lead, bob, carol voting, olga observing) with the four stories A-D
# instead of its usual two.
SETUP = (
    TEAM_SETUP
    + """
from stories.models import Story
from stories.services import story_create_for_team, story_delete_for_team
for story in Story.objects.using(team.shard).filter(team_id=team.pk):
    story_delete_for_team(team=team, story_id=story.pk)
for title in "ABCD":
    story_create_for_team(team=team, title=title)
"""
)

DELETE_STORY = """
from accounts.models import Team
from stories.models import Story
from stories.services import story_delete_for_team
team = Team.objects.get(slug="{slug}")
story = Story.objects.using(team.shard).get(team_id=team.pk, title="{title}")
story_delete_for_team(team=team, story_id=story.pk)
"""

VOTERS_KEEP_OFF = """
from accounts.models import Team
Team.objects.filter(slug="{slug}").update(voters_edit_backlog=False)
"""


@pytest.fixture
def team(live_manage, request) -> str:
    """A team of this test's own; returns its slug (= the user names' prefix)."""
    prefix = re.sub(r"[^a-z]", "", request.node.name.lower())[-20:]
    live_manage("shell", "-c", SETUP.format(prefix=prefix, password=DEMO_PASSWORD))
    return prefix


def log_in(browser: Browser, base_url: str, slug: str, who: str, path: str, **options) -> Page:
    """Log ``<slug>-<who>`` in and open ``path``; the page collects its script errors."""
    context = browser.new_context(base_url=base_url, **{"viewport": DESKTOP, **options})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"/accounts/login/?next={path}")
    page.fill("#id_username", f"{slug}-{who}")
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"**{path}")
    return page


def open_backlog(browser: Browser, base_url: str, slug: str, who: str, **options) -> Page:
    page = log_in(browser, base_url, slug, who, f"/teams/{slug}/", **options)
    expect(page.locator("ol.story-list > li.story")).to_have_count(4)
    return page


def backlog_titles(page: Page) -> Locator:
    return page.locator("ol.story-list > li.story .story-title")


def table_titles(page: Page) -> Locator:
    return page.locator("#backlog .mini-story-text")


def row(page: Page, title: str) -> Locator:
    return page.locator(
        "ol.story-list > li.story", has=page.get_by_role("link", name=title, exact=True)
    )


def handle(page: Page, title: str) -> Locator:
    return page.get_by_role("button", name=f"Reorder {title}", exact=True)


def drag_with_the_mouse(page: Page, title: str, above: str) -> None:
    """Press ``title``'s handle, move in steps to the top edge of ``above``'s row, release."""
    start = handle(page, title).bounding_box()
    target = row(page, above).bounding_box()
    assert start is not None
    assert target is not None
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2, target["y"] + 3, steps=8)
    # While dragging, a line shows where the story will land.
    expect(page.locator("ol.story-list > li.drop-indicator")).to_have_count(1)
    page.mouse.up()
    expect(page.locator("ol.story-list > li.drop-indicator")).to_have_count(0)


def test_reorder_by_mouse_and_by_keyboard_saves_and_reaches_open_tables(
    browser: Browser, live_server_url: str, team: str, tmp_path: Path
):
    lead = open_backlog(browser, live_server_url, team, "lead")
    # The facilitator's own table in a second tab (its story select), Bob's table elsewhere.
    lead_table = lead.context.new_page()
    lead_table.errors = []  # type: ignore[attr-defined]
    lead_table.on("pageerror", lambda error: lead_table.errors.append(str(error)))  # type: ignore[attr-defined]
    lead_table.goto(f"/teams/{team}/table/")
    expect(lead_table.locator("#table")).to_have_attribute("data-connection", "live")
    bob_table = rounds.open_table(browser, live_server_url, team, "bob", DESKTOP)
    expect(table_titles(bob_table)).to_have_text(["A", "B", "C", "D"])
    announcer = lead.locator("#announcer")

    # The mouse: D goes to the top.
    drag_with_the_mouse(lead, "D", above="A")
    expect(backlog_titles(lead)).to_have_text(["D", "A", "B", "C"])
    expect(announcer).to_have_text("D moved to position 1 of 4.")
    expect(handle(lead, "D")).to_be_focused()
    # The up/down buttons follow: the new first row cannot go up, the old one can.
    expect(row(lead, "D").get_by_role("button", name="Move D up")).to_be_disabled()
    expect(row(lead, "A").get_by_role("button", name="Move A up")).to_be_enabled()
    expect(table_titles(bob_table)).to_have_text(["D", "A", "B", "C"])
    lead.screenshot(path=tmp_path / "backlog-dragged.png", full_page=True)

    # The keyboard: A picked up, two places down, dropped; the focus stays on A.
    handle(lead, "A").focus()
    lead.keyboard.press("Space")
    expect(announcer).to_contain_text("A picked up, position 2 of 4.")
    expect(handle(lead, "A")).to_have_attribute("aria-pressed", "true")
    lead.keyboard.press("ArrowDown")
    expect(announcer).to_have_text("A, position 3 of 4.")
    lead.keyboard.press("ArrowDown")
    expect(backlog_titles(lead)).to_have_text(["D", "B", "C", "A"])
    expect(handle(lead, "A")).to_be_focused()
    lead.keyboard.press("Space")
    expect(announcer).to_have_text("A moved to position 4 of 4.")
    expect(handle(lead, "A")).to_have_attribute("aria-pressed", "false")
    expect(handle(lead, "A")).to_be_focused()
    expect(table_titles(bob_table)).to_have_text(["D", "B", "C", "A"])
    expect(lead_table.locator("#story-select option")).to_have_text(["D", "B", "C", "A"])

    # Escape puts a story back where it was, and nothing is saved.
    handle(lead, "C").focus()
    lead.keyboard.press("Enter")
    lead.keyboard.press("ArrowUp")
    lead.keyboard.press("ArrowUp")
    expect(backlog_titles(lead)).to_have_text(["C", "D", "B", "A"])
    lead.keyboard.press("Escape")
    expect(backlog_titles(lead)).to_have_text(["D", "B", "C", "A"])
    expect(announcer).to_have_text("Move cancelled: C is back at position 3 of 4.")
    expect(handle(lead, "C")).to_be_focused()

    # Saved: a reload, and another member's backlog page, show the new order.
    lead.reload()
    expect(backlog_titles(lead)).to_have_text(["D", "B", "C", "A"])
    bob = open_backlog(browser, live_server_url, team, "bob")
    expect(backlog_titles(bob)).to_have_text(["D", "B", "C", "A"])
    expect(table_titles(bob_table)).to_have_text(["D", "B", "C", "A"])
    assert lead_table.errors == []  # type: ignore[attr-defined]
    rounds.close(lead, bob_table, bob)  # the facilitator's table tab closes with their context


def test_a_refused_move_puts_the_row_back_and_says_why(
    browser: Browser, live_server_url: str, team: str, live_manage
):
    bob = open_backlog(browser, live_server_url, team, "bob")
    lead = open_backlog(browser, live_server_url, team, "lead")
    notice = "#reorder-notice"

    # B was deleted meanwhile: dragging it is refused and it goes back.
    live_manage("shell", "-c", DELETE_STORY.format(slug=team, title="B"))
    drag_with_the_mouse(lead, "B", above="A")
    expect(lead.locator(notice)).to_have_text("No such story in this team's backlog.")
    expect(backlog_titles(lead)).to_have_text(["A", "B", "C", "D"])

    # Bob could edit the backlog when his page loaded; the facilitators have since kept it to
    # themselves. His keyboard move is refused and undone.
    live_manage("shell", "-c", VOTERS_KEEP_OFF.format(slug=team))
    handle(bob, "D").focus()
    bob.keyboard.press("Space")
    bob.keyboard.press("ArrowUp")
    bob.keyboard.press("Space")
    expect(bob.locator(notice)).to_have_text("In this team only facilitators edit the backlog.")
    expect(backlog_titles(bob)).to_have_text(["A", "B", "C", "D"])
    expect(handle(bob, "D")).to_be_focused()
    bob.reload()
    expect(backlog_titles(bob)).to_have_text(["A", "C", "D"])
    expect(bob.locator(".drag-handle")).to_have_count(0)

    # An observer never gets the handles.
    olga = log_in(browser, live_server_url, team, "olga", f"/teams/{team}/")
    expect(olga.locator("ol.story-list > li.story")).to_have_count(3)
    expect(olga.locator(".drag-handle")).to_have_count(0)
    rounds.close(bob, lead, olga)


def test_reorder_with_a_finger_on_a_phone(browser: Browser, live_server_url: str, team: str):
    """A touch drag on the handle moves the story; the page does not scroll instead."""
    lead = open_backlog(browser, live_server_url, team, "lead", viewport=PHONE, has_touch=True)
    cdp = lead.context.new_cdp_session(lead)
    start = handle(lead, "A").bounding_box()
    target = row(lead, "D").bounding_box()
    assert start is not None
    assert target is not None
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    end_y = target["y"] + target["height"] - 3  # the lower edge of D: below it
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for i in range(1, 9):
        point = {"x": x, "y": y + (end_y - y) * i / 8}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    expect(backlog_titles(lead)).to_have_text(["B", "C", "D", "A"])
    expect(lead.locator("#announcer")).to_have_text("A moved to position 4 of 4.")
    lead.reload()
    expect(backlog_titles(lead)).to_have_text(["B", "C", "D", "A"])
    rounds.close(lead)
