"""A guest joins the demo team's table by its guest link in a fresh browser, votes, reloads and
signs up; the facilitator reveals and sees the guest's card. Against a Daphne on the Redis
channel layer (and Redis cache), as the cluster runs it."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

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

TEAM = "/teams/demo/"
TABLE = "/teams/demo/table/"
TIMEOUT_MS = 10_000
GUEST_PASSWORD = "guest-turned-member-42"

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Daphne like the shared live server's, but on Redis (``REDIS_URL``, default the local
    one) with the pub/sub channel layer under a prefix of its own."""
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        _skip_or_fail(f"no Redis at {redis_url} for the guest browser test")
    tmp = tmp_path_factory.mktemp("e2e-guests")
    env = _server_env(tmp)
    env.update(
        REDIS_URL=redis_url,
        CHANNEL_LAYER_BACKEND="pubsub",
        CHANNEL_LAYER_PREFIX=f"e2e-guests-{uuid.uuid4().hex[:8]}",
    )
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


def new_page(browser: Browser, base_url: str, who: str, errors: list[str]) -> Page:
    """A page in a browser context of its own: its own cookies, as a different browser."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda error: errors.append(f"{who}: {error}"))
    return page


def live(page: Page) -> None:
    expect(page.locator("#table")).to_have_attribute("data-connection", "live")


def test_a_guest_joins_by_link_votes_reloads_and_signs_up(
    browser: Browser, redis_server_url: str, tmp_path: Path
):
    errors: list[str] = []
    alice = new_page(browser, redis_server_url, "alice", errors)
    alice.goto(f"/accounts/login/?next={TEAM}")
    alice.fill("#id_username", "alice")
    alice.fill("#id_password", DEMO_PASSWORD)
    alice.get_by_role("button", name="Log in", exact=True).click()
    alice.wait_for_url(f"**{TEAM}")

    # Alice lets guests in and copies the link.
    alice.locator("input[name=allow_guests]").check()
    alice.locator("select[name=guest_role]").select_option("voter")
    alice.get_by_role("button", name="Save guest settings").click()
    link = alice.locator("#guest-link").input_value()
    copy = alice.locator("button[data-copy=guest-link]")
    expect(copy).to_have_text("Copy")
    copy.click()
    expect(copy).to_have_text(re.compile(r"^(Copied|Selected: copy it)$"))
    assert re.search(r"/guest/[\w-]{32,}/$", link), link
    alice.goto(TABLE)
    live(alice)

    # A fresh browser: no account, no cookie. A name, and the guest is at the table.
    guest = new_page(browser, redis_server_url, "guest", errors)
    guest.goto(link)
    guest.fill("#id_name", "Gina Guest")
    guest.get_by_role("button", name="Join the table").click()
    guest.wait_for_url(f"**{TABLE}")
    live(guest)
    expect(guest.locator("#my-role")).to_have_text("voter")
    gina = alice.locator("#participants .seat", has_text="Gina Guest")
    expect(gina).to_have_attribute("data-online", "true")
    expect(gina).to_have_attribute("data-guest", "true")
    expect(gina.locator(".badge.guest")).to_have_text("guest")
    seats = alice.locator("#participants .seat").count()

    # Alice starts a round; the guest votes 13; Alice sees that, not what.
    alice.get_by_role("button", name="Start a round on the chosen story").click()
    expect(guest.locator("#table")).to_have_attribute("data-round-status", "voting")
    guest.locator('#hand button.play-card[data-value="13"]').click()
    expect(gina).to_have_attribute("data-voted", "true")
    expect(gina.locator(".seat-card")).to_have_text("")

    # The guest reloads: the same seat, the card still theirs.
    guest.reload()
    live(guest)
    me = guest.locator("#participants .seat.me")
    expect(me).to_contain_text("Gina Guest")
    expect(guest.locator('#hand button.play-card[data-value="13"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(alice.locator("#participants .seat")).to_have_count(seats)
    expect(gina).to_have_attribute("data-online", "true")

    # Alice reveals and sees the guest's card.
    alice.get_by_role("button", name="Reveal the cards").click()
    expect(gina.locator(".seat-card")).to_have_text("13")
    expect(guest.locator("#participants .seat.me .seat-card")).to_have_text("13")
    alice.screenshot(path=tmp_path / "alice-sees-guest-vote.png", full_page=True)

    # The guest keeps the seat by signing up: the same member, now with an account.
    guest.get_by_role("link", name="Sign up to keep your seat").click()
    guest.fill("#id_username", "gina")
    guest.fill("#id_password1", GUEST_PASSWORD)
    guest.fill("#id_password2", GUEST_PASSWORD)
    guest.get_by_role("button", name="Sign up").click()
    guest.wait_for_url("**/teams/")
    expect(guest.locator(".team-list")).to_contain_text("Demo")
    expect(guest.get_by_role("button", name=re.compile(r"Log out \(gina\)"))).to_be_visible()
    guest.goto(TABLE)
    live(guest)
    expect(guest.locator("#participants .seat.me")).to_contain_text("Gina Guest")
    expect(guest.locator("#participants .seat.me .badge.guest")).to_have_count(0)
    expect(alice.locator("#participants .seat")).to_have_count(seats)

    # And logs in with it from another browser.
    again = new_page(browser, redis_server_url, "gina", errors)
    again.goto(f"/accounts/login/?next={TABLE}")
    again.fill("#id_username", "gina")
    again.fill("#id_password", GUEST_PASSWORD)
    again.get_by_role("button", name="Log in", exact=True).click()
    again.wait_for_url(f"**{TABLE}")
    live(again)
    expect(again.locator("#participants .seat.me")).to_contain_text("Gina Guest")
    assert errors == []
