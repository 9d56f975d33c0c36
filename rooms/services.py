"""Everything that changes a live table. The only writers of rounds, votes, rooms, presence and
the copies of rounds, and the only code that publishes table events (after commit, through
rooms.broadcast).

Every table command takes the acting ``membership`` (team loaded), locks the team's table and
checks it the same way (``_lock_table`` for one team, ``_require_table`` per item of a batch),
then applies the rules of rooms.game. What happened to the rounds is recorded as domain events
(``round.revealed``, ``round.accepted``) for the apps above: replication and webhooks subscribe.
The backlog's and the directory's events reach open tables through the subscribers at the end.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts import roles
from accounts import services as account_services
from accounts.models import Membership, Team
from pokerproject import events
from pokerproject.errors import DomainError, gettext_noop
from pokerproject.regions import registry
from pokerproject.regions.guard import shard_scope, team_atomic
from rooms import game, presence, protocol, selectors, sql
from rooms.broadcast import publish_on_commit
from rooms.errors import TablePaused, TeamMoved
from rooms.models import Deck, Presence, Room, Round, RoundReplica, Vote
from rooms.selectors import (
    TableState,
    backlog_payload,
    deck_get,
    decks_payload,
    round_payload,
    table_state,
    table_states,
    team_deck_get,
)
from stories import selectors as story_selectors
from stories import services as story_services
from stories.models import Story
from stories.services import UnknownStory

events.declare("round.revealed", "round.accepted", "table_session.ended")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableUpdate:
    """What a table command changed: the room version after it, and the round it touched (the
    one on the table after it). ``accepted`` is the round an estimate was accepted for, which
    "accept and next" replaces on the table."""

    version: int
    round: Round | None = None
    value: str | None = None
    accepted: Round | None = None


class BacklogDone(DomainError):
    code = "backlog_done"


class UnknownMember(DomainError):
    code = "unknown_member"


class InvalidRole(DomainError):
    code = "invalid_role"


def _lock_table(
    team: Team, membership: Membership | None = None, action: roles.Action | None = None
) -> Room:
    """Lock the team's table for this transaction and check it as every table command does
    (``_require_table``): changes to one team are serialised, a paused table (the team is being
    moved) and a team homed on another shard refuse. Returns the room with its current round.
    Call inside ``team_atomic(team)``."""
    alias = team.shard
    with connections[alias].cursor() as cursor:
        batch = sql.Batch(connections[alias], cursor)
        tables = sql.lock_tables(batch, [team.pk])
        moved = _moved(alias, [team.pk]) if not tables else set()
        if not tables and not moved:
            # The table's first command (the room is made with the team; this is for teams from
            # before that, or a room lost to a crash between the two).
            try:
                with transaction.atomic(using=alias):
                    Room.objects.using(alias).create(team_id=team.pk)
            except IntegrityError:
                pass  # created concurrently
            tables = sql.lock_tables(batch, [team.pk])
    _require_table(membership, action, tables.get(team.pk), moved, team_id=team.pk)
    return Room.objects.using(alias).select_related("current_round__story").get(team_id=team.pk)


def _emit(team: Team, room: Room, name: str, data: dict) -> None:
    """Bump the room version and publish ``name`` with it after commit."""
    room.version += 1
    room.save(using=team.shard, update_fields=["version", "current_round", "deck", "updated_at"])
    publish_on_commit(
        using=team.shard,
        team_id=team.pk,
        event=protocol.event(name, version=room.version, data=data),
    )


def room_touch(*, team: Team, name: str, data: dict) -> int:
    """Record a change made elsewhere (the backlog) as a table event; call inside its atomic."""
    room = _lock_table(team)
    _emit(team, room, name, data)
    return room.version


def _current_status(room: Room) -> str | None:
    return room.current_round.status if room.current_round_id else None


def _open_round(team: Team, room: Room, *, story: Story | None, title: str, user_id: int) -> Round:
    try:
        deck = deck_get(team=team, key=room.deck)
    except game.UnknownDeck:  # a team deck deleted in between: the default deck, as shown
        deck = game.get_deck(game.DEFAULT_DECK)
    # The round keeps the deck as it is now (cards, name, numbers): history and statistics
    # stay right whatever later happens to the deck.
    round_ = Round.objects.using(team.shard).create(
        team_id=team.pk,
        story=story,
        title=story.title if story else (title.strip()[:200] or "Quick round"),
        deck=deck.key,
        cards=list(deck.cards),
        deck_spec=deck.snapshot(),
        started_by_id=user_id,
    )
    room.current_round = round_
    _emit(team, room, "round_started", {"round": round_payload(round_, [])})
    return round_


def round_start(
    *, membership: Membership, story_id: str | uuid.UUID | None = None, title: str = ""
) -> TableUpdate:
    """Put a story (or a quick round with an optional label) on the table."""
    team = membership.team
    with team_atomic(team):
        room = _lock_table(team, membership, roles.Action.START_ROUND)
        game.require_can_start(_current_status(room))
        story = None
        if story_id is not None:
            story = story_selectors.story_get(team=team, story_id=story_id)
            if story is None:
                raise UnknownStory(gettext_noop("No such story in this team's backlog."))
        round_ = _open_round(team, room, story=story, title=title, user_id=membership.user_id)
    return TableUpdate(version=room.version, round=round_)


def round_start_next(*, membership: Membership) -> TableUpdate:
    """Start a round on the first story of the backlog that has no estimate yet."""
    team = membership.team
    with team_atomic(team):
        room = _lock_table(team, membership, roles.Action.START_ROUND)
        game.require_can_start(_current_status(room))
        current = room.current_round.story if room.current_round_id else None
        story = story_selectors.story_next_unestimated(team=team, after=current)
        if story is None:
            raise BacklogDone(gettext_noop("Every story in the backlog has an estimate."))
        round_ = _open_round(team, room, story=story, title="", user_id=membership.user_id)
    return TableUpdate(version=room.version, round=round_)


def vote_cast(*, membership: Membership, value: object) -> TableUpdate:
    """Play a card, or change it. Only the voter learns the value until reveal. A batch of one:
    the socket's votes go through ``votes_cast_batch`` in batches (rooms.realtime.batching)."""
    [result] = votes_cast_batch(alias=membership.team.shard, pending=[(membership, value)])
    if isinstance(result, DomainError):
        raise result
    return result


