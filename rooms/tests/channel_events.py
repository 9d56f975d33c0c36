"""Listen to a team's group on the real channel layer, as a socket at the table would.

Services broadcast through ``rooms.broadcast`` after commit; a test subscribes a channel to the
team's group first, runs the service inside ``django_capture_on_commit_callbacks(execute=True)``
and then reads what every socket of the team would have received. Each event read is checked
against ``rooms/protocol.py``.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from rooms import protocol
from rooms.broadcast import READ_EVENTS, TEAM_EVENT, group_name

# Events are already in the layer when the service returns (on_commit sends synchronously), so
# this only bounds how long an empty channel is watched before the test goes on. The in-memory
# layer delivers within the process at once; Redis gets a round trip's worth of slack.
DRAIN_TIMEOUT = {"in_memory": 0.01, "other": 0.1}


class TeamChannel:
    """A channel in the group ``team.<id>`` that collects the events broadcast to the team."""

    def __init__(self, team_id: int) -> None:
        self.group = group_name(team_id)
        self.channel = ""
        self._subscribe()

    def _subscribe(self) -> None:
        layer = get_channel_layer()
        self.channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(self.group, self.channel)

    def close(self) -> None:
        async_to_sync(get_channel_layer().group_discard)(self.group, self.channel)

    def events(self) -> list[dict]:
        """Every event delivered since the last call, in order, each valid per the protocol."""
        layer = get_channel_layer()
        timeout = DRAIN_TIMEOUT["in_memory" if isinstance(layer, InMemoryChannelLayer) else "other"]

        async def drain() -> list[dict]:
            received = []
            while True:
                try:
                    message = await asyncio.wait_for(layer.receive(self.channel), timeout)
                except TimeoutError:
                    return received
                received.append(message)

        messages = async_to_sync(drain)()
        # A channel that has waited in one event loop is not reused from another: start afresh.
        self.close()
        self._subscribe()
        events = []
        for message in messages:
            assert message["type"] == TEAM_EVENT
            # The frame sockets forward as is; the event itself only where sockets read it.
            event = json.loads(message["text"])
            protocol.check_event(event)
            assert message["kind"] == event["type"]
            assert message.get("event", event) == event
            assert ("event" in message) == (event["type"] in READ_EVENTS)
            events.append(event)
        return events

    def names(self) -> list[str]:
        return [event["type"] for event in self.events()]


@pytest.fixture
def listen():
    """``listen(team)`` subscribes to the team's group; ``.events()`` reads what was broadcast.

    Each test has a fresh channel layer of its own (the root conftest's autouse fixture).
    """
    channels: list[TeamChannel] = []

    def subscribe(team) -> TeamChannel:
        channel = TeamChannel(team.pk)
        channels.append(channel)
        return channel

    yield subscribe
    for channel in channels:
        channel.close()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed(alias):`` runs the on-commit callbacks (the broadcasts) of the block when
    it ends, as a real commit of the test's outer transaction would."""

    def capture(alias: str):
        return django_capture_on_commit_callbacks(using=alias, execute=True)

    return capture
