"""The main screens, photographed on every browser run: PNGs in ``var/screenshots/`` (kept as the
run's artefacts), or in ``$SCREENSHOTS_DIR`` (``make screenshots`` writes docs/screenshots/, which
the README shows). Each picture is taken only once the page shows what it is meant to show, so a
broken page fails here instead of being photographed.

A team of its own, "Checkout", with a backlog, three estimated stories in its history and a deck
of its own, makes the pictures the same on every run whatever the other tests did to the demo
team."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import DEMO_PASSWORD, ROOT
from tests.e2e.test_accessibility import DARK_BG, background, log_in
from tests.e2e.test_rounds import DESKTOP, PHONE, TIMEOUT_MS, card, in_view_without_scrolling, seat

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # CI must run these tests; elsewhere a missing package only skips them.
    if os.environ.get("CI"):
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.processes]

expect.set_options(timeout=TIMEOUT_MS)

SLUG = "checkout"
TEAM = f"/teams/{SLUG}/"
TABLE = f"/teams/{SLUG}/table/"
STORIES = [
    ("CHK-101", "Guest checkout without an account"),
    ("CHK-102", "Save a card for later purchases"),
    ("CHK-103", "Apple Pay and Google Pay"),
    ("CHK-104", "Split a payment across two cards"),
    ("CHK-105", "Show the delivery date before payment"),
    ("CHK-106", "Retry a declined payment"),
    ("CHK-107", "Invoice attached to the order e-mail"),
    ("CHK-108", "Promo codes at checkout"),
]
# The estimated stories: each member's card, then the estimate the facilitator accepted.
PLAYED = [
    ({"maya": "5", "jonas": "5", "priya": "8", "sam": "3"}, "5"),
    ({"maya": "3", "jonas": "2", "priya": "3", "sam": "3"}, "3"),
    ({"maya": "8", "jonas": "13", "priya": "8", "sam": "8"}, "8"),
]
SETUP = """
from accounts import services
from accounts.models import Membership, User
from accounts.roles import Role
from rooms import game, services as rooms
from stories import services as stories
people = {people!r}
members = {{}}
for username, (first, role) in people.items():
    user = User.objects.create_user(
        username=username, password={password!r}, first_name=first,
        email=username + "@example.com",
    )
    if role == Role.FACILITATOR:
        team = services.team_create(name="Checkout", creator=user)
        assert team.slug == {slug!r}, team.slug
    else:
        services.membership_add(team=team, user=user, role=role)
    members[username] = Membership.objects.select_related("team").get(team=team, user=user)
lead = members["maya"]
ids = [
    stories.story_create(
        membership=lead, title=title, external_key=key,
        url="https://tracker.example/browse/" + key,
    ).id
    for key, title in {stories!r}
]
for story_id, (cards, estimate) in zip(ids, {played!r}):
    rooms.round_start(membership=lead, story_id=story_id)
    for username, value in cards.items():
        rooms.vote_cast(membership=members[username], value=value)
    rooms.round_reveal(membership=lead)
    rooms.estimate_accept(membership=lead, value=estimate)