def _moved(alias: str, team_ids: list[int]) -> set[int]:
    """Of teams without a room on ``alias``, those the directory homes elsewhere: their rows
    have moved to another shard."""
    if not team_ids:
        return set()
    return set(
        Team.objects.filter(pk__in=team_ids).exclude(shard=alias).values_list("pk", flat=True)
    )


def _require_table(
    membership: Membership | None,
    action: roles.Action | None,
    table: sql.Table | None,
    moved: set[int],
    *,
    team_id: int | None = None,
) -> None:
    """What every table command checks before its own rule: the role allows ``action``, the
    team has not moved to another shard, and its table is not paused for a move."""
    if membership is not None and action is not None:
        roles.require(membership.role, action)
    if (membership.team_id if membership is not None else team_id) in moved:
        raise TeamMoved(gettext_noop("The team has moved to another shard."))
    if table is not None and table.paused:
        raise TablePaused(
            gettext_noop("The table is paused while the team moves; try again in a moment.")
        )


def votes_cast_batch(
    *, alias: str, pending: list[tuple[Membership, object]]
) -> list[TableUpdate | DomainError]:
    """Write votes of teams homed on ``alias`` in one transaction (group commit).

    Returns, in order, a TableUpdate for each accepted vote or the DomainError that refused it;
    each ``vote_cast`` event is published once the transaction has committed (the team learns
    who voted, never the value). Rooms are locked in team-id order, so concurrent batches of
    other workers cannot deadlock. Three statements in all, written in SQL (rooms.sql) because
    this is the path every vote takes.
    """
    now = timezone.now()
    results: list[TableUpdate | DomainError] = []
    frames: list[tuple[int, dict]] = []
    # Teams whose table reveals itself once every present voter has voted: looked at after the
    # batch, so tables without auto-reveal pay nothing on this path.
    auto_reveal: dict[int, Team] = {}
    team_ids = sorted({membership.team_id for membership, _ in pending})
    with shard_scope(alias):
        with sql.batch_transaction(alias) as batch:
            tables = sql.lock_tables(batch, team_ids)
            moved = _moved(alias, [team_id for team_id in team_ids if team_id not in tables])
            votes: dict[tuple, tuple] = {}
            versions: dict[int, int] = {}
            for membership, value in pending:
                table = tables.get(membership.team_id)
                try:
                    _require_table(membership, roles.Action.CAST_VOTE, table, moved)
                    game.require_voting(table.status if table is not None else None)
                    if membership.user_id in (table.not_voting or ()):
                        raise game.NotVoting(
                            gettext_noop("You sit this round out: turn voting back on first.")
                        )
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
                frames.append(
                    (
                        membership.team_id,
                        protocol.event(
                            "vote_cast",
                            version=table.version,
                            data={"user_id": membership.user_id},
                        ),
                    )
                )
                results.append(TableUpdate(version=table.version, value=card))
                if table.auto_reveal:
                    auto_reveal[membership.team_id] = membership.team
            if votes:
                sql.upsert_votes(batch, list(votes.values()), now)
                sql.set_room_versions(batch, versions, now)
        # Committed (or, inside an outer transaction, published when that one commits).
        for team_id, frame in frames:
            publish_on_commit(using=alias, team_id=team_id, event=frame)
        for team in auto_reveal.values():
            room_auto_reveal(team=team)
    return results


def vote_withdraw(*, membership: Membership) -> TableUpdate:
    team = membership.team
    with team_atomic(team):
        room = _lock_table(team, membership, roles.Action.CAST_VOTE)
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
    """Turn the cards: close the round, store its statistics, show every vote to everyone. A
    batch of one: the socket's reveals go through ``rounds_reveal_batch`` in batches."""
    [result] = rounds_reveal_batch(alias=membership.team.shard, pending=[membership])
    if isinstance(result, DomainError):
        raise result
    return result


