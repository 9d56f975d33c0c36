"""Reads of the live table and the rounds: snapshots, the payloads events carry, history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts import roles
from accounts.models import Membership, Team, User
from pokerproject.errors import gettext_noop
from pokerproject.regions import registry
from pokerproject.regions.guard import shard_scope
from rooms import game, presence
from rooms.errors import TeamMoved
from rooms.game import FINISHED_STATUSES
from rooms.models import Deck, Presence, Room, Round, RoundReplica, Vote
from stories.models import Story

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence


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
        "timer": timer_payload(round_),
    }
    if round_.is_finished:
        payload["votes"] = [{"user_id": v.user_id, "value": v.value} for v in votes]
        payload["stats"] = round_.stats
    return payload


# --- Decks: the built-in ones, every team's, and the team's own (directory) --------------------


def team_decks(*, team: Team) -> QuerySet[Deck]:
    """The team's own decks, by name."""
    return Deck.objects.filter(team=team).order_by("name", "pk")


def team_deck_get(*, team: Team, deck_id: object) -> Deck | None:
    """The team's own deck ``deck_id``, or None (another team's deck is no deck of this one)."""
    try:
        return Deck.objects.filter(team=team, pk=int(deck_id)).first()  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None


def deck_list(*, team: Team) -> list[game.Deck]:
    """Every deck the team may play: the built-in ones, then its own by name."""
    return [*game.DECKS.values(), *(deck.as_game_deck() for deck in team_decks(team=team))]


def deck_get(*, team: Team, key: str) -> game.Deck:
    """A deck the team may play by its key, or UnknownDeck (another team's deck is unknown)."""
    if key in game.DECKS:
        return game.DECKS[key]
    deck_id = game.custom_deck_id(key)
    deck = team_deck_get(team=team, deck_id=deck_id) if deck_id is not None else None
    if deck is None:
        raise game.UnknownDeck(
            gettext_noop("Unknown deck %(key)s."), params={"key": repr(key[:40])}
        )
    return deck.as_game_deck()


def decks_payload(*, team: Team, key: str) -> dict[str, Any]:
    """The table's deck (``key``; the default deck if ``key`` names a deck that is gone) and
    every deck the team may choose, as snapshots and ``deck_changed`` carry them."""
    decks = deck_list(team=team)
    chosen = next((deck for deck in decks if deck.key == key), game.DECKS[game.DEFAULT_DECK])
    return {"deck": chosen.as_dict(), "decks": [deck.as_dict() for deck in decks]}


def timer_payload(round_: Round, now: datetime | None = None) -> dict[str, Any] | None:
    """The round's timer while it is being voted (None without one). ``remaining_ms`` is what
    is left as the server sees it: clients count down from it, so a wrong clock on the
    client's side does not change the countdown; ``ends_at`` is the deadline itself."""
    if round_.status != game.RoundStatus.VOTING or round_.timer_ends_at is None:
        return None
    now = now or timezone.now()
    return {
        "ends_at": round_.timer_ends_at.isoformat(),
        "seconds": round_.timer_seconds,
        "auto_reveal": round_.timer_auto_reveal,
        "remaining_ms": max(0, int((round_.timer_ends_at - now).total_seconds() * 1000)),
    }


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


def online_user_ids(*, team: Team) -> set[int]:
    """The members with a socket open at the table (on a worker that is still running)."""
    rows = list(
        Presence.objects.using(team.shard).filter(team_id=team.pk).values_list("user_id", "worker")
    )
    running = presence.alive({worker for _, worker in rows})
    return {user_id for user_id, worker in rows if worker in running}


