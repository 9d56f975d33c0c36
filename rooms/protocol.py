"""The live table's WebSocket protocol: envelopes, commands, events and error codes.

Documented in docs/protocol.md. Client frames are JSON objects::

    {"type": "cast_vote", "request_id": "r7", "data": {"value": "5"}}

Server frames are events ``{"type": "vote_cast", "version": 12, "data": {...}}``, the ``ack`` of a
command ``{"type": "ack", "request_id": "r7", "version": 12, "data": {...}}`` or an ``error``
``{"type": "error", "request_id": "r7", "code": "not_in_deck", "message": "..."}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from accounts.roles import Action
from pokerproject.errors import gettext_noop, translated

# --- Commands (client -> server) ---------------------------------------------------------------

Fields = dict[str, tuple[type, bool]]


@dataclass(frozen=True)
class CommandSpec:
    """One socket command: its fields (name -> (type, required)), the action the member's role
    must allow (None: anyone at the table), and the consumer's handler (``do_<name>``)."""

    fields: Fields
    action: Action | None
    handler: str


def _command(action: Action | None = None, **fields: tuple[type, bool]) -> CommandSpec:
    return CommandSpec(fields=dict(fields), action=action, handler="")


# The one registry of socket commands: parsing, the role check and dispatch all read it.
COMMANDS: dict[str, CommandSpec] = {
    name: CommandSpec(spec.fields, spec.action, f"do_{name}")
    for name, spec in {
        "get_snapshot": _command(),
        "ping": _command(),
        "start_round": _command(Action.START_ROUND, story_id=(str, False), title=(str, False)),
        "next_story": _command(Action.START_ROUND),
        "cast_vote": _command(Action.CAST_VOTE, value=(str, True)),
        "withdraw_vote": _command(Action.CAST_VOTE),
        "reveal_cards": _command(Action.REVEAL),
        "restart_round": _command(Action.RESTART),
        "accept_estimate": _command(Action.ACCEPT, value=(str, True), next=(bool, False)),
        "set_deck": _command(Action.SET_DECK, deck=(str, True)),
        "end_session": _command(Action.END_SESSION),
        "set_auto_reveal": _command(Action.RUN_TABLE, enabled=(bool, True)),
        # One's own seat (anyone), or another member's (the service checks RUN_TABLE).
        "set_voting": _command(voting=(bool, True), user_id=(int, False)),
        "start_timer": _command(Action.RUN_TABLE, seconds=(int, False), auto_reveal=(bool, False)),
        "extend_timer": _command(Action.RUN_TABLE, seconds=(int, False)),
        "stop_timer": _command(Action.RUN_TABLE),
        "remove_member": _command(Action.MANAGE_MEMBERS, user_id=(int, True)),
        "set_role": _command(Action.MANAGE_MEMBERS, user_id=(int, True), role=(str, True)),
    }.items()
}

# --- Events (server -> clients): name -> keys required in ``data`` ----------------------------

EVENTS: dict[str, frozenset[str]] = {
    "snapshot": frozenset(
        {"team", "me", "deck", "decks", "participants", "round", "my_vote", "backlog"}
        | {"settings"}
    ),
    "presence_changed": frozenset({"participants"}),
    "round_started": frozenset({"round"}),
    "vote_cast": frozenset({"user_id"}),
    "vote_withdrawn": frozenset({"user_id"}),
    "cards_revealed": frozenset({"round"}),
    "estimate_accepted": frozenset({"round_id", "story_id", "estimate"}),
    # The table's deck and every deck the team may choose (after a choice or a deck's change).
    "deck_changed": frozenset({"deck", "decks"}),
    "backlog_changed": frozenset({"backlog"}),
    "members_changed": frozenset({"user_id", "role"}),
    "team_renamed": frozenset({"team"}),
    "table_settings_changed": frozenset({"auto_reveal", "timer_default_seconds"}),
    "voting_changed": frozenset({"user_id", "voting"}),
    "timer_changed": frozenset({"round_id", "timer"}),
    "table_paused": frozenset({"reason"}),
    "table_resumed": frozenset(),
    # The facilitator ended the estimation session (rooms.services.table_session_end).
    "table_session_ended": frozenset({"ended_at", "ended_by"}),
    # To the sockets of ``user_id`` only (of the one session ``session`` names, or all of them
    # when it is null), which then close with CLOSE_UNAUTHENTICATED.
    "session_ended": frozenset({"user_id", "reason", "session"}),
}
# Events that do not change the table's version (presence is not part of the durable state; a
# pause is not a change of the table).
UNVERSIONED_EVENTS = frozenset(
    {
        "snapshot",
        "presence_changed",
        "members_changed",
        "team_renamed",
        "table_paused",
        "table_resumed",
        "session_ended",
    }
)