def rounds_reveal_batch(
    *, alias: str, pending: list[Membership | Team], by: str | None = None
) -> list[TableUpdate | DomainError]:
    """Reveal the current rounds of teams homed on ``alias`` in one transaction (group commit).

    An item is the member who asked (their role is checked) or a team whose table the server
    reveals by itself (``room_auto_reveal``; ``by`` then says why, in the event).
    Returns, in order, a TableUpdate for each reveal or the DomainError that refused it. The
    same rules as ever apply to each item. Each ``cards_revealed`` event is published after
    commit, and each revealed round is recorded as a ``round.revealed`` domain event in the same
    transaction (other regions and webhooks subscribe). Rooms are locked in team-id order, so
    concurrent batches of other workers cannot deadlock.
    """
    now = timezone.now()
    results: list[TableUpdate | DomainError] = []
    revealed_events: list[events.Event] = []
    team_ids = sorted({_team_of(item).pk for item in pending})
    # transaction.atomic, not sql.batch_transaction: the subscribers write their outbox rows
    # through the ORM in the same transaction.
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
            for item in pending:
                team = _team_of(item)
                membership = item if isinstance(item, Membership) else None
                table = tables.get(team.pk)
                try:
                    _require_table(membership, roles.Action.REVEAL, table, moved, team_id=team.pk)
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
                deck = game.Deck.from_snapshot(round_.deck, round_.cards, round_.deck_spec)
                round_.stats = game.compute_statistics(deck, [v.value for v in votes]).as_dict()
                round_.status = game.RoundStatus.REVEALED
                round_.revealed_at = now
                round_.updated_at = now
                round_.version += 1
                table.version += 1
                revealed[round_.pk] = round_
                versions[table.room_id] = table.version
                data: dict[str, Any] = {"round": round_payload(round_, votes)}
                if by is not None:
                    data["by"] = by
                publish_on_commit(
                    using=alias,
                    team_id=team.pk,
                    event=protocol.event("cards_revealed", version=table.version, data=data),
                )
                revealed_events.append(
                    events.Event("round.revealed", team, {"round": round_, "votes": votes})
                )
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
        # After the table's events: on commit the table hears before other regions and webhooks.
        if revealed_events:
            events.emit(revealed_events, using=alias)
    return results


def _team_of(item: Membership | Team) -> Team:
    return item if isinstance(item, Team) else item.team


def round_restart(*, membership: Membership) -> TableUpdate:
    """Vote again on the same story. A revealed round stays in history; an unrevealed one is
    cancelled and its votes are never shown."""
    team = membership.team
    with team_atomic(team):
        room = _lock_table(team, membership, roles.Action.RESTART)
        previous = room.current_round
        if previous is None:
            raise game.WrongRoundState(
                gettext_noop("No round is being played."), code="no_active_round"
            )
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
    # The role first: someone who may not accept learns that, not what is wrong with the value.
    roles.require(membership.role, roles.Action.ACCEPT)
    estimate = game.validate_estimate(value)
    team = membership.team
    with team_atomic(team):
        room = _lock_table(team, membership)
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
            story_services.story_set_estimate(
                team=team, story=story, estimate=estimate, at=now, round_id=round_.pk
            )
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
        events.emit(events.Event("round.accepted", team, {"round": round_}), using=team.shard)
        accepted = round_
        # With nothing left to estimate, "accept and next" simply accepts.
        upcoming = (
            story_selectors.story_next_unestimated(team=team, after=story) if next_story else None
        )
        if upcoming is not None:
            round_ = _open_round(team, room, story=upcoming, title="", user_id=membership.user_id)
    return TableUpdate(version=room.version, round=round_, value=estimate, accepted=accepted)


def room_set_deck(*, membership: Membership, deck: str) -> TableUpdate:
    """Choose the deck for the next rounds (the team's default deck); not while a round is
    being voted (the table's picker; the settings page may, as the round keeps its cards)."""
    roles.require(membership.role, roles.Action.SET_DECK)
    team = membership.team
    chosen = deck_get(team=team, key=deck)
    with team_atomic(team):
        room = _lock_table(team, membership)
        game.require_can_start(_current_status(room))
        room.deck = chosen.key
        _decks_changed(team, room)
    return TableUpdate(version=room.version)


def table_session_end(*, membership: Membership) -> TableUpdate:
    """End the team's estimation session: the rounds revealed since the previous end (or since
    the table opened) make up the session. The table records nothing of its own; it announces
    the end and emits ``table_session.ended`` in its transaction (notifications records the
    session and its summary there). A round being played goes on; it belongs to the next."""
    roles.require(membership.role, roles.Action.END_SESSION)
    team = membership.team
    with team_atomic(team):
        room = _lock_table(team, membership)
        now = timezone.now()
        data = {"ended_at": now, "ended_by_id": membership.user_id}
        events.emit(events.Event("table_session.ended", team, data), using=team.shard)
        _emit(
            team,
            room,
            "table_session_ended",
            {"ended_at": now.isoformat(), "ended_by": membership.user_id},
        )
    return TableUpdate(version=room.version)


# --- decks: a team's own, and its default (the table's deck) -------------------------------


class DuplicateDeck(game.InvalidDeck):
    pass


def _decks_changed(team: Team, room: Room | None = None) -> Room:
    """Tell every open table the team's decks and its deck as they are now (``deck_changed``,
    a versioned table event sent after commit). Call inside ``team_atomic(team)``."""
    if room is None:
        room = _lock_table(team)
    payload = decks_payload(team=team, key=room.deck)
    room.deck = payload["deck"]["key"]  # a deleted deck's table falls back to the default
    _emit(team, room, "deck_changed", payload)
    return room


def _deck_validated(team: Team, *, name: object, cards: list, deck_id: int | None) -> game.Deck:
    valid = game.validate_deck(game.custom_deck_key(deck_id or 0), name, cards)
    taken = Deck.objects.filter(team=team, name=valid.name).exclude(pk=deck_id)
    if valid.name in {d.name for d in game.DECKS.values()} or taken.exists():
        raise DuplicateDeck(
            gettext_noop("The team already has a deck named %(name)s."),
            params={"name": repr(valid.name)},
        )
    return valid


def deck_create_for_team(*, team: Team, name: object, cards: list) -> Deck:
    """Add a deck of the team's own (``cards``: ``(label, number or None)`` pairs, as
    ``game.validate_deck`` takes them); every open table learns of it."""
    valid = _deck_validated(team, name=name, cards=cards, deck_id=None)
    try:
        with transaction.atomic(using="default"), team_atomic(team):
            deck = Deck.objects.create(
                team=team, name=valid.name, cards=list(valid.cards), values=dict(valid.values or ())
            )
            _decks_changed(team)
    except IntegrityError:  # the same name, saved concurrently since the check
        raise DuplicateDeck(
            gettext_noop("The team already has a deck named %(name)s."),
            params={"name": repr(valid.name)},
        ) from None
    return deck


