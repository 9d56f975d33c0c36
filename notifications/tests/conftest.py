"""A team whose members made different choices: ``lead`` (facilitator, opted in), ``fan``
(voter, opted in), ``quiet`` (voter, never opted in) and ``noaddr`` (opted in, no address)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from accounts.roles import Role
from conftest import facilitator_of
from notifications import services
from rooms import services as table
from stories import services as story_services


def with_email(membership, address: str, *, opted_in: bool):
    membership.user.email = address
    membership.user.save(update_fields=["email"])
    if opted_in:
        services.preference_set(user=membership.user, session_summaries=True)
    return membership


@pytest.fixture
def crew(team_factory, add_member):
    team = team_factory("Crew")
    lead = with_email(facilitator_of(team), "lead@example.com", opted_in=True)
    fan = with_email(add_member(team, "fan"), "fan@example.com", opted_in=True)
    quiet = with_email(add_member(team, "quiet"), "quiet@example.com", opted_in=False)
    noaddr = add_member(team, "noaddr", Role.VOTER)
    services.preference_set(user=noaddr.user, session_summaries=True)
    return SimpleNamespace(team=team, shard=team.shard, lead=lead, fan=fan, quiet=quiet)


def play_round(crew, key: str, title: str, *, votes: dict[str, str], estimate: str | None):
    """Start a round on a new story, cast ``votes`` (member attribute -> card), reveal, and
    accept ``estimate`` unless it is None."""
    story = story_services.story_create(
        membership=crew.lead,
        title=title,
        external_key=key,
        url=f"https://tracker.example.com/{key}",
    )
    table.round_start(membership=crew.lead, story_id=story.pk)
    for who, card in votes.items():
        table.vote_cast(membership=getattr(crew, who), value=card)
    table.round_reveal(membership=crew.lead)
    if estimate is not None:
        table.estimate_accept(membership=crew.lead, value=estimate)
    return story