# Why a member's sessions ended (``session_ended``'s ``reason``).
SESSION_LOGGED_OUT = "logged_out"
SESSION_PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a password
SESSION_DEACTIVATED = "deactivated"

# Keys a vote value may never appear under in a frame to anyone but its voter before reveal.
SECRET_KEYS = frozenset({"value", "my_vote"})

# --- Errors -----------------------------------------------------------------------------------

# The default message of each code, English source text (the socket sends it in the socket's
# language: ``error``). The codes are the contract; the texts are for people.
ERROR_CODES = {
    "bad_json": gettext_noop("The frame is not valid JSON."),
    "bad_frame": gettext_noop("The frame must be a JSON object with a string 'type'."),
    "frame_too_large": gettext_noop("The frame is larger than the server accepts."),
    "rate_limited": gettext_noop("Too many frames: slow down."),
    "unknown_command": gettext_noop("No such command."),
    "invalid": gettext_noop("A field is missing or has the wrong type."),
    "forbidden": gettext_noop("Your role does not allow this."),
    "not_in_deck": gettext_noop("That card is not in the room's deck."),
    "unknown_deck": gettext_noop("No such deck."),
    "invalid_deck": gettext_noop("The deck is not valid."),
    "unknown_story": gettext_noop("No such story in this team's backlog."),
    "no_active_round": gettext_noop("No round is being played."),
    "round_not_voting": gettext_noop("Votes are closed."),
    "round_not_revealed": gettext_noop("Reveal the cards first."),
    "round_in_progress": gettext_noop("A round is being played."),
    "invalid_estimate": gettext_noop("The estimate is empty or too long."),
    "backlog_done": gettext_noop("Every story in the backlog has an estimate."),
    "not_voting": gettext_noop("You sit this round out: turn voting back on first."),
    "invalid_timer": gettext_noop("The timer's length is out of range."),
    "no_timer": gettext_noop("No timer is running."),
    "unknown_member": gettext_noop("No such member in this team."),
    "invalid_role": gettext_noop("No such role."),
    "last_facilitator": gettext_noop("A team needs at least one facilitator."),
    "paused": gettext_noop("The table is paused while the team moves; try again shortly."),
    "moved": gettext_noop("The team has moved; reconnect."),
    "shard_unavailable": gettext_noop(
        "The team's database cannot be reached; nothing was changed. Retry shortly."
    ),
    "internal": gettext_noop("Something went wrong on the server; nothing was changed."),
}

# Application close codes (4000-4999 are ours by RFC 6455).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
# A socket that went on sending after ROOM_RATE_LIMIT_CLOSE_AFTER refused frames in a row.
CLOSE_TOO_MANY_FRAMES = 4429
# RFC 6455's "try again later": the team's database cannot be reached (after a
# ``shard_unavailable`` error frame); the client reconnects with back-off.
CLOSE_TRY_AGAIN = 1013


class ProtocolError(Exception):
    """A frame refused with ``code``; ``request_id`` is the frame's, once it has been read."""

    def __init__(
        self, code: str, message: str | None = None, *, request_id: str | int | None = None
    ) -> None:
        assert code in ERROR_CODES, code  # noqa: S101 - a programming error, caught in tests
        super().__init__(message or ERROR_CODES[code])
        self.code = code
        # A message of its own (which field was wrong: for whoever writes a client) or None:
        # the code's text, translated when it is sent.
        self.detail = message
        self.request_id = request_id