def deck_update_for_team(*, team: Team, deck_id: object, name: object, cards: list) -> Deck:
    """Rename a team deck or change its cards. Rounds already played keep the cards they were
    dealt; a table using the deck shows the new cards at once."""
    deck = _require_team_deck(team, deck_id)
    valid = _deck_validated(team, name=name, cards=cards, deck_id=deck.pk)
    try:
        with transaction.atomic(using="default"), team_atomic(team):
            deck.name, deck.cards = valid.name, list(valid.cards)
            deck.values = dict(valid.values or ())
            deck.save(update_fields=["name", "cards", "values", "updated_at"])
            _decks_changed(team)
    except IntegrityError:  # the same name, saved concurrently since the check
        raise DuplicateDeck(
            gettext_noop("The team already has a deck named %(name)s."),
            params={"name": repr(valid.name)},
        ) from None
    return deck


def deck_delete_for_team(*, team: Team, deck_id: object) -> None:
    """Delete a team deck; a table dealing it goes back to the default deck (Fibonacci)."""
    deck = _require_team_deck(team, deck_id)
    with transaction.atomic(using="default"), team_atomic(team):
        deck.delete()
        _decks_changed(team)


def deck_set_default_for_team(*, team: Team, deck: str) -> TableUpdate:
    """Make ``deck`` (a built-in key or a team deck's) the one new rounds are dealt from. A
    round being voted keeps its cards; open tables show the new deck at once."""
    chosen = deck_get(team=team, key=deck)
    with team_atomic(team):
        room = _lock_table(team)
        room.deck = chosen.key
        _decks_changed(team, room)
    return TableUpdate(version=room.version)


def _require_team_deck(team: Team, deck_id: object) -> Deck:
    deck = team_deck_get(team=team, deck_id=deck_id)
    if deck is None:
        raise game.UnknownDeck(gettext_noop("No such deck in this team."))
    return deck


def deck_create(*, membership: Membership, name: object, cards: list) -> Deck:
    roles.require(membership.role, roles.Action.MANAGE_DECKS)
    return deck_create_for_team(team=membership.team, name=name, cards=cards)


def deck_update(*, membership: Membership, deck_id: object, name: object, cards: list) -> Deck:
    roles.require(membership.role, roles.Action.MANAGE_DECKS)
    return deck_update_for_team(team=membership.team, deck_id=deck_id, name=name, cards=cards)


def deck_delete(*, membership: Membership, deck_id: object) -> None:
    roles.require(membership.role, roles.Action.MANAGE_DECKS)
    deck_delete_for_team(team=membership.team, deck_id=deck_id)


def deck_set_default(*, membership: Membership, deck: str) -> TableUpdate:
    roles.require(membership.role, roles.Action.MANAGE_DECKS)
    return deck_set_default_for_team(team=membership.team, deck=deck)


def team_settings_update(
    *,
    membership: Membership,
    name: str,
    voters_edit_backlog: bool,
    allow_guests: bool,
    timer_default_seconds: int,
    default_deck: str,
) -> Team:
    """The team's settings page: the directory's settings and the table's default deck
    (changed, and announced to open tables, only when it differs)."""
    roles.require(membership.role, roles.Action.MANAGE_TEAM)
    team = membership.team
    chosen = deck_get(team=team, key=default_deck)
    timer_before = team.timer_default_seconds
    with transaction.atomic(using="default"):
        team = account_services.team_settings_update(
            team=team,
            name=name,
            voters_edit_backlog=voters_edit_backlog,
            allow_guests=allow_guests,
            timer_default_seconds=timer_default_seconds,
        )
        with team_atomic(team):
            room = _lock_table(team)
            if room.deck != chosen.key:
                room.deck = chosen.key
                _decks_changed(team, room)
            if team.timer_default_seconds != timer_before:
                settings_now = selectors.table_settings_payload(room, team)
                _emit(team, room, "table_settings_changed", settings_now)
    return team


# --- presence-aware rounds: auto-reveal, the round timer, who sits out ----------------------


def _present_voters(team: Team, room: Room) -> set[int]:
    """Who the round waits for: members whose role votes, at the table, not sitting out."""
    members = Membership.objects.filter(team_id=team.pk).values_list("user_id", "role")
    return game.present_voters(
        ((user_id, roles.can(role, roles.Action.CAST_VOTE)) for user_id, role in members),
        selectors.online_user_ids(team=team),
        room.not_voting,
    )


def _reveal_reason(team: Team, room: Room, round_: Round) -> str | None:
    """Why the server should reveal the round now (``timer``, ``all_voted``), or None."""
    if round_.status != game.RoundStatus.VOTING:
        return None
    ends_at = round_.timer_ends_at
    if round_.timer_auto_reveal and ends_at is not None and ends_at <= timezone.now():
        return "timer"
    if room.auto_reveal:
        voted = set(Vote.objects.using(team.shard).filter(round=round_).values_list("user_id"))
        if game.everyone_present_voted(_present_voters(team, room), {v for (v,) in voted}):
            return "all_voted"
    return None