rooms.deck_create_for_team(
    team=team, name="Days", cards=game.parse_cards("½d=0.5 1d=1 2d=2 3d=3 5d=5 8d=8 ? ☕")
)
"""
PEOPLE = {
    "maya": ("Maya", "facilitator"),
    "jonas": ("Jonas", "voter"),
    "priya": ("Priya", "voter"),
    "sam": ("Sam", "voter"),
    "lee": ("Lee", "observer"),
}


@pytest.fixture(scope="module")
def checkout(live_manage) -> str:
    """The "Checkout" team, its members (maya facilitates; jonas, priya, sam vote; lee
    observes), its backlog, history and deck."""
    live_manage(
        "shell",
        "-c",
        SETUP.format(
            people=PEOPLE, password=DEMO_PASSWORD, slug=SLUG, stories=STORIES, played=PLAYED
        ),
    )
    return SLUG


@pytest.fixture(scope="module")
def shots() -> Path:
    """Where the pictures go (made if missing)."""
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or ROOT / "var" / "screenshots")
    if not folder.is_absolute():
        folder = ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page: Page, folder: Path, name: str, *, full_page: bool = True) -> None:
    """A PNG of the page at rest: its animations run to their end (the cards fully turned), no
    blinking caret."""
    path = folder / f"{name}.png"
    page.screenshot(path=path, full_page=full_page, animations="disabled", caret="hide")
    assert path.stat().st_size > 1000, path


def new_page(browser: Browser, base_url: str, viewport: dict, **options) -> Page:
    context = browser.new_context(
        base_url=base_url,
        viewport=viewport,
        color_scheme=options.pop("color_scheme", "light"),
        **options,
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    return page


def visit(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None
    assert response.ok, f"{path}: {response.status}"


def open_table(browser: Browser, base_url: str, username: str, viewport: dict, **options) -> Page:
    page = new_page(browser, base_url, viewport, **options)
    log_in(page, username, TABLE)
    expect(page.locator("#table")).to_have_attribute("data-connection", "live")
    return page


def close(*pages: Page) -> None:
    for page in pages:
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()


def test_the_pages_around_the_table(
    browser: Browser, live_server_url: str, checkout: str, shots: Path
):
    anonymous = new_page(browser, live_server_url, DESKTOP)
    visit(anonymous, "/accounts/login/")
    demo = anonymous.locator(".demo-users")
    expect(demo).to_contain_text("poker-demo")
    for username in ("alice", "bob", "carol"):
        expect(demo).to_contain_text(username)
    shoot(anonymous, shots, "login")

    maya = new_page(browser, live_server_url, DESKTOP)
    log_in(maya, "maya", "/teams/")
    expect(maya.locator(".team-list .team-name")).to_have_text(["Checkout"])
    shoot(maya, shots, "dashboard")

    visit(maya, TEAM)
    backlog = maya.locator("ol.story-list li")
    expect(backlog).to_have_count(len(STORIES))
    expect(backlog.first).to_contain_text("CHK-101")
    expect(backlog.first.locator(".estimate")).to_have_text("5")
    shoot(maya, shots, "team")

    visit(maya, f"{TEAM}history/")
    for key, title in STORIES[: len(PLAYED)]:
        expect(maya.locator(".card.round", has_text=key)).to_contain_text(title)
    shoot(maya, shots, "history")

    visit(maya, f"{TEAM}settings/")
    expect(maya.get_by_role("heading", name="Team settings")).to_be_visible()
    expect(maya.get_by_role("button", name="Save settings")).to_be_visible()
    shoot(maya, shots, "settings")

    visit(maya, f"{TEAM}decks/")
    expect(maya.locator(".deck", has_text="Days")).to_contain_text("this team's")
    shoot(maya, shots, "decks")
    close(anonymous, maya)


def test_the_live_table_during_a_round_after_the_reveal_on_a_phone_and_in_the_dark(
    browser: Browser, live_server_url: str, checkout: str, shots: Path
):
    maya = open_table(browser, live_server_url, "maya", DESKTOP)
    others = {
        name: open_table(browser, live_server_url, name, DESKTOP)
        for name in ("jonas", "priya", "sam")
    }
    for name in ("Jonas", "Priya", "Sam"):
        expect(seat(maya, name)).to_have_attribute("data-online", "true")

    # Mid-round: the next story without an estimate, two of the four present voters have voted.
    expect(maya.locator("#story-select option:checked")).to_contain_text("CHK-104")
    maya.get_by_role("button", name="Start a round on the chosen story").click()
    for page in others.values():
        expect(page.locator("#table")).to_have_attribute("data-round-status", "voting")
    card(others["jonas"], "5").click()
    card(others["priya"], "13").click()
    expect(maya.locator("#round-status")).to_have_text("Voting · 2 of 4 voted")
    expect(seat(maya, "Priya")).to_have_attribute("data-voted", "true")
    expect(seat(maya, "Priya").locator(".seat-card")).to_have_text("")
    shoot(maya, shots, "table-voting")

    # The facilitator on a phone: the controls on screen without scrolling.
    phone = open_table(browser, live_server_url, "maya", PHONE, device_scale_factor=2)
    expect(phone.locator("#table")).to_have_attribute("data-round-status", "voting")
    reveal = phone.get_by_role("button", name="Reveal the cards")
    expect(reveal).to_be_visible()
    assert in_view_without_scrolling(reveal)
    shoot(phone, shots, "phone-facilitator", full_page=False)

    # After the reveal: the cards turned, the lowest and highest marked, the statistics.
    card(maya, "8").click()
    card(others["sam"], "3").click()
    expect(maya.locator("#round-status")).to_have_text("Voting · 4 of 4 voted")
    maya.get_by_role("button", name="Reveal the cards").click()
    expect(maya.locator("#table")).to_have_attribute("data-round-status", "revealed")
    expect(seat(maya, "Sam").locator(".seat-card")).to_have_class(re.compile(r"\blow\b"))
    expect(seat(maya, "Priya").locator(".seat-card")).to_have_class(re.compile(r"\bhigh\b"))
    expect(maya.locator('#stats [data-stat="median"] dd')).to_have_text("6.5")
    expect(maya.locator("#distribution .dist-row")).to_have_count(4)
    shoot(maya, shots, "table-revealed")

    # The same table in the dark theme.
    dark = open_table(browser, live_server_url, "maya", DESKTOP, color_scheme="dark")
    expect(dark.locator("#table")).to_have_attribute("data-round-status", "revealed")
    expect(seat(dark, "Priya").locator(".seat-card")).to_have_text("13")
    assert background(dark) == DARK_BG
    shoot(dark, shots, "table-revealed-dark")
    close(maya, *others.values(), phone, dark)
