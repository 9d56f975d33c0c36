"""The facilitator ends the session over the table's socket (``end_session``)."""

import pytest
from channels.db import database_sync_to_async
from django.core import mail

from notifications import services
from notifications.models import TableSession
from rooms import services as table_services
from rooms.tests.test_consumers import connect, table  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True)]


@database_sync_to_async
def _play_and_opt_in(t) -> None:
    for who in ("alice", "bob"):
        user = t[who].user
        user.email = f"{who}@example.com"
        user.save(update_fields=["email"])
    services.preference_set(user=t["alice"].user, session_summaries=True)
    table_services.round_start(membership=t["alice"], story_id=t["story"].pk)
    table_services.vote_cast(membership=t["bob"], value="5")
    table_services.round_reveal(membership=t["alice"])


async def test_the_facilitator_ends_the_session_and_everyone_at_the_table_hears_it(table):  # noqa: F811
    await _play_and_opt_in(table)
    alice = await connect(table["alice"])
    bob = await connect(table["bob"])
    try:
        refused = await bob.command("end_session")
        assert (refused["type"], refused["code"]) == ("error", "forbidden")

        ack = await alice.command("end_session")
        assert ack["type"] == "ack"
        for player in (alice, bob):
            event = await player.event("table_session_ended")
            assert event["version"] == ack["version"]
            assert event["data"]["ended_by"] == table["alice"].user_id
            assert event["data"]["ended_at"]
        await alice.quiet()
        await bob.quiet()
    finally:
        await alice.close()
        await bob.close()

    sessions = TableSession.objects.using(table["team"].shard)
    assert await database_sync_to_async(sessions.count)() == 1
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert "Login page" in mail.outbox[0].body