def room_auto_reveal(*, team: Team, round_id: uuid.UUID | str | None = None) -> str | None:
    """Reveal the round on the table if the table's rules say so: its timer (with auto-reveal)
    has run out, or auto-reveal is on and every present voter has voted. Returns why it
    revealed, or None.

    Called after every change that can complete a round (a vote, a join or a leave, a role
    change, someone sitting out, the setting itself) and by the timers (rooms.realtime.timers,
    and a join after a worker died). Safe to call any number of times from any number of
    processes: under the table's lock, a round that is no longer being voted (or, with
    ``round_id``, no longer on the table) is left alone, so a round is revealed exactly once.
    """
    try:
        with team_atomic(team):
            room = _lock_table(team)
            round_ = room.current_round
            if round_ is None or (round_id is not None and str(round_.pk) != str(round_id)):
                return None
            reason = _reveal_reason(team, room, round_)
            if reason is None:
                return None
            [result] = rounds_reveal_batch(alias=team.shard, pending=[team], by=reason)
            if isinstance(result, DomainError):
                return None
            return reason
    except (TablePaused, TeamMoved):
        return None  # the table's new home looks again when it resumes


def room_set_auto_reveal(*, membership: Membership, enabled: bool) -> TableUpdate:
    """Turn the table's auto-reveal on or off; turned on, it may reveal at once."""
    team = membership.team
    with team_atomic(team):
        room = _lock_table(team, membership, roles.Action.RUN_TABLE)
        room.auto_reveal = bool(enabled)
        room.save(using=team.shard, update_fields=["auto_reveal"])
        _emit(team, room, "table_settings_changed", selectors.table_settings_payload(room, team))
    room_auto_reveal(team=team)
    return TableUpdate(version=room.version)


def member_set_voting(
    *, membership: Membership, voting: bool, user_id: int | None = None
) -> TableUpdate:
    """Sit out of the votes (``voting=False``) or play again: one's own choice, or a
    facilitator's for another member. Someone who sits out plays no card and is not counted in
    "X of Y voted"; a card already played in the current round is taken back."""
    team = membership.team
    target = membership.user_id if user_id is None else user_id
    if target != membership.user_id:
        roles.require(membership.role, roles.Action.RUN_TABLE)
        if not Membership.objects.filter(team_id=team.pk, user_id=target).exists():
            raise UnknownMember(gettext_noop("No such member in this team."))
    with team_atomic(team):
        room = _lock_table(team, membership)
        sitting_out = [u for u in room.not_voting if u != target]
        if not voting:
            sitting_out.append(target)
        if sorted(sitting_out) != sorted(room.not_voting):
            room.not_voting = sorted(sitting_out)
            room.save(using=team.shard, update_fields=["not_voting"])
            round_ = room.current_round
            if not voting and round_ is not None and round_.status == game.RoundStatus.VOTING:
                taken_back, _ = (
                    Vote.objects.using(team.shard).filter(round=round_, user_id=target).delete()
                )
                if taken_back:
                    _emit(team, room, "vote_withdrawn", {"user_id": target})
            _emit(team, room, "voting_changed", {"user_id": target, "voting": bool(voting)})
    room_auto_reveal(team=team)
    return TableUpdate(version=room.version)


def _voting_round(room: Room) -> Round:
    game.require_voting(_current_status(room))
    return room.current_round


def _timer_changed(team: Team, room: Room, round_: Round) -> None:
    round_.version += 1
    round_.save(
        using=team.shard,
        update_fields=["timer_ends_at", "timer_seconds", "timer_auto_reveal", "version"],
    )
    _emit(
        team,
        room,
        "timer_changed",
        {"round_id": str(round_.pk), "timer": selectors.timer_payload(round_)},
    )


def round_timer_start(
    *, membership: Membership, seconds: int | None = None, auto_reveal: bool = False
) -> TableUpdate:
    """Start (or start again) the round's timer: ``seconds`` from now (the default length
    without it); with ``auto_reveal`` the server reveals the round when it runs out."""
    roles.require(membership.role, roles.Action.RUN_TABLE)
    team = membership.team
    length = game.validate_timer_seconds(seconds, default=team.timer_default_seconds)
    with team_atomic(team):
        room = _lock_table(team, membership)
        round_ = _voting_round(room)
        round_.timer_ends_at = timezone.now() + timedelta(seconds=length)
        round_.timer_seconds = length
        round_.timer_auto_reveal = bool(auto_reveal)
        _timer_changed(team, room, round_)
    return TableUpdate(version=room.version, round=round_)


def round_timer_extend(*, membership: Membership, seconds: int | None = None) -> TableUpdate:
    """Give the running timer more time (from now, if it has already run out)."""
    roles.require(membership.role, roles.Action.RUN_TABLE)
    more = game.validate_timer_seconds(seconds, default=game.DEFAULT_TIMER_EXTENSION_SECONDS)
    team = membership.team
    with team_atomic(team):
        room = _lock_table(team, membership)
        round_ = _voting_round(room)
        if round_.timer_ends_at is None:
            raise game.InvalidTimer(gettext_noop("No timer is running."), code="no_timer")
        round_.timer_ends_at = max(round_.timer_ends_at, timezone.now()) + timedelta(seconds=more)
        round_.timer_seconds = min(game.MAX_TIMER_SECONDS, round_.timer_seconds + more)
        _timer_changed(team, room, round_)
    return TableUpdate(version=room.version, round=round_)


def round_timer_stop(*, membership: Membership) -> TableUpdate:
    """Stop the round's timer: no countdown, no reveal when it would have run out."""
    roles.require(membership.role, roles.Action.RUN_TABLE)
    team = membership.team
    with team_atomic(team):
        room = _lock_table(team, membership)
        round_ = _voting_round(room)
        if round_.timer_ends_at is None:
            raise game.InvalidTimer(gettext_noop("No timer is running."), code="no_timer")
        round_.timer_ends_at = None
        round_.timer_seconds = 0
        round_.timer_auto_reveal = False
        _timer_changed(team, room, round_)
    return TableUpdate(version=room.version, round=round_)


