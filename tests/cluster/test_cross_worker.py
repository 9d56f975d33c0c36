"""Members of one team on different worker processes play a round together (Redis relays)."""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import urllib.parse
import urllib.request

import pytest

from bench import load
from bench.client import TableClient

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]


async def vote_seen(client: TableClient, user_id: int) -> dict:
    """The next ``vote_cast`` for ``user_id`` (each member also receives their own)."""
    while True:
        event = await client.wait_for("vote_cast")
        if event["data"]["user_id"] == user_id:
            return event


async def test_a_full_round_across_two_workers(live_cluster):
    """Facilitator on worker 1, voter on worker 2 (and one more member through the balancer):
    each sees the others' round, votes (without their values) and the reveal."""
    team = live_cluster.team(0)
    facilitator, voter, third = team["members"]
    assert facilitator["role"] == "facilitator"
    w1, w2 = live_cluster.workers
    via = live_cluster.balancer or w1
    async with (
        TableClient(w1, team["slug"], facilitator["session"]) as alice,
        TableClient(w2, team["slug"], voter["session"]) as bob,
        TableClient(via, team["slug"], third["session"]) as carol,
    ):
        started = await alice.command("start_round", title="Across workers")
        seen = await bob.wait_for("round_started")
        assert seen["version"] == started["version"]
        assert seen["data"]["round"]["title"] == "Across workers"
        await carol.wait_for("round_started")

        ack = await bob.command("cast_vote", value="3")
        assert ack["data"] == {"value": "3"}
        for client in (alice, carol):
            event = await vote_seen(client, voter["user_id"])
            assert event["data"] == {"user_id": voter["user_id"]}
            assert event["version"] == ack["version"]

        ack = await alice.command("cast_vote", value="5")
        event = await vote_seen(bob, facilitator["user_id"])
        assert event == {
            "type": "vote_cast",
            "version": ack["version"],
            "data": {"user_id": facilitator["user_id"]},
        }

        await alice.command("reveal_cards")
        for client in (bob, carol):
            revealed = await client.wait_for("cards_revealed")
            votes = {v["user_id"]: v["value"] for v in revealed["data"]["round"]["votes"]}
            assert votes == {voter["user_id"]: "3", facilitator["user_id"]: "5"}
            assert revealed["data"]["round"]["stats"]["mean"] == 4


class Browser:
    """Pages over HTTP with a cookie jar of its own, as one browser: what a form needs (the CSRF
    token) is read from the page it is on."""

    def __init__(self, base_url: str, session: str | None = None) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        if session is not None:
            host = urllib.parse.urlsplit(base_url).hostname or ""
            self.jar.set_cookie(_cookie(host, "sessionid", session))

    def get(self, path: str) -> str:
        with self.opener.open(self.base_url + path, timeout=10) as response:
            return response.read().decode()

    def post(self, page: str, action: str, data: dict[str, str]) -> str:
        """Submit ``data`` to ``action`` from the form on ``page``; the page it lands on."""
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self.get(page))
        assert token, page
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), **data}).encode()
        request = urllib.request.Request(self.base_url + action, data=body)  # noqa: S310
        request.add_header("Referer", self.base_url + page)
        with self.opener.open(request, timeout=10) as response:
            return response.read().decode()

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name and c.value is not None)


def _cookie(host: str, name: str, value: str) -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        0, name, value, None, False, host, False, False, "/", True, False, None, False, None,
        None, {},
    )  # fmt: skip


async def test_a_guest_link_works_across_workers(live_cluster):
    """The facilitator turns guests on through worker 1; a guest joins by the link through
    worker 2 (their session, in the database, is good on every worker) and plays with the
    facilitator, each on the other worker's socket."""
    team = live_cluster.team(0)  # the load generator plays the others
    facilitator = team["members"][0]
    assert facilitator["role"] == "facilitator"
    w1, w2 = live_cluster.workers
    page = f"/teams/{team['slug']}/"

    def set_up() -> str:
        lead = Browser(w1, facilitator["session"])
        settings = {"allow_guests": "on", "guest_role": "voter"}
        landed = lead.post(page, f"{page}guests/", settings)
        link = re.search(r'id="guest-link" value="[^"]*(/guest/[\w-]+/)"', landed)
        assert link, landed[-2000:]
        guest = Browser(w2)
        table = guest.post(link.group(1), link.group(1), {"name": "Gina"})
        assert "Live table" in table
        return guest.cookie("sessionid")

    session = await asyncio.to_thread(set_up)
    async with (
        TableClient(w1, team["slug"], session) as gina,
        TableClient(w2, team["slug"], facilitator["session"]) as alice,
    ):
        me = gina.snapshot["data"]["me"]
        participants = gina.snapshot["data"]["participants"]
        seat = next(p for p in participants if p["user_id"] == me["user_id"])
        assert (seat["name"], seat["guest"], me["role"]) == ("Gina", True, "voter")
        await alice.command("start_round", title="Guests across workers")
        await gina.wait_for("round_started")
        ack = await gina.command("cast_vote", value="8")
        assert ack["data"] == {"value": "8"}
        assert (await vote_seen(alice, me["user_id"]))["data"] == {"user_id": me["user_id"]}
        await alice.command("reveal_cards")
        revealed = await gina.wait_for("cards_revealed")
        assert {v["user_id"]: v["value"] for v in revealed["data"]["round"]["votes"]} == {
            me["user_id"]: "8"
        }


async def test_the_load_generator_plays_through_the_balancer(live_cluster):
    """Benchmark smoke on the real stack: a few teams, one short step, two reveal bursts (the
    second on a round the generator starts and plays after the first)."""
    result = await load.run(
        url=live_cluster.balancer or live_cluster.workers[0],
        seed={"teams": live_cluster.seed["teams"][1:]},
        server_pids={"workers": [p.pid for p in live_cluster.procs]},
        rates=[10],
        step_seconds=1.5,
        hold_seconds=0.2,
        slo_ms=10_000,
        reveal_bursts=2,
    )
    assert result["connect"]["sockets"] == 6
    assert result["connect"]["failures"] == 0
    step = result["ladder"][0]
    assert step["votes_acked"] > 0
    assert step["expected_deliveries"] > 0
    assert step["deliveries"] == step["expected_deliveries"]
    assert step["missing_deliveries"] == 0
    assert result["reveal"]["missing_deliveries"] == 0
    assert [b["deliveries"] for b in result["reveal"]["bursts"]] == [6, 6]
