"""Everything that changes a live table. The only writers of rounds and votes, and the only code
that broadcasts table events (after commit, through rooms.broadcast).

Every function takes the acting ``membership`` (team loaded) and checks the rules in rooms.game
before writing, so the socket, the pages and the API behave the same.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from accounts import roles
from accounts.models import Membership, Team
from integrations import webhooks
from integrations.selectors import teams_with_active_endpoints
from pokerproject.errors import DomainError
from pokerproject.regions.guard import shard_scope, team_atomic
from replication.services import outbox_record, outbox_record_many
from rooms import game, presence, protocol, sql
from rooms.broadcast import broadcast_on_commit, send_now
from rooms.models import Presence, Room, Round, Vote
from rooms.selectors import TableState, backlog_payload, round_payload, table_state
from stories.models import Story
from stories.selectors import story_get


@dataclass(frozen=True)
class TableUpdate:
    """What a table command changed: the room version after it, and the round it touched (the
    one on the table after it). ``accepted`` is the round an estimate was accepted for, which
    "accept and next" replaces on the table."""

    version: int
    round: Round | None = None
    value: str | None = None
    accepted: Round | None = None


class UnknownStory(DomainError):
    code = "unknown_story"


class BacklogDone(DomainError):
    code = "backlog_done"


class TablePaused(DomainError):
    code = "paused"


class TeamMoved(DomainError):
    """The team's rows are no longer on the shard this caller knows; reload the team."""

    code = "moved"


def _lock_room(team: Team) -> Room:
    """Lock the team's room row for this transaction: table changes to one team are serialised.

    A paused table (the team is being moved) refuses every change until it resumes.
    """
    rooms = Room.objects.using(team.shard).select_for_update()
    room = rooms.filter(team_id=team.pk).first()
    if room is None:
        if Team.objects.filter(pk=team.pk).values_list("shard", flat=True).first() != team.shard:
            raise TeamMoved("The team has moved to another shard.")
        try:
            with transaction.atomic(using=team.shard):
                Room.objects.using(team.shard).create(team_id=team.pk)
        except IntegrityError:
            pass  # created concurrently
        room = rooms.get(team_id=team.pk)
    if room.paused:
        raise TablePaused("The table is paused while the team moves; try again in a moment.")
    return room


def _emit(team: Team, room: Room, name: str, data: dict) -> None:
    """Bump the room version and broadcast ``name`` with it after commit."""
    room.version += 1
    room.save(using=team.shard, update_fields=["version", "current_round", "deck", "updated_at"])
    broadcast_on_commit(
        using=team.shard,
        team_id=team.pk,
        event=protocol.event(name, version=room.version, data=data),
    )


def room_touch(*, team: Team, name: str, data: dict) -> int:
    """Record a change made elsewhere (the backlog) as a table event; call inside its atomic."""
    room = _lock_room(team)
    _emit(team, room, name, data)
    return room.version


def _current_status(room: Room) -> str | None:
    return room.current_round.status if room.current_round_id else None


def _open_round(team: Team, room: Room, *, story: Story | None, title: str, user_id: int) -> Round:
    deck = game.get_deck(room.deck)
    round_ = Round.objects.using(team.shard).create(
        team_id=team.pk,
        story=story,
        title=story.title if story else (title.strip()[:200] or "Quick round"),
        deck=deck.key,
        cards=list(deck.cards),
        started_by_id=user_id,
    )
    room.current_round = round_
    _emit(team, room, "round_started", {"round": round_payload(round_, [])})
    return round_


def round_start(
    *, membership: Membership, story_id: str | uuid.UUID | None = None, title: str = ""
) -> TableUpdate:
    """Put a story (or a quick round with an optional label) on the table."""
    roles.require(membership.role, roles.Action.START_ROUND)
    team = membership.team
    with team_atomic(team):
        room = _lock_room(team)
        game.require_can_start(_current_status(room))
        story = None
        if story_id is not None:
            story = story_get(team=team, story_id=story_id)
            if story is None:
                raise UnknownStory("No such story in this team's backlog.")
        round_ = _open_round(team, room, story=story, title=title, user_id=membership.user_id)
    return TableUpdate(version=room.version, round=round_)


def _next_story(team: Team, *, after: Story | None) -> Story | None:
    stories = Story.objects.using(team.shard).filter(team_id=team.pk, estimate="")
    if after is not None:
        stories = stories.exclude(pk=after.pk)
    return stories.order_by("position", "id").first()


