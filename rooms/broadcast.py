"""The one way state changes reach sockets: after the transaction that made them commits."""

import asyncio
import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from rooms import dbpool, protocol

logger = logging.getLogger(__name__)

# Channel-layer message type; each worker's rooms.fanout hands it to RoomConsumer.team_event.
TEAM_EVENT = "team.event"
# How long a database thread waits for its worker's loop to publish (a loop that is shutting
# down never would).
SEND_TIMEOUT = 10.0


def group_name(team_id: int) -> str:
    """The channel-layer group of a team's table: ASCII, short, stable."""
    return f"team.{int(team_id)}"


def encode(event: dict) -> str:
    """The event as the text frame every socket of the team receives."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


# Events a socket acts on besides forwarding them (RoomConsumer._relay): their messages also
# carry the event itself.
READ_EVENTS = frozenset({"members_changed", "table_resumed"})


def team_message(team_id: int, event: dict) -> dict:
    """The channel-layer message for ``event``: its group (rooms.fanout hands it to that table's
    sockets), its kind, and its frame serialised once here so each of the team's sockets
    forwards the same text instead of encoding it again. Only READ_EVENTS carry the event as
    well: the layer packs and unpacks every key, and a ``cards_revealed`` event costs it 15 µs
    against 2 for its frame alone (docs/performance.md, round 9)."""
    kind = event["type"]
    message = {
        "type": TEAM_EVENT,
        "group": group_name(team_id),
        "kind": kind,
        "text": encode(event),
    }
    if kind in READ_EVENTS:
        message["event"] = event
    return message


def send_now(team_id: int, event: dict) -> None:
    protocol.check_event(event)
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - settings always define a layer
        return
    group, message = group_name(team_id), team_message(team_id, event)
    try:
        loop = dbpool.caller_loop()
        if loop is not None:
            # On a socket's database thread: publish through the worker's own loop and layer
            # connection (async_to_sync would start a loop, and a connection, per event).
            future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
            future.result(timeout=SEND_TIMEOUT)
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:
        # The change is committed; clients that miss this event catch up from the version gap.
        logger.exception("broadcast of %s to team %s failed", event.get("type"), team_id)


async def send_many(events: list[tuple[int, dict]]) -> None:
    """Send committed ``(team_id, event)`` pairs, in order, from the event loop: in one go where
    the layer can (pokerproject.channel_layers), else one at a time."""
    layer = get_channel_layer()
    messages = [(group_name(team_id), team_message(team_id, event)) for team_id, event in events]
    many = getattr(layer, "group_send_many", None)
    if many is not None:
        try:
            await many(messages)
        except Exception:
            # Committed; clients that miss these events catch up from the version gap.
            logger.exception("broadcast of a batch of %d events failed", len(messages))
        return
    for (team_id, event), (group, message) in zip(events, messages, strict=True):
        try:
            await layer.group_send(group, message)
        except Exception:
            logger.exception("broadcast of %s to team %s failed", event.get("type"), team_id)


def broadcast_on_commit(*, using: str, team_id: int, event: dict) -> None:
    """Send ``event`` to every socket of the team once the transaction on ``using`` commits."""
    protocol.check_event(event)
    transaction.on_commit(lambda: send_now(team_id, event), using=using)
