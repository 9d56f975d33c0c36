"""The one way table events reach sockets: published once the transaction that made them commits.

Services call ``publish_on_commit(using=alias, team_id=..., event=...)`` inside their
transaction (or right after a batch's own commit, when none is open). On commit the event is
either handed back to the socket that asked for the change, through ``collect()`` (the
transport then publishes everything the call committed in one go from its event loop: see
rooms.realtime.dbpool.call), or, for every other door (REST, pages, admin, commands, tasks),
sent at once. A rolled-back transaction publishes nothing.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from pokerproject import metrics, tracing
from rooms import protocol

logger = logging.getLogger(__name__)

# Channel-layer message type; each worker's fan-out (rooms.realtime.fanout) hands it to
# RoomConsumer.team_event.
TEAM_EVENT = "team.event"

# Events a socket acts on besides forwarding them (RoomConsumer._relay): their messages also
# carry the event itself.
READ_EVENTS = frozenset({"members_changed", "table_resumed", "session_ended", "timer_changed"})


class Frames(list[tuple[int, dict]]):
    """``(team_id, event)`` pairs committed inside ``collect()``, and when the first of them
    committed (wall clock): the delivery latency metric starts there (pokerproject.metrics)."""

    committed_at: float = 0.0


# Set by ``collect()`` around a call on the socket's database thread.
_collected: contextvars.ContextVar[Frames | None] = contextvars.ContextVar(
    "rooms_broadcast_collected", default=None
)


def group_name(team_id: int) -> str:
    """The channel-layer group of a team's table: ASCII, short, stable."""
    return f"team.{int(team_id)}"


def encode(event: dict) -> str:
    """The event as the text frame every socket of the team receives."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def team_message(team_id: int, event: dict, committed_at: float = 0.0) -> dict:
    """The channel-layer message for ``event``: its group (the fan-out hands it to that table's
    sockets), its kind, and its frame serialised once here so each of the team's sockets
    forwards the same text instead of encoding it again. Only READ_EVENTS carry the event as
    well: the layer packs and unpacks every key, and a ``cards_revealed`` event costs it 15 µs
    against 2 for its frame alone (docs/performance.md, round 9). ``at``: when the change
    committed (wall clock), for the delivery latency each worker measures."""
    kind = event["type"]
    message = {
        "type": TEAM_EVENT,
        "group": group_name(team_id),
        "kind": kind,
        "text": encode(event),
        "at": committed_at or time.time(),
    }
    if kind in READ_EVENTS:
        message["event"] = event
    return message


def publish_on_commit(*, using: str, team_id: int, event: dict) -> None:
    """Publish ``event`` to every socket of the team once the transaction on ``using`` commits
    (at once when no transaction is open: a batch calls it after its own commit)."""
    protocol.check_event(event)
    transaction.on_commit(partial(_committed, team_id, event), using=using)


def _committed(team_id: int, event: dict) -> None:
    collected = _collected.get()
    if collected is not None:
        collected.committed_at = collected.committed_at or time.time()
        collected.append((team_id, event))
    else:
        _send_now(team_id, event)


@contextmanager
def collect() -> Iterator[Frames]:
    """Hand the events committed inside the block to the caller instead of sending them."""
    frames = Frames()
    token = _collected.set(frames)
    try:
        yield frames
    finally:
        _collected.reset(token)


def _send_now(team_id: int, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - settings always define a layer
        return
    try:
        async_to_sync(layer.group_send)(group_name(team_id), team_message(team_id, event))
    except Exception:
        # The change is committed; clients that miss this event catch up from the version gap.
        logger.exception("broadcast of %s to team %s failed", event.get("type"), team_id)


async def publish(frames: Frames) -> None:
    """Send committed ``(team_id, event)`` pairs, in order, from the event loop: in one go where
    the layer can (pokerproject.channel_layers), else one at a time."""
    if not frames:
        return
    with tracing.span("broadcast", {"poker.events": len(frames)}):
        await _publish(frames)


async def _publish(frames: Frames) -> None:
    layer = get_channel_layer()
    at = getattr(frames, "committed_at", 0.0)
    messages = [
        (group_name(team_id), team_message(team_id, event, at)) for team_id, event in frames
    ]
    many = getattr(layer, "group_send_many", None)
    if many is not None:
        try:
            async with metrics.publishing():
                await many(messages)
        except Exception:
            # Committed; clients that miss these events catch up from the version gap.
            logger.exception("broadcast of a batch of %d events failed", len(messages))
        return
    for (team_id, event), (group, message) in zip(frames, messages, strict=True):
        try:
            async with metrics.publishing():
                await layer.group_send(group, message)
        except Exception:
            logger.exception("broadcast of %s to team %s failed", event.get("type"), team_id)