@dataclass(frozen=True)
class Command:
    name: str
    request_id: str | int | None
    data: dict[str, Any]


def _unsendable(value: str) -> bool:
    """Whether ``value`` holds a NUL (no database column takes it) or a lone surrogate (no
    UTF-8 frame or database can carry it)."""
    if "\x00" in value:
        return True
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_command(text: str | None) -> Command:
    """Validate one client frame; raise ProtocolError with the code to answer (and the frame's
    ``request_id`` once it is known to be one that can be echoed)."""
    if text is None:
        raise ProtocolError("bad_frame", "Frames must be text.")
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json") from None
    if not isinstance(frame, dict):
        raise ProtocolError("bad_frame")
    # A NUL or a surrogate can reach a string only through a \u escape (the server decodes
    # frames as strict UTF-8, and JSON forbids raw control characters in strings), so frames
    # without one, nearly all of them, skip the closer look at their strings.
    escaped = "\\u" in text
    request_id = frame.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str | int) or isinstance(request_id, bool)
    ):
        raise ProtocolError("invalid", "request_id must be a string or an integer.")
    if isinstance(request_id, str):
        if len(request_id) > 64:
            raise ProtocolError("invalid", "request_id is longer than 64 characters.")
        if escaped and _unsendable(request_id):
            raise ProtocolError("invalid", "request_id holds a NUL or a lone surrogate.")
    try:
        return _parse_body(frame, request_id, escaped)
    except ProtocolError as exc:
        exc.request_id = request_id
        raise


def _parse_body(frame: dict, request_id: str | int | None, escaped: bool) -> Command:
    if not isinstance(frame.get("type"), str):
        raise ProtocolError("bad_frame")
    name = frame["type"]
    spec = COMMANDS.get(name)
    if spec is None:
        raise ProtocolError("unknown_command", f"No such command: {name[:40]!r}.")
    data = frame.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProtocolError("invalid", "data must be an object.")
    clean: dict[str, Any] = {}
    for field, (kind, required) in spec.fields.items():
        if field not in data or data[field] is None:
            if required:
                raise ProtocolError("invalid", f"{field} is required.")
            continue
        value = data[field]
        # bool is an int in Python; a card or an id must not be true/false.
        if isinstance(value, bool) and kind is not bool:
            raise ProtocolError("invalid", f"{field} has the wrong type.")
        if not isinstance(value, kind):
            raise ProtocolError("invalid", f"{field} has the wrong type.")
        if isinstance(value, str):
            if len(value) > 200:
                raise ProtocolError("invalid", f"{field} is too long.")
            if escaped and _unsendable(value):
                raise ProtocolError("invalid", f"{field} holds a NUL or a lone surrogate.")
        clean[field] = value
    unknown = set(data) - set(spec.fields)
    if unknown:
        raise ProtocolError("invalid", f"Unknown field {sorted(unknown)[0][:40]!r}.")
    return Command(name=name, request_id=request_id, data=clean)


def event(name: str, *, version: int, data: dict[str, Any]) -> dict[str, Any]:
    frame = {"type": name, "version": version, "data": data}
    check_event(frame)
    return frame


def check_event(frame: dict[str, Any]) -> None:
    """Fail loudly if a service emits an event the protocol does not define."""
    name = frame.get("type")
    if name not in EVENTS:
        raise ValueError(f"undeclared event {name!r}")
    version = frame.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"event {name!r} has no integer version")
    missing = EVENTS[name] - set(frame.get("data", {}))
    if missing:
        raise ValueError(f"event {name!r} lacks {sorted(missing)}")


def ack(request_id: str | int | None, *, version: int, data: dict[str, Any] | None = None) -> dict:
    return {"type": "ack", "request_id": request_id, "version": version, "data": data or {}}


def error(request_id: str | int | None, code: str, message: str | None = None) -> dict:
    if code not in ERROR_CODES:
        code = "internal"
    return {
        "type": "error",
        "request_id": request_id,
        "code": code,
        "message": message or translated(ERROR_CODES[code]),
    }
