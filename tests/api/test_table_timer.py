"""The round timer and the table's auto-reveal over the REST API: the same services as the
table's sockets, so every open table hears the change."""

import pytest

from integrations.tests.fixtures import session_client
from rooms.models import Room

pytestmark = pytest.mark.django_db(databases="__all__")


def api(t, suffix: str) -> str:
    return f"/api/v1/teams/{t.slug}/{suffix}"


def test_a_bot_starts_extends_and_stops_the_timer(alpha, listen, committed):
    channel = listen(alpha.team)
    with committed(alpha.shard):
        alpha.rw.post(api(alpha, "table/rounds/"), {}, format="json")
        started = alpha.rw.post(
            api(alpha, "table/timer/"), {"seconds": 90, "auto_reveal": True}, format="json"
        )
    assert started.status_code == 200, started.content
    timer = started.json()["timer"]
    assert (timer["seconds"], timer["auto_reveal"]) == (90, True)
    assert channel.names() == ["round_started", "timer_changed"]
    # A reader sees the same deadline on the table.
    assert (
        alpha.ro.get(api(alpha, "table/")).json()["round"]["timer"]["ends_at"] == (timer["ends_at"])
    )

    with committed(alpha.shard):
        extended = alpha.rw.post(api(alpha, "table/timer/extend/"), {}, format="json")
    assert extended.json()["timer"]["seconds"] == 120
    with committed(alpha.shard):
        stopped = alpha.rw.delete(api(alpha, "table/timer/"))
    assert stopped.json()["timer"] is None
    assert channel.names() == ["timer_changed", "timer_changed"]
    again = alpha.rw.post(api(alpha, "table/timer/extend/"), {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "no_timer")


def test_timer_refusals(alpha):
    none = alpha.rw.post(api(alpha, "table/timer/"), {}, format="json")
    assert (none.status_code, none.json()["code"]) == (409, "no_active_round")
    alpha.rw.post(api(alpha, "table/rounds/"), {}, format="json")
    short = alpha.rw.post(api(alpha, "table/timer/"), {"seconds": 1}, format="json")
    assert short.status_code == 400
    assert alpha.ro.post(api(alpha, "table/timer/"), {}, format="json").status_code == 403
    observer = session_client(alpha.observer.user)
    refused = observer.post(api(alpha, "table/timer/"), {}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")


def test_auto_reveal_is_a_setting_of_the_table(alpha, listen, committed):
    channel = listen(alpha.team)
    with committed(alpha.shard):
        response = alpha.rw.patch(api(alpha, "table/"), {"auto_reveal": True}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["settings"]["auto_reveal"] is True
    assert Room.objects.using(alpha.shard).get(team_id=alpha.team.pk).auto_reveal is True
    assert channel.names() == ["table_settings_changed"]
    bad = alpha.rw.patch(api(alpha, "table/"), {"auto_reveal": "maybe"}, format="json")
    assert bad.status_code == 400
    observer = session_client(alpha.observer.user)
    refused = observer.patch(api(alpha, "table/"), {"auto_reveal": False}, format="json")
    assert refused.status_code == 403