def round_start_next(*, membership: Membership) -> TableUpdate:
    """Start a round on the first story of the backlog that has no estimate yet."""
    roles.require(membership.role, roles.Action.START_ROUND)
    team = membership.team
    with team_atomic(team):
        room = _lock_room(team)
        game.require_can_start(_current_status(room))
        current = room.current_round.story if room.current_round_id else None
        story = _next_story(team, after=current)
        if story is None:
            raise BacklogDone("Every story in the backlog has an estimate.")
        round_ = _open_round(team, room, story=story, title="", user_id=membership.user_id)
    return TableUpdate(version=room.version, round=round_)


def vote_cast(*, membership: Membership, value: object) -> TableUpdate:
    """Play a card, or change it. Only the voter learns the value until reveal."""
    roles.require(membership.role, roles.Action.CAST_VOTE)
    alias = membership.team.shard
    [result], events = votes_cast_batch(alias=alias, pending=[(membership, value)])
    for team_id, event in events:
        transaction.on_commit(partial(send_now, team_id, event), using=alias)
    if isinstance(result, DomainError):
        raise result
    return result


def _moved(alias: str, team_ids: list[int]) -> set[int]:
    """Of teams without a room on ``alias``, those the directory homes elsewhere (as in
    _lock_room): their rows have moved to another shard."""
    if not team_ids:
        return set()
    return set(
        Team.objects.filter(pk__in=team_ids).exclude(shard=alias).values_list("pk", flat=True)
    )


def _require_table(
    membership: Membership, action: roles.Action, table: sql.Table | None, moved: set[int]
) -> None:
    """What a batched command checks before its own rule: the role allows ``action``, the team
    has not moved to another shard, and its table is not paused for a move."""
    roles.require(membership.role, action)
    if membership.team_id in moved:
        raise TeamMoved("The team has moved to another shard.")
    if table is not None and table.paused:
        raise TablePaused("The table is paused while the team moves; try again in a moment.")


def votes_cast_batch(
    *, alias: str, pending: list[tuple[Membership, object]]
) -> tuple[list[TableUpdate | DomainError], list[tuple[int, dict]]]:
    """Write votes of teams homed on ``alias`` in one transaction (group commit).

    Returns, in order, a TableUpdate for each accepted vote or the DomainError that refused it, and
    the ``vote_cast`` events for the caller to broadcast once the transaction has committed (the
    team learns who voted, never the value). Rooms are locked in team-id order, so concurrent
    batches of other workers cannot deadlock. rooms.batching feeds it the votes a worker
    receives within a few milliseconds; ``vote_cast`` is a batch of one. Three statements in
    all, written in SQL (rooms.sql) because this is the path every vote takes.
    """
    now = timezone.now()
    results: list[TableUpdate | DomainError] = []
    events: list[tuple[int, dict]] = []
    team_ids = sorted({membership.team_id for membership, _ in pending})
    with shard_scope(alias), sql.batch_transaction(alias) as batch:
        tables = sql.lock_tables(batch, team_ids)
        moved = _moved(alias, [team_id for team_id in team_ids if team_id not in tables])
        votes: dict[tuple, tuple] = {}
        versions: dict[int, int] = {}
        for membership, value in pending:
            table = tables.get(membership.team_id)
            try:
                _require_table(membership, roles.Action.CAST_VOTE, table, moved)
                game.require_voting(table.status if table is not None else None)
                card = game.validate_vote(
                    game.Deck(table.deck, table.deck, tuple(table.cards)), value
                )
            except DomainError as exc:
                results.append(exc)
                continue
            key = (table.round_id, membership.user_id)
            votes[key] = (table.round_id, membership.team_id, membership.user_id, card)
            table.version += 1
            versions[table.room_id] = table.version
            events.append(
                (
                    membership.team_id,
                    protocol.event(
                        "vote_cast", version=table.version, data={"user_id": membership.user_id}
                    ),
                )
            )
            results.append(TableUpdate(version=table.version, value=card))
        if votes:
            sql.upsert_votes(batch, list(votes.values()), now)
            sql.set_room_versions(batch, versions, now)
    return results, events


def vote_withdraw(*, membership: Membership) -> TableUpdate:
    roles.require(membership.role, roles.Action.CAST_VOTE)
    team = membership.team
    with team_atomic(team):
        room = _lock_room(team)
        game.require_voting(_current_status(room))
        deleted, _ = (
            Vote.objects.using(team.shard)
            .filter(round=room.current_round, user_id=membership.user_id)
            .delete()
        )
        if deleted:
            _emit(team, room, "vote_withdrawn", {"user_id": membership.user_id})
    return TableUpdate(version=room.version, round=room.current_round)


