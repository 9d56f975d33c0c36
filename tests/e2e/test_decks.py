"""A facilitator makes a deck of the team's own and the default; two members play a round with
it. The tables were open all along: the new deck reaches them without a reload, through the
Redis channel layer (a server of its own, with REDIS_URL set)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    DEMO_PASSWORD,
    _daphne,
    _free_port,
    _manage,
    _server_env,
    _skip_or_fail,
    _wait_healthy,
)

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # CI must run these tests; elsewhere a missing package only skips them.
    if os.environ.get("CI"):
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.processes]

TABLE = "/teams/demo/table/"
DECKS = "/teams/demo/decks/"
TIMEOUT_MS = 10_000
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, seeded Daphne on the Redis channel layer (and cache), under a prefix of its
    own so that nothing else on the Redis server hears its tables."""
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except Exception as exc:  # any failure means there is no Redis to test with
        _skip_or_fail(f"no Redis at {redis_url}: {exc}")
    tmp = tmp_path_factory.mktemp("e2e-decks")
    env = _server_env(tmp)
    env.update(REDIS_URL=redis_url, CHANNEL_LAYER_PREFIX=f"e2e-decks-{uuid.uuid4().hex[:8]}")
    _manage(env, "migrate_all")
    _manage(env, "seed_demo", "--password", DEMO_PASSWORD)
    port = _free_port()
    log = tmp / "server.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own daphne
            [*_daphne(), "-b", "127.0.0.1", "-p", str(port), "pokerproject.asgi:application"],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_in(browser: Browser, base_url: str, username: str, errors: list[str]) -> Page:
    context = browser.new_context(base_url=base_url, viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda error: errors.append(f"{username}: {error}"))
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/teams/**")
    return page


def open_table(page: Page) -> None:
    page.goto(TABLE)
    expect(page.locator("#table")).to_have_attribute("data-connection", "live")


def hand(page: Page) -> list[str]:
    return page.locator("#hand button.play-card").evaluate_all(
        "buttons => buttons.map(b => b.dataset.value)"
    )


def test_a_custom_deck_reaches_open_tables_and_is_played(
    browser: Browser, redis_server_url: str, tmp_path: Path
):
    expect.set_options(timeout=TIMEOUT_MS)
    errors: list[str] = []
    # Alice's table and Bob's are open before the deck exists.
    alice_table = log_in(browser, redis_server_url, "alice", errors)
    open_table(alice_table)
    bob = log_in(browser, redis_server_url, "bob", errors)
    open_table(bob)
    expect(bob.locator("#hand button.play-card").first).to_have_attribute("data-value", "0")

    # In another tab Alice adds the deck on the team's decks page and makes it the default.
    admin_tab = alice_table.context.new_page()
    admin_tab.goto(DECKS)
    admin_tab.locator("#new-deck summary").click()
    admin_tab.fill("#id_name", "Our scale")
    admin_tab.fill("#id_cards", "XS=1 S=2 M=3 L=5 XL=8 ? ∞ pass")
    admin_tab.get_by_role("button", name="Add deck").click()
    expect(admin_tab.locator(".deck", has_text="Our scale")).to_contain_text("numeric")
    # The new deck is in the open tables' pickers at once, not yet dealt.
    expect(alice_table.locator("#deck-select option", has_text="Our scale")).to_have_count(1)
    admin_tab.get_by_role("button", name="Make Our scale the default deck").click()
    expect(admin_tab.locator(".deck", has_text="Our scale")).to_contain_text("default")
    admin_tab.screenshot(path=tmp_path / "decks-page.png", full_page=True)

    # Both open tables show the new deck without a reload.
    for page in (alice_table, bob):
        expect(page.locator("#deck-name")).to_have_text("· Our scale")
        expect(page.locator('#hand button.play-card[data-value="XL"]')).to_have_count(1)
        assert hand(page) == ["XS", "S", "M", "L", "XL", "?", "∞", "pass"]
    expect(alice_table.locator("#deck-select")).to_have_value(
        alice_table.locator("#deck-select option", has_text="Our scale").get_attribute("value")
        or ""
    )

    # A round with it: Bob plays L, Alice S, Bob's neighbour card ∞ is left out of the numbers.
    alice_table.get_by_role("button", name="Start a quick round").click()
    for page in (alice_table, bob):
        expect(page.locator("#table")).to_have_attribute("data-round-status", "voting")
    bob.locator('#hand button.play-card[data-value="L"]').click()
    expect(bob.locator('#hand button.play-card[data-value="L"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    alice_table.locator('#hand button.play-card[data-value="S"]').click()
    expect(alice_table.locator('#hand button.play-card[data-value="S"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    alice_table.get_by_role("button", name="Reveal the cards").click()
    for page in (alice_table, bob):
        expect(page.locator("#table")).to_have_attribute("data-round-status", "revealed")
        expect(page.locator('#stats [data-stat="mean"] dd')).to_have_text("3.5")
        expect(page.locator('#stats [data-stat="median"] dd')).to_have_text("3.5")
        expect(page.locator('#stats [data-stat="range"] dd')).to_have_text(
            "S \u2013 L"
        )  # an en dash, as the page writes it
        expect(page.locator("#distribution .dist-row")).to_have_count(2)
    # The median 3.5 lies between M (3) and L (5): the nearest card is M.
    expect(alice_table.locator("#accept-value")).to_have_value("M")
    alice_table.screenshot(path=tmp_path / "custom-deck-revealed.png", full_page=True)
    assert errors == []
    for page in (alice_table, bob):
        page.context.close()
