"""Reads for the live table: snapshots and the payloads events carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from accounts.models import Membership
from rooms import game, presence
from rooms.models import Presence, Room
from stories.models import Round, Story, Vote

if TYPE_CHECKING:
    from collections.abc import Sequence

    from accounts.models import Team


class Ballot(Protocol):
    """What a payload needs of a vote: a Vote, or a rooms.sql.Card read without building one."""

    @property
    def user_id(self) -> int: ...
    @property
    def value(self) -> str: ...


def round_payload(
    round_: Round | None, votes: Sequence[Ballot] | None = None
) -> dict[str, Any] | None:
    """A round as the whole table may see it: who voted always, values only once revealed."""
    if round_ is None:
        return None
    if votes is None:
        votes = list(round_.votes.all())
    payload: dict[str, Any] = {
        "id": str(round_.pk),
        "story_id": str(round_.story_id) if round_.story_id else None,
        "story_key": round_.story.external_key if round_.story_id and round_.story else "",
        "title": round_.title,
        "status": round_.status,
        "deck": round_.deck,
        "cards": list(round_.cards),
        "voted": sorted(v.user_id for v in votes),
        "estimate": round_.estimate,
        "started_at": round_.started_at.isoformat(),
    }
    if round_.is_finished:
        payload["votes"] = [{"user_id": v.user_id, "value": v.value} for v in votes]
        payload["stats"] = round_.stats
    return payload


def story_payload(story: Story) -> dict[str, Any]:
    return {
        "id": str(story.pk),
        "title": story.title,
        "external_key": story.external_key,
        "url": story.url,
        "estimate": story.estimate,
        "position": story.position,
    }


def backlog_payload(*, team: Team) -> list[dict[str, Any]]:
    return [story_payload(s) for s in Story.objects.using(team.shard).filter(team_id=team.pk)]


def participants_payload(
    *, team: Team, round_: Round | None = None, votes: list[Vote] | None = None
) -> list[dict[str, Any]]:
    """Every member with role, whether a socket of theirs is open and whether they have voted.

    ``votes``: the round's votes when the caller has already read them (saves a query)."""
    rows = list(
        Presence.objects.using(team.shard).filter(team_id=team.pk).values_list("user_id", "worker")
    )
    running = presence.alive({worker for _, worker in rows})
    online = {user_id for user_id, worker in rows if worker in running}
    voted: set[int] = set()
    if votes is not None:
        voted = {v.user_id for v in votes}
    elif round_ is not None:
        voted = set(round_.votes.values_list("user_id", flat=True))
    members = Membership.objects.filter(team_id=team.pk).select_related("user")
    people: list[dict[str, Any]] = [
        {
            "user_id": m.user_id,
            "name": m.user.display_name,
            "role": m.role,
            "online": m.user_id in online,
            "voted": m.user_id in voted,
        }
        for m in members
    ]
    people.sort(key=lambda p: (not p["online"], p["name"].lower()))
    return people


def room_get(*, team: Team, create: bool = True) -> Room | None:
    """The team's room with its current round and the round's story (one query when it exists);
    created if missing unless ``create`` is false (then None)."""
    rooms = Room.objects.using(team.shard).select_related("current_round__story")
    room = rooms.filter(team_id=team.pk).first()
    if room is None and create:
        room, _ = Room.objects.using(team.shard).get_or_create(team_id=team.pk)
    return room


@dataclass(frozen=True)
class TableState:
    """What every member sees of a table at one moment: the room (its version, deck, current
    round), the round's votes and the participants. Read once, it serves both the presence event
    and a joining socket's snapshot."""

    room: Room | None  # None only when read with create=False and the team has no room here
    votes: list[Vote]
    participants: list[dict[str, Any]]


def table_state(*, team: Team, create: bool = True) -> TableState:
    room = room_get(team=team, create=create)
    round_ = room.current_round if room is not None else None
    votes = list(round_.votes.all()) if round_ is not None else []
    return TableState(
        room=room,
        votes=votes,
        participants=participants_payload(team=team, round_=round_, votes=votes),
    )


def room_snapshot(*, membership: Membership, state: TableState | None = None) -> dict[str, Any]:
    """The whole table as ``membership`` may see it, with the version it corresponds to.

    ``state``: the table as the caller has just read it (``table_state``), to spare the reads."""
    team = membership.team
    if state is None or state.room is None:
        state = table_state(team=team)
    room, votes = state.room, state.votes
    round_ = room.current_round
    my_vote = next((v.value for v in votes if v.user_id == membership.user_id), None)
    return {
        "type": "snapshot",
        "version": room.version,
        "data": {
            "team": {"id": team.pk, "slug": team.slug, "name": team.name},
            "me": {"user_id": membership.user_id, "role": membership.role},
            "deck": game.get_deck(room.deck).as_dict(),
            "decks": [deck.as_dict() for deck in game.DECKS.values()],
            "participants": state.participants,
            "round": round_payload(round_, votes),
            "my_vote": my_vote,
            "backlog": backlog_payload(team=team),
        },
    }