def round_reveal(*, membership: Membership) -> TableUpdate:
    """Turn the cards: close the round, store its statistics, show every vote to everyone."""
    roles.require(membership.role, roles.Action.REVEAL)
    [result], _ = rounds_reveal_batch(
        alias=membership.team.shard, pending=[membership], announce_on_commit=True
    )
    if isinstance(result, DomainError):
        raise result
    return result


def rounds_reveal_batch(
    *, alias: str, pending: list[Membership], announce_on_commit: bool = False
) -> tuple[list[TableUpdate | DomainError], list[tuple[int, dict]]]:
    """Reveal the current rounds of teams homed on ``alias`` in one transaction (group commit).

    Returns, in order, a TableUpdate for each reveal or the DomainError that refused it, and the
    ``cards_revealed`` events for the caller to broadcast once the transaction has committed. The
    same rules as ever apply to each item, and each revealed round is recorded for the other
    regions (outbox) and the team's webhooks in the same transaction. Rooms are locked in team-id
    order, so concurrent batches of other workers cannot deadlock. rooms.batching feeds it the
    reveals a worker receives within a few milliseconds; ``round_reveal`` is a batch of one, with
    ``announce_on_commit`` so each event is registered on commit before the queues, as before.
    """
    now = timezone.now()
    results: list[TableUpdate | DomainError] = []
    events: list[tuple[int, dict]] = []
    team_ids = sorted({membership.team_id for membership in pending})
    # transaction.atomic, not sql.batch_transaction: the outbox and webhook rows below are
    # written through the ORM in the same transaction.
    with shard_scope(alias), transaction.atomic(using=alias):
        connection = connections[alias]
        with connection.cursor() as cursor:
            batch = sql.Batch(connection, cursor)
            tables = sql.lock_tables(batch, team_ids)
            moved = _moved(alias, [team_id for team_id in team_ids if team_id not in tables])
            # Read after the rooms are locked: no reveal of another worker can slip in between.
            voting = [t.round_id for t in tables.values() if t.status == game.RoundStatus.VOTING]
            rounds = sql.read_rounds(batch, voting)
            votes_of = sql.read_cards(batch, voting)
            revealed: dict = {}
            versions: dict[int, int] = {}
            for membership in pending:
                table = tables.get(membership.team_id)
                try:
                    _require_table(membership, roles.Action.REVEAL, table, moved)
                    # A second reveal of a team in the same batch finds its round revealed.
                    round_ = rounds.get(table.round_id) if table is not None else None
                    if round_ is not None:
                        game.require_voting(round_.status)
                    else:
                        game.require_voting(table.status if table is not None else None)
                except DomainError as exc:
                    results.append(exc)
                    continue
                votes = votes_of[round_.pk]
                deck = game.Deck(round_.deck, round_.deck, tuple(round_.cards))
                round_.stats = game.compute_statistics(deck, [v.value for v in votes]).as_dict()
                round_.status = game.RoundStatus.REVEALED
                round_.revealed_at = now
                round_.updated_at = now
                round_.version += 1
                table.version += 1
                revealed[round_.pk] = round_
                versions[table.room_id] = table.version
                event = protocol.event(
                    "cards_revealed",
                    version=table.version,
                    data={"round": round_payload(round_, votes)},
                )
                events.append((membership.team_id, event))
                results.append(TableUpdate(version=table.version, round=round_))
            if revealed:
                # One statement for the rounds and one for the rooms (rooms.sql). Each room and
                # round is bumped once, and the rows are locked, so the versions match memory.
                sql.reveal_rounds(
                    batch,
                    {pk: round_.stats for pk, round_ in revealed.items()},
                    game.RoundStatus.REVEALED,
                    now,
                )
                sql.set_room_versions(batch, versions, now)
        # Table events first, then the queues: on commit the table hears before other regions
        # and webhooks (when the caller broadcasts after commit, the queues go at commit).
        for team_id, event in events:
            protocol.check_event(event)
            if announce_on_commit:
                transaction.on_commit(partial(send_now, team_id, event), using=alias)
        done = [(m, r) for m, r in zip(pending, results, strict=True) if isinstance(r, TableUpdate)]
        outbox_record_many(shard=alias, rounds=[(m.team, r.round) for m, r in done])
        # webhooks.record looks the team's endpoints up itself; a team with no active endpoint
        # gets nothing from it, so one query here spares that lookup for most teams.
        hooked = teams_with_active_endpoints(list({m.team_id for m, _ in done}))
        for membership, result in done:
            if membership.team_id in hooked:
                webhooks.record(
                    team=membership.team,
                    event="round.revealed",
                    data=webhooks.revealed(result.round, votes_of[result.round.pk]),
                )
    return results, events