def table_member_remove(*, membership: Membership, user_id: int) -> None:
    """Remove a member from the team at the table, through the directory's own service (the
    same as the team page's): their sockets close and they cannot come back until re-added."""
    if not Membership.objects.filter(team_id=membership.team_id, user_id=user_id).exists():
        raise UnknownMember(gettext_noop("No such member in this team."))
    account_services.membership_remove(actor=membership, user_id=user_id)


def table_member_set_role(*, membership: Membership, user_id: int, role: str) -> None:
    """Give a member another role at the table, through the directory's own service."""
    roles.require(membership.role, roles.Action.MANAGE_MEMBERS)
    if role not in {r.value for r in roles.Role}:
        raise InvalidRole(gettext_noop("No such role: %(role)s."), params={"role": repr(role[:40])})
    if not Membership.objects.filter(team_id=membership.team_id, user_id=user_id).exists():
        raise UnknownMember(gettext_noop("No such member in this team."))
    account_services.membership_set_role(actor=membership, user_id=user_id, role=role)


# --- presence -----------------------------------------------------------------------------------


def _may_reveal(room: Room) -> bool:
    """Whether the table might reveal itself now (``room_auto_reveal`` decides under the lock):
    read from what a presence change reads anyway, so most joins pay no extra query."""
    round_ = room.current_round
    if round_ is None or round_.status != game.RoundStatus.VOTING:
        return False
    if room.auto_reveal:
        return True
    ends_at = round_.timer_ends_at
    return round_.timer_auto_reveal and ends_at is not None and ends_at <= timezone.now()


def _presences_changed(
    alias: str, teams: list[Team], rooms: dict[int, Room]
) -> dict[int, TableState]:
    """Announce who is at each of ``teams``' tables (in this order); one read of each table
    serves its event and, on join, the joining sockets' snapshots."""
    states = table_states(alias=alias, teams=teams, rooms=rooms)
    for team in teams:
        state = states[team.pk]
        # Someone came or went: whoever is there may all have voted, or a timer may have run
        # out while no worker watched it (its worker died).
        if _may_reveal(state.room) and room_auto_reveal(team=team):
            state = states[team.pk] = table_state(team=team)
        publish_on_commit(
            using=team.shard,
            team_id=team.pk,
            event=protocol.event(
                "presence_changed",
                version=state.room.version,
                data={"participants": state.participants},
            ),
        )
    return states


@dataclass(frozen=True)
class PresenceChange:
    """A socket that opened (``user_id`` set) or closed (``user_id`` None) at ``team``'s table;
    ``channel_name`` keys its presence row."""

    team: Team
    channel_name: str
    user_id: int | None = None


def presence_batch(
    *, alias: str, pending: list[PresenceChange]
) -> list[TableState | DomainError | None]:
    """Record the sockets that opened and closed at tables homed on ``alias`` (a few
    milliseconds' worth, rooms.realtime.batching) in one transaction, and announce each table
    that changed once, however many of its members came or went.

    Returns, in order, for an opening the table as read after the batch (``selectors
    .room_snapshot(state=...)`` builds the joining socket's snapshot from it), for a closing
    None, and TeamMoved for an opening at a team that has moved to another shard. A socket
    that opens and closes within one batch ends up with no row: the last change of a channel
    wins. Rows of workers that died without a goodbye no longer count; a table that a socket
    joins is cleared of them here.
    """
    if any(change.user_id is not None for change in pending):
        presence.mark_alive()
    last = {change.channel_name: change for change in pending}
    teams = {change.team.pk: change.team for change in pending}
    with shard_scope(alias), transaction.atomic(using=alias):
        rows = Presence.objects.using(alias)
        # Presence does not touch the room: one read of each table serves the whole batch.
        rooms = {
            room.team_id: room
            for room in Room.objects.using(alias)
            .select_related("current_round__story")
            .filter(team_id__in=teams)
        }
        moved = _moved(alias, [team_id for team_id in teams if team_id not in rooms])
        # Every table a socket joins gets a state, even if that socket closed again meanwhile.
        changed = {c.team.pk for c in pending if c.user_id is not None} - moved
        opened = [c for c in last.values() if c.user_id is not None and c.team.pk in changed]
        if changed:
            workers = set(rows.filter(team_id__in=changed).values_list("worker", flat=True))
            dead = workers - presence.alive(workers)
            if dead:
                rows.filter(team_id__in=changed, worker__in=dead).delete()
        if opened:
            # One upsert statement (channel names are unique) instead of a select and a write.
            rows.bulk_create(
                [
                    Presence(
                        channel_name=c.channel_name,
                        team_id=c.team.pk,
                        user_id=c.user_id,
                        worker=presence.WORKER_ID,
                    )
                    for c in opened
                ],
                update_conflicts=True,
                unique_fields=["channel_name"],
                update_fields=["team_id", "user_id", "worker"],
            )
        closed = [name for name, change in last.items() if change.user_id is None]
        if closed:
            gone = set(rows.filter(channel_name__in=closed).values_list("team_id", flat=True))
            if gone:
                rows.filter(channel_name__in=closed).delete()
            # A channel that never joined (or whose team moved away) leaves silently.
            changed |= (gone & teams.keys()) - moved
        # In team-id order: auto-reveal locks tables in the order the vote batches do.
        states = _presences_changed(alias, [teams[team_id] for team_id in sorted(changed)], rooms)
    results: list[TableState | DomainError | None] = []
    for change in pending:
        if change.user_id is None:
            results.append(None)
        elif change.team.pk in moved:
            results.append(TeamMoved("The team has moved to another shard."))
        else:
            results.append(states[change.team.pk])
    return results


