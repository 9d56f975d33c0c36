"""Rounds, votes, the live table and the estimates feed over the REST API."""

import pytest

from rooms import services as table
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")


def api(t, suffix: str) -> str:
    return f"/api/v1/teams/{t.slug}/{suffix}"


def start(t, story=None):
    response = t.rw.post(
        api(t, "table/rounds/"), {"story_id": str(story.pk)} if story else {}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_my_teams_lists_memberships_or_the_keys_team(alpha, beta, make_user):
    from accounts.models import Membership
    from integrations.tests.fixtures import session_client

    both = make_user("both")
    Membership.objects.create(team=alpha.team, user=both, role="voter")
    Membership.objects.create(team=beta.team, user=both, role="observer")
    mine = session_client(both).get("/api/v1/teams/").json()
    assert [(t["slug"], t["role"]) for t in mine] == [
        (alpha.slug, "voter"),
        (beta.slug, "observer"),
    ]
    assert [t["slug"] for t in alpha.ro.get("/api/v1/teams/").json()] == [alpha.slug]
    assert alpha.rw.get(f"/api/v1/teams/{alpha.slug}/").json()["role"] == "facilitator"
    assert alpha.ro.get(f"/api/v1/teams/{alpha.slug}/").json()["role"] == "observer"


def test_a_bot_starts_a_round_and_every_table_hears_it(alpha, listen, committed):
    channel = listen(alpha.team)
    with committed(alpha.shard):
        round_ = start(alpha, alpha.stories[0])
    assert round_["status"] == "voting"
    assert round_["story_id"] == str(alpha.stories[0].pk)
    assert channel.names() == ["round_started"]
    again = alpha.rw.post(api(alpha, "table/rounds/"), {}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "round_in_progress"


def test_starting_on_an_unknown_story_is_404(alpha, beta):
    response = alpha.rw.post(
        api(alpha, "table/rounds/"), {"story_id": str(beta.stories[0].pk)}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_story"


def test_votes_stay_secret_until_reveal(alpha):
    round_ = start(alpha, alpha.stories[0])
    table.vote_cast(membership=alpha.voter, value="8")
    table.vote_cast(membership=alpha.lead, value="5")
    detail = alpha.ro.get(api(alpha, f"rounds/{round_['id']}/")).json()
    assert detail["voted"] == sorted([alpha.voter.user_id, alpha.lead.user_id])
    assert detail["stats"] is None
    hidden = alpha.ro.get(api(alpha, f"rounds/{round_['id']}/votes/"))
    assert hidden.status_code == 409
    assert hidden.json()["code"] == "round_not_revealed"
    snapshot = alpha.ro.get(api(alpha, "table/")).json()
    assert "my_vote" not in snapshot
    assert "votes" not in snapshot["round"]

    table.round_reveal(membership=alpha.lead)
    votes = alpha.ro.get(api(alpha, f"rounds/{round_['id']}/votes/")).json()
    assert sorted(v["value"] for v in votes) == ["5", "8"]
    assert alpha.ro.get(api(alpha, f"rounds/{round_['id']}/")).json()["stats"]["median"] is not None


def _vote_values(node) -> list:
    """Every vote value anywhere in a body: under "value", "votes" or a non-null "my_vote"."""
    found = []
    if isinstance(node, dict):
        for key, child in node.items():
            if key in ("value", "votes") or (key == "my_vote" and child is not None):
                found.append(child)
            found += _vote_values(child)
    elif isinstance(node, list):
        for child in node:
            found += _vote_values(child)
    return found


def test_the_table_snapshot_never_carries_the_keys_creator_vote(alpha):
    start(alpha, alpha.stories[0])
    table.vote_cast(membership=alpha.lead, value="13")
    body = alpha.ro.get(api(alpha, "table/")).json()
    assert _vote_values(body) == []
    assert body["round"]["voted"] == [alpha.lead.user_id]
    assert "votes" not in body["round"]


def test_round_list_filters(alpha):
    first = start(alpha, alpha.stories[0])
    table.round_reveal(membership=alpha.lead)
    table.estimate_accept(membership=alpha.lead, value="3", next_story=True)
    rounds = alpha.ro.get(api(alpha, "rounds/")).json()
    assert rounds["count"] == 2
    accepted = alpha.ro.get(api(alpha, "rounds/"), {"status": "accepted"}).json()["results"]
    assert [r["id"] for r in accepted] == [first["id"]]
    by_story = alpha.ro.get(api(alpha, "rounds/"), {"story_id": str(alpha.stories[1].pk)}).json()
    assert by_story["count"] == 1
    assert alpha.ro.get(api(alpha, "rounds/"), {"status": "nope"}).status_code == 400
    assert alpha.ro.get(api(alpha, "rounds/"), {"status": ""}).status_code == 400
    assert alpha.ro.get(api(alpha, "rounds/"), {"story_id": "nope"}).status_code == 400


def test_estimates_feed_pages_by_cursor_and_filters_by_time(alpha):
    for story, value in zip(alpha.stories, ["5", "8"], strict=True):
        table.round_start(membership=alpha.lead, story_id=story.pk)
        table.round_reveal(membership=alpha.lead)
        table.estimate_accept(membership=alpha.lead, value=value)
    page = alpha.ro.get(api(alpha, "estimates/"), {"page_size": 1}).json()
    assert "count" not in page  # a cursor, not page numbers
    assert [e["estimate"] for e in page["results"]] == ["5"]
    rest = alpha.ro.get(page["next"]).json()
    assert [e["external_key"] for e in rest["results"]] == ["ALP-2"]
    assert rest["next"] is None
    first_at = page["results"][0]["estimated_at"]
    later = alpha.ro.get(api(alpha, "estimates/"), {"updated_after": first_at}).json()
    assert [e["estimate"] for e in later["results"]] == ["8"]
    assert alpha.ro.get(api(alpha, "estimates/"), {"updated_after": "yesterday"}).status_code == 400
    assert alpha.ro.get(api(alpha, "estimates/"), {"updated_after": ""}).status_code == 400
    assert alpha.ro.get(api(alpha, "estimates/"), {"page_size": 500}).status_code == 200
    assert alpha.ro.get(api(alpha, "estimates/"), {"page_size": 501}).status_code == 400
    unestimated = Story.objects.using(alpha.shard).filter(team_id=alpha.team.pk, estimate="")
    assert not unestimated.exists()


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        ("0841-07-13T19:30:12+22:12", 200),  # an offset PostgreSQL refuses, as UTC it is fine
        ("2026-12-02T10:00:00-23:59", 200),
        ("0001-01-01T00:00:00+01:00", 400),  # before the year 1 in UTC: no such time
        ("9999-12-31T23:59:59-01:00", 400),  # after the year 9999 in UTC
    ],
)
def test_estimates_feed_takes_any_offset_and_refuses_times_out_of_range(alpha, moment, status):
    response = alpha.ro.get(api(alpha, "estimates/"), {"updated_after": moment})
    assert response.status_code == status, response.content
    if status == 400:
        assert response.json()["code"] == "invalid"


def test_a_bot_reveals_and_accepts_and_every_table_hears_it(alpha, listen, committed):
    channel = listen(alpha.team)
    first = start(alpha, alpha.stories[0])
    table.vote_cast(membership=alpha.voter, value="8")
    table.vote_cast(membership=alpha.lead, value="5")
    channel.events()

    with committed(alpha.shard):
        revealed = alpha.rw.post(api(alpha, "table/reveal/"), format="json")
    assert revealed.status_code == 200, revealed.content
    assert revealed.json()["id"] == first["id"]
    assert revealed.json()["status"] == "revealed"
    assert revealed.json()["stats"]["mean"] == 6.5
    assert channel.names() == ["cards_revealed"]
    votes = alpha.ro.get(api(alpha, f"rounds/{first['id']}/votes/")).json()
    assert sorted(v["value"] for v in votes) == ["5", "8"]

    with committed(alpha.shard):
        accepted = alpha.rw.post(
            api(alpha, "table/accept/"), {"value": " 8 ", "next": True}, format="json"
        )
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["id"] == first["id"]
    assert (accepted.json()["status"], accepted.json()["estimate"]) == ("accepted", "8")
    assert channel.names() == ["estimate_accepted", "round_started"]
    assert Story.objects.using(alpha.shard).get(pk=alpha.stories[0].pk).estimate == "8"
    # "next": the following story is on the table now.
    on_table = alpha.ro.get(api(alpha, "table/")).json()["round"]
    assert on_table["story_id"] == str(alpha.stories[1].pk)


def test_reveal_and_accept_refuse_what_the_table_refuses(alpha):
    def code(response, status):
        assert response.status_code == status, response.content
        return response.json()["code"]

    assert code(alpha.rw.post(api(alpha, "table/reveal/"), format="json"), 409) == (
        "no_active_round"
    )
    start(alpha, alpha.stories[0])
    early = alpha.rw.post(api(alpha, "table/accept/"), {"value": "5"}, format="json")
    assert code(early, 409) == "round_not_revealed"
    alpha.rw.post(api(alpha, "table/reveal/"), format="json")
    blank = alpha.rw.post(api(alpha, "table/accept/"), {"value": "  "}, format="json")
    assert code(blank, 400) == "invalid_estimate"
    for spaces in ("\x1f", "\ufeff"):
        also_blank = alpha.rw.post(api(alpha, "table/accept/"), {"value": spaces}, format="json")
        assert code(also_blank, 400) == "invalid_estimate"
    number = alpha.rw.post(api(alpha, "table/accept/"), {"value": 5}, format="json")
    assert code(number, 400) == "invalid"
    missing = alpha.rw.post(api(alpha, "table/accept/"), {}, format="json")
    assert code(missing, 400) == "invalid"
    again = alpha.rw.post(api(alpha, "table/reveal/"), format="json")
    assert code(again, 409) == "round_not_voting"