def round_restart(*, membership: Membership) -> TableUpdate:
    """Vote again on the same story. A revealed round stays in history; an unrevealed one is
    cancelled and its votes are never shown."""
    roles.require(membership.role, roles.Action.RESTART)
    team = membership.team
    with team_atomic(team):
        room = _lock_room(team)
        previous = room.current_round
        if previous is None:
            raise game.WrongRoundState("No round is being played.", code="no_active_round")
        if previous.status == game.RoundStatus.VOTING:
            previous.status = game.RoundStatus.CANCELLED
            previous.version += 1
            previous.save(using=team.shard, update_fields=["status", "version"])
        round_ = _open_round(
            team,
            room,
            story=previous.story,
            title=previous.title,
            user_id=membership.user_id,
        )
    return TableUpdate(version=room.version, round=round_)


def estimate_accept(
    *, membership: Membership, value: object, next_story: bool = False
) -> TableUpdate:
    """Record the team's estimate on the round and its story; optionally start the next story."""
    roles.require(membership.role, roles.Action.ACCEPT)
    estimate = game.validate_estimate(value)
    team = membership.team
    with team_atomic(team):
        room = _lock_room(team)
        game.require_revealed(_current_status(room))
        round_ = room.current_round
        now = timezone.now()
        round_.estimate = estimate
        round_.status = game.RoundStatus.ACCEPTED
        round_.accepted_at = now
        round_.version += 1
        round_.save(using=team.shard)
        story = round_.story
        if story is not None:
            story.estimate = estimate
            story.estimated_at = now
            story.save(using=team.shard, update_fields=["estimate", "estimated_at", "updated_at"])
        _emit(
            team,
            room,
            "estimate_accepted",
            {
                "round_id": str(round_.pk),
                "story_id": str(round_.story_id) if round_.story_id else None,
                "estimate": estimate,
                "backlog": backlog_payload(team=team),
            },
        )
        outbox_record(team=team, round_=round_)
        webhooks.record(team=team, event="story.estimated", data=webhooks.estimated_data(round_))
        accepted = round_
        # With nothing left to estimate, "accept and next" simply accepts.
        upcoming = _next_story(team, after=story) if next_story else None
        if upcoming is not None:
            round_ = _open_round(team, room, story=upcoming, title="", user_id=membership.user_id)
    return TableUpdate(version=room.version, round=round_, value=estimate, accepted=accepted)


def room_set_deck(*, membership: Membership, deck: str) -> TableUpdate:
    """Choose the deck for the next rounds; not while a round is being voted."""
    roles.require(membership.role, roles.Action.SET_DECK)
    chosen = game.get_deck(deck)
    team = membership.team
    with team_atomic(team):
        room = _lock_room(team)
        game.require_can_start(_current_status(room))
        room.deck = chosen.key
        _emit(team, room, "deck_changed", {"deck": chosen.as_dict()})
    return TableUpdate(version=room.version)


def _presence_changed(team: Team) -> TableState:
    # One read of the table serves the event and, on join, the joining socket's snapshot.
    state = table_state(team=team, create=False)
    broadcast_on_commit(
        using=team.shard,
        team_id=team.pk,
        event=protocol.event(
            "presence_changed",
            version=state.room.version if state.room is not None else 0,
            data={"participants": state.participants},
        ),
    )
    return state


def presence_join(*, team: Team, user_id: int, channel_name: str) -> TableState:
    """Record an open socket and announce it; returns the table as read in the same transaction
    (``selectors.room_snapshot(state=...)`` builds the joining socket's snapshot from it)."""
    presence.mark_alive()
    with team_atomic(team):
        rows = Presence.objects.using(team.shard)
        # Rows left by a worker that died without a goodbye no longer count: clear them here.
        workers = set(rows.filter(team_id=team.pk).values_list("worker", flat=True))
        dead = workers - presence.alive(workers)
        if dead:
            rows.filter(team_id=team.pk, worker__in=dead).delete()
        # One upsert statement (channel names are unique) instead of a select and a write.
        rows.bulk_create(
            [
                Presence(
                    channel_name=channel_name,
                    team_id=team.pk,
                    user_id=user_id,
                    worker=presence.WORKER_ID,
                )
            ],
            update_conflicts=True,
            unique_fields=["channel_name"],
            update_fields=["team_id", "user_id", "worker"],
        )
        return _presence_changed(team)


def presence_leave(*, team: Team, channel_name: str) -> None:
    with team_atomic(team):
        deleted, _ = Presence.objects.using(team.shard).filter(channel_name=channel_name).delete()
        if deleted:
            _presence_changed(team)