def presence_join(*, team: Team, user_id: int, channel_name: str) -> TableState:
    """Record one open socket and announce it (a batch of one, see ``presence_batch``)."""
    [result] = presence_batch(
        alias=team.shard, pending=[PresenceChange(team, channel_name, user_id)]
    )
    if isinstance(result, DomainError):
        raise result
    return result


def presence_leave(*, team: Team, channel_name: str) -> None:
    presence_batch(alias=team.shard, pending=[PresenceChange(team, channel_name)])


# --- the table's side of a move between shards (operations.moves drives it) -----------------


def table_pause(*, team_id: int, alias: str, paused: bool, reason: str = "") -> int:
    """Pause (or resume) the team's table on ``alias`` under its lock and tell its sockets;
    returns the room version. A paused table refuses every command until it resumes."""
    with shard_scope(alias), transaction.atomic(using=alias):
        room, _ = Room.objects.using(alias).select_for_update().get_or_create(team_id=team_id)
        room.paused = paused
        room.save(using=alias, update_fields=["paused", "updated_at"])
        name, data = ("table_paused", {"reason": reason}) if paused else ("table_resumed", {})
        publish_on_commit(
            using=alias,
            team_id=team_id,
            event=protocol.event(name, version=room.version, data=data),
        )
        return room.version


def team_table_copy(*, team_id: int, source: str, target: str) -> None:
    """Copy the team's rounds (same ids), votes and table from ``source`` to ``target`` (rows
    already there are kept; the copy of the table stays paused); call inside a transaction on
    ``target``, after the team's stories were copied."""
    rounds = list(Round.objects.using(source).filter(team_id=team_id))
    Round.objects.using(target).bulk_create(rounds, ignore_conflicts=True)
    votes = list(Vote.objects.using(source).filter(team_id=team_id))
    for vote in votes:
        vote.pk = None  # votes are keyed by (round, user); the target numbers its own rows
    Vote.objects.using(target).bulk_create(votes, ignore_conflicts=True)
    room = Room.objects.using(source).get(team_id=team_id)
    Room.objects.using(target).update_or_create(
        team_id=team_id,
        defaults={
            "deck": room.deck,
            "current_round_id": room.current_round_id,
            "version": room.version,
            "paused": True,
            "auto_reveal": room.auto_reveal,
            "not_voting": room.not_voting,
        },
    )


def team_table_delete(*, team_id: int, alias: str) -> None:
    """Delete the team's votes, table, rounds and sockets' presence on ``alias``."""
    Vote.objects.using(alias).filter(team_id=team_id).delete()
    Room.objects.using(alias).filter(team_id=team_id).delete()
    Round.objects.using(alias).filter(team_id=team_id).delete()
    Presence.objects.using(alias).filter(team_id=team_id).delete()


def team_copies_delete(
    *, team_id: int, aliases: list[str], round_ids: list[Any] | None = None
) -> int:
    """Delete the copies of the team's rounds (all, or ``round_ids``) held on ``aliases``;
    returns how many were deleted."""
    deleted = 0
    for alias in aliases:
        with shard_scope(alias):
            copies = RoundReplica.objects.using(alias).filter(team_id=team_id)
            if round_ids is not None:
                copies = copies.filter(id__in=round_ids)
            deleted += copies.delete()[0]
    return deleted


# --- copies of finished rounds in other regions (replication delivers them) ----------------


def round_copy_payload(round_: Round) -> dict[str, Any]:
    """Everything a copy holds, as JSON-able values (the copy task and the checksum use it)."""
    story = round_.story
    votes: list[dict[str, Any]] = sorted(
        ({"user_id": v.user_id, "value": v.value} for v in round_.votes.all()),
        key=lambda v: v["user_id"],
    )

    def stamp(value):
        return value.isoformat() if value else None

    return {
        "id": str(round_.pk),
        "team_id": round_.team_id,
        "version": round_.version,
        "origin_updated_at": stamp(round_.updated_at),
        "story_id": str(round_.story_id) if round_.story_id else None,
        "story_title": story.title if story else "",
        "story_external_key": story.external_key if story else "",
        "title": round_.title,
        "deck": round_.deck,
        "status": round_.status,
        "stats": round_.stats,
        "estimate": round_.estimate,
        "votes": votes,
        "started_at": stamp(round_.started_at),
        "revealed_at": stamp(round_.revealed_at),
        "accepted_at": stamp(round_.accepted_at),
    }


def is_newer(incoming: tuple, current: tuple) -> bool:
    """Conflict rule: the higher version wins; on equal versions the later origin timestamp."""
    return incoming > current


def round_copy_apply(*, alias: str, payload: dict[str, Any], home_region: str) -> bool:
    """Upsert a copy on ``alias`` unless it already holds this version or a newer one.

    Returns whether the copy changed. Safe to repeat and to run concurrently.
    """
    updated_at = parse_datetime(payload["origin_updated_at"])
    incoming = (payload["version"], updated_at)
    now = timezone.now()
    values = {
        "team_id": payload["team_id"],
        "home_region": home_region,
        "version": payload["version"],
        "origin_updated_at": updated_at,
        "story_id": payload["story_id"],
        "story_title": payload["story_title"],
        "story_external_key": payload["story_external_key"],
        "title": payload["title"],
        "deck": payload["deck"],
        "status": payload["status"],
        "stats": payload["stats"],
        "estimate": payload["estimate"],
        "votes": payload["votes"],
        "started_at": parse_datetime(payload["started_at"]),
        "revealed_at": parse_datetime(payload["revealed_at"]) if payload["revealed_at"] else None,
        "accepted_at": parse_datetime(payload["accepted_at"]) if payload["accepted_at"] else None,
        "applied_at": now,
        "lag_seconds": max(0.0, (now - updated_at).total_seconds()),
    }
    replicas = RoundReplica.objects.using(alias)
    with shard_scope(alias):
        for _ in range(3):
            with transaction.atomic(using=alias):
                current = replicas.select_for_update().filter(pk=payload["id"]).first()
                if current is not None:
                    if not is_newer(incoming, (current.version, current.origin_updated_at)):
                        return False
                    replicas.filter(pk=current.pk).update(**values)
                    return True
                try:
                    with transaction.atomic(using=alias):
                        replicas.create(id=uuid.UUID(payload["id"]), **values)
                    return True
                except IntegrityError:
                    continue  # another copy inserted it first: compare again
    raise RuntimeError(f"could not apply a copy of round {payload['id']}")