def participants_payload(
    *,
    team: Team,
    round_: Round | None = None,
    votes: list[Vote] | None = None,
    not_voting: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Every member with role, whether a socket of theirs is open, whether they have voted and
    whether they play cards at all (``voting``: a role that votes, not sitting out).

    ``votes``: the round's votes when the caller has already read them (saves a query)."""
    online = online_user_ids(team=team)
    voted: set[int] = set()
    if votes is not None:
        voted = {v.user_id for v in votes}
    elif round_ is not None:
        voted = set(round_.votes.values_list("user_id", flat=True))
    members = Membership.objects.filter(team_id=team.pk).select_related("user")
    return _participants(members, online, voted, not_voting)


def _participants(
    members: Iterable[Membership], online: set[int], voted: set[int], not_voting: list[int] | None
) -> list[dict[str, Any]]:
    sitting_out = set(not_voting or ())
    people: list[dict[str, Any]] = [
        {
            "user_id": m.user_id,
            "name": m.user.display_name,
            "role": m.role,
            "online": m.user_id in online,
            "voted": m.user_id in voted,
            # Joined through the guest link without an account (accounts.services.guest_join).
            "guest": m.user.is_guest,
            "voting": roles.can(m.role, roles.Action.CAST_VOTE) and m.user_id not in sitting_out,
        }
        for m in members
    ]
    people.sort(key=lambda p: (not p["online"], p["name"].lower()))
    return people


def room_get(*, team: Team) -> Room:
    """The team's room with its current round and the round's story (one query). A team whose
    table has never been written has no row yet: it reads as a new, empty table (a read never
    creates one; the table's services do, on its team's home shard only). A missing row may
    also mean the team has moved away from the shard the caller knows: then TeamMoved."""
    rooms = Room.objects.using(team.shard).select_related("current_round__story")
    room = rooms.filter(team_id=team.pk).first()
    if room is not None:
        return room
    if Team.objects.filter(pk=team.pk).values_list("shard", flat=True).first() != team.shard:
        raise TeamMoved(gettext_noop("The team has moved to another shard."))
    return Room(team_id=team.pk)


def round_list(*, team: Team) -> QuerySet[Round]:
    """The team's rounds on its home shard, each with its votes prefetched."""
    return Round.objects.using(team.shard).filter(team_id=team.pk).prefetch_related("votes")


def table_versions(*, alias: str, pending: list[Membership]) -> list[int]:
    """The current version of each member's table on ``alias``, in order, in one query: what a
    socket's heartbeat compares with the last event it applied (a table with no row yet: 0).
    rooms.realtime.batching reads the heartbeats of a few milliseconds together."""
    team_ids = {membership.team_id for membership in pending}
    with shard_scope(alias):
        versions = dict(
            Room.objects.using(alias).filter(team_id__in=team_ids).values_list("team_id", "version")
        )
    return [versions.get(membership.team_id, 0) for membership in pending]


@dataclass(frozen=True)
class TableState:
    """What every member sees of a table at one moment: the room (its version, deck, current
    round), the round's votes and the participants. Read once, it serves both the presence event
    and a joining socket's snapshot."""

    room: Room
    votes: list[Vote]
    participants: list[dict[str, Any]]


def table_state(*, team: Team, room: Room | None = None) -> TableState:
    """The table as every member sees it now; ``room``: its room as the caller has just read it
    (``room_get``), to spare that read."""
    if room is None:
        room = room_get(team=team)
    round_ = room.current_round
    votes = list(round_.votes.all()) if round_ is not None else []
    return TableState(
        room=room,
        votes=votes,
        participants=participants_payload(
            team=team, round_=round_, votes=votes, not_voting=room.not_voting
        ),
    )


def table_states(
    *, alias: str, teams: Sequence[Team], rooms: dict[int, Room]
) -> dict[int, TableState]:
    """``table_state`` of several tables of shard ``alias`` at once, by team id: a batch of
    sockets opening and closing (rooms.services.presence_batch) reads the votes, presence rows
    and members of all its tables in one query each instead of three per table.

    ``rooms``: the tables' rooms as the caller has just read them (with their rounds), by team
    id; a table without one there is read on its own (``table_state``: a new table, or a team
    that moved)."""
    states = {team.pk: table_state(team=team) for team in teams if team.pk not in rooms}
    read = [team for team in teams if team.pk in rooms]
    if not read:
        return states
    team_ids = [team.pk for team in read]
    votes: dict[uuid.UUID, list[Vote]] = {}
    round_ids = [rooms[pk].current_round_id for pk in team_ids if rooms[pk].current_round_id]
    if round_ids:
        for vote in Vote.objects.using(alias).filter(round_id__in=round_ids):
            votes.setdefault(vote.round_id, []).append(vote)
    rows = list(
        Presence.objects.using(alias)
        .filter(team_id__in=team_ids)
        .values_list("team_id", "user_id", "worker")
    )
    running = presence.alive({worker for _, _, worker in rows})
    online: dict[int, set[int]] = {pk: set() for pk in team_ids}
    for team_id, user_id, worker in rows:
        if worker in running:
            online[team_id].add(user_id)
    members: dict[int, list[Membership]] = {pk: [] for pk in team_ids}
    for membership in Membership.objects.filter(team_id__in=team_ids).select_related("user"):
        members[membership.team_id].append(membership)
    for team in read:
        room = rooms[team.pk]
        round_votes = votes.get(room.current_round_id, []) if room.current_round_id else []
        states[team.pk] = TableState(
            room=room,
            votes=round_votes,
            participants=_participants(
                members[team.pk], online[team.pk], {v.user_id for v in round_votes}, room.not_voting
            ),
        )
    return states


def room_snapshot(
    *,
    membership: Membership,
    state: TableState | None = None,
    shared: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole table as ``membership`` may see it, with the version it corresponds to.

    ``state``: the table as the caller has just read it (``table_state``), to spare the reads;
    ``shared``: what every member's snapshot of that state shares (``snapshot_shared``), for
    callers that build several at once."""
    team = membership.team
    if state is None:
        state = table_state(team=team)
    if shared is None:
        shared = snapshot_shared(team=team, state=state)
    my_vote = next((v.value for v in state.votes if v.user_id == membership.user_id), None)
    return {
        "type": "snapshot",
        "version": state.room.version,
        "data": {
            "team": shared["team"],
            "me": {"user_id": membership.user_id, "role": membership.role},
            "deck": shared["deck"],
            "decks": shared["decks"],
            "participants": state.participants,
            "round": shared["round"],
            "my_vote": my_vote,
            "backlog": shared["backlog"],
            "settings": shared["settings"],
        },
    }


def snapshot_shared(*, team: Team, state: TableState) -> dict[str, Any]:
    """The parts of a snapshot of ``state`` that are the same for every member (the member's
    own role and vote are not): its decks and backlog are read once for them all."""
    room = state.room
    return {
        "team": {"id": team.pk, "slug": team.slug, "name": team.name},
        **decks_payload(team=team, key=room.deck),
        "round": round_payload(room.current_round, state.votes),
        "backlog": backlog_payload(team=team),
        "settings": table_settings_payload(room, team),
    }


def table_settings_payload(room: Room, team: Team) -> dict[str, Any]:
    """The table's own settings as every member sees them (the timer's default length is the
    team's setting)."""
    return {
        "auto_reveal": room.auto_reveal,
        "timer_default_seconds": team.timer_default_seconds,
    }


# --- History: finished rounds from the home shard, or this region's copies ----------------------


@dataclass
class VoteRecord:
    user_id: int
    value: str
    voter_name: str = ""
    cast_at: datetime | None = None  # None in a regional copy, which keeps no vote times


@dataclass
class RoundRecord:
    """A finished round as the history pages show it, from the home shard or a regional copy."""

    id: uuid.UUID
    story_id: uuid.UUID | None
    title: str
    status: str
    estimate: str
    stats: dict | None
    revealed_at: datetime | None
    votes: list[VoteRecord] = field(default_factory=list)
    deck: str = ""
    started_at: datetime | None = None
    accepted_at: datetime | None = None
    story_key: str = ""
    story_url: str = ""

    @property
    def pk(self) -> uuid.UUID:
        return self.id


def _home_record(r: Round) -> RoundRecord:
    story = r.story if r.story_id else None
    return RoundRecord(
        id=r.pk,
        story_id=r.story_id,
        title=r.title,
        status=r.status,
        estimate=r.estimate,
        stats=r.stats,
        revealed_at=r.revealed_at,
        votes=[VoteRecord(v.user_id, v.value, cast_at=v.cast_at) for v in r.votes.all()],
        deck=r.deck,
        started_at=r.started_at,
        accepted_at=r.accepted_at,
        story_key=story.external_key if story else "",
        story_url=story.url if story else "",
    )


def _copy_record(c: RoundReplica) -> RoundRecord:
    return RoundRecord(
        id=c.id,
        story_id=c.story_id,
        title=c.title,
        status=c.status,
        estimate=c.estimate,
        stats=c.stats,
        revealed_at=c.revealed_at,
        votes=[VoteRecord(v["user_id"], v["value"]) for v in c.votes],
        deck=c.deck,
        started_at=c.started_at,
        accepted_at=c.accepted_at,
        story_key=c.story_external_key,
    )


def history_source(*, team: Team) -> str:
    """The shard the history pages read: this deployment's region when the team has copies
    there, its home shard otherwise."""
    local = registry.home_region()
    if team.region == local:
        return team.shard
    alias = registry.shard_for_team(team.pk, local)
    if RoundReplica.objects.using(alias).filter(team_id=team.pk).exists():
        return alias
    return team.shard


def history_query(
    *, team: Team, story_id: uuid.UUID | None = None, search: str = ""
) -> QuerySet[Any]:
    """The team's finished rounds, newest first, from history_source: those of one story, or
    those whose title or story key contains ``search`` (case-insensitive)."""
    source = history_source(team=team)
    search = search.strip()
    if source == team.shard:
        rounds = (
            Round.objects.using(source)
            .filter(team_id=team.pk, status__in=FINISHED_STATUSES)
            .select_related("story")
            .prefetch_related("votes")
            .order_by("-revealed_at", "-id")
        )
        if search:
            rounds = rounds.filter(
                Q(title__icontains=search) | Q(story__external_key__icontains=search)
            )
        return rounds if story_id is None else rounds.filter(story_id=story_id)
    copies = RoundReplica.objects.using(source).filter(team_id=team.pk)
    if search:
        copies = copies.filter(Q(title__icontains=search) | Q(story_external_key__icontains=search))
    if story_id is not None:
        copies = copies.filter(story_id=story_id)
    return copies.order_by("-revealed_at", "-id")


def history_records(*, team: Team, rows: Iterable[Round | RoundReplica]) -> list[RoundRecord]:
    """Rows of history_query as records: votes sorted, each with ``voter_name``; a copy's
    story link read from the home shard's backlog (copies keep the key, not the link)."""
    rows = list(rows)
    result = [_home_record(r) if isinstance(r, Round) else _copy_record(r) for r in rows]
    missing = {r.story_id for r in result if r.story_id and not r.story_url}
    if missing and any(isinstance(r, RoundReplica) for r in rows):
        links = dict(
            Story.objects.using(team.shard)
            .filter(team_id=team.pk, pk__in=missing)
            .exclude(url="")
            .values_list("pk", "url")
        )
        for record in result:
            record.story_url = links.get(record.story_id, "")
    user_ids = {vote.user_id for r in result for vote in r.votes}
    names = {u.pk: u.display_name for u in User.objects.filter(pk__in=user_ids)}
    for r in result:
        r.votes.sort(key=lambda v: (v.value, v.user_id))
        for vote in r.votes:
            vote.voter_name = names.get(vote.user_id, f"former member #{vote.user_id}")
    return result


def round_history(*, team: Team, story: Story | None = None, limit: int = 50) -> list[RoundRecord]:
    """Finished rounds, newest first, each vote with ``voter_name`` set."""
    story_id = story.pk if story is not None else None
    rows = list(history_query(team=team, story_id=story_id)[:limit])
    return history_records(team=team, rows=rows)


def history_pages(*, team: Team, search: str = "", chunk: int = 200) -> Iterator[list[RoundRecord]]:
    """The whole (searched) history, ``chunk`` rounds per read, for exports: a large team's
    history is never held whole."""
    rounds = history_query(team=team, search=search)
    start = 0
    while True:
        rows = list(rounds[start : start + chunk])
        if not rows:
            return
        yield history_records(team=team, rows=rows)
        start += chunk
