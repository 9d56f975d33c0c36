"""The demo data: users, the demo team and its members (through accounts' services, so open
tables hear of each newcomer) and its backlog."""

import io

import pytest
from django.core.management import call_command

from accounts.models import Team, User
from rooms import broadcast
from stories import selectors

pytestmark = pytest.mark.django_db(databases="__all__")


def seed(capture) -> list[tuple[int, dict]]:
    with broadcast.collect() as frames, capture(using="default", execute=True):
        call_command("seed_demo", "--password", "pw-demo-42", stdout=io.StringIO())
    return [(team_id, e["data"]) for team_id, e in frames if e["type"] == "members_changed"]


def test_seed_demo_makes_the_demo_team_through_the_services(django_capture_on_commit_callbacks):
    joined = seed(django_capture_on_commit_callbacks)

    team = Team.objects.get(slug="demo")
    users = {u.username: u for u in User.objects.all()}
    assert dict(team.memberships.values_list("user__username", "role")) == {
        "alice": "facilitator",
        "bob": "voter",
        "carol": "observer",
    }
    assert users["bob"].check_password("pw-demo-42")
    assert [s.external_key for s in selectors.story_list(team=team)] == [
        "DEMO-1",
        "DEMO-2",
        "DEMO-3",
        "DEMO-4",
    ]
    assert joined == [
        (team.pk, {"user_id": users["bob"].pk, "role": "voter"}),
        (team.pk, {"user_id": users["carol"].pk, "role": "observer"}),
    ]

    # Again: everyone and everything is there already; nothing changes.
    assert seed(django_capture_on_commit_callbacks) == []
    assert Team.objects.count() == 1
    assert len(selectors.story_list(team=team)) == 4