# --- what other apps' events change at the table (subscribed in rooms.apps) ----------------


def on_backlog_changed(changes: list[events.Event]) -> None:
    """A story was created, edited, deleted or moved: every open table gets the new backlog,
    as a versioned table event in the same transaction (a paused table refuses the change)."""
    for team in {event.team.pk: event.team for event in changes}.values():
        room_touch(team=team, name="backlog_changed", data={"backlog": backlog_payload(team=team)})


def on_membership_changed(changes: list[events.Event]) -> None:
    """A member joined, changed role or left: their sockets learn it once the directory's
    transaction commits (a removed member's sockets close)."""
    for event in changes:
        publish_on_commit(
            using="default",
            team_id=event.team.pk,
            event=protocol.event("members_changed", version=0, data=dict(event.data)),
        )
        # A new role (or a member gone) may complete the round: look once the directory commits.
        transaction.on_commit(partial(_auto_reveal_after, event.team), using="default")


def on_team_renamed(changes: list[events.Event]) -> None:
    """A team's new name reaches its open tables once the directory commits (the snapshot has
    it too, for a socket that connects later)."""
    for event in changes:
        team = event.team
        publish_on_commit(
            using="default",
            team_id=team.pk,
            event=protocol.event(
                "team_renamed",
                version=0,
                data={"team": {"id": team.pk, "slug": team.slug, "name": event.data["name"]}},
            ),
        )


def _auto_reveal_after(team: Team) -> None:
    # After another transaction's commit: what fails here must not surface in its caller.
    try:
        room_auto_reveal(team=team)
    except Exception:
        logger.exception("auto-reveal check of team %s failed", team.pk)


def session_tag(session_key: str | None) -> str | None:
    """What names a session in events and frames: a digest of its key, never the key itself
    (the cookie keeps the key from the page's scripts)."""
    if not session_key:
        return None
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def sessions_end(*, user_id: int, reason: str, session_key: str | None = None) -> None:
    """Close the user's open sockets at every table (only those of ``session_key`` when given)
    once the directory's transaction commits."""
    event = protocol.event(
        "session_ended",
        version=0,
        data={"user_id": user_id, "reason": reason, "session": session_tag(session_key)},
    )
    for team_id in Membership.objects.filter(user_id=user_id).values_list("team_id", flat=True):
        publish_on_commit(using="default", team_id=team_id, event=event)


def on_user_logged_out(sender: type, request: Any, user: Any, **kwargs: Any) -> None:
    """Django's ``user_logged_out``: the sockets of the session that logged out close."""
    if user is None or user.pk is None:
        return
    session = getattr(request, "session", None)
    sessions_end(
        user_id=user.pk,
        reason=protocol.SESSION_LOGGED_OUT,
        session_key=getattr(session, "session_key", None),
    )


# The user's password hash and is_active as stored, read before a save that may change them.
_BEFORE_SAVE = "_rooms_password_and_active"


def on_user_saving(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """``pre_save`` of the user model: remember the stored password hash and ``is_active``,
    unless the save cannot change them (a new user, a fixture, ``update_fields`` without
    them, as the save of ``last_login`` at every login)."""
    if raw or instance._state.adding or instance.pk is None:
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not {"password", "is_active"}.intersection(update_fields):
        return
    stored = (
        sender._default_manager.using(kwargs.get("using") or "default")
        .filter(pk=instance.pk)
        .values_list("password", "is_active")
        .first()
    )
    instance.__dict__[_BEFORE_SAVE] = stored


def on_user_saved(sender: type, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """``post_save`` of the user model: a deactivated user's sockets close, and so do those of
    a user whose password hash changed (whatever changed it: the password form, the admin,
    ``changepassword``), as Django then ends every session the old hash signed."""
    stored = instance.__dict__.pop(_BEFORE_SAVE, None)
    if created or stored is None:
        return
    password, was_active = stored
    if was_active and not instance.is_active:
        reason = protocol.SESSION_DEACTIVATED
    elif password != instance.password:
        reason = protocol.SESSION_PASSWORD_CHANGED
    else:
        return
    sessions_end(user_id=instance.pk, reason=reason)


def on_team_created(created: list[events.Event]) -> None:
    """Make the team's table on its home shard."""
    for event in created:
        team = event.team
        with shard_scope(team.shard):
            Room.objects.using(team.shard).get_or_create(team_id=team.pk)


def on_team_deleted(deleted: list[events.Event]) -> None:
    """Delete the team's rounds, votes, table and presence at home, and its copies everywhere."""
    for event in deleted:
        team = event.team
        with shard_scope(team.shard), transaction.atomic(using=team.shard):
            team_table_delete(team_id=team.pk, alias=team.shard)
        team_copies_delete(team_id=team.pk, aliases=registry.shard_aliases())
