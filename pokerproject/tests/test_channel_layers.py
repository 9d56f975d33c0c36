"""The channel layers against a real Redis: the cluster's (pokerproject.channel_layers) sends a
batch that reaches another worker's subscribers, complete and in order; the layer the settings
build keeps an idle socket's receive alive across Redis' blocking pops."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from pokerproject.channel_layers import PubSubChannelLayer

REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="needs Redis (REDIS_URL), as CI's PostgreSQL run provides"
)


def layer(prefix: str) -> PubSubChannelLayer:
    return PubSubChannelLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)


async def receive_all(receiver, channel: str, count: int) -> list[dict]:
    return [await asyncio.wait_for(receiver.receive(channel), 5) for _ in range(count)]


async def test_a_batch_reaches_the_subscribers_of_each_group_in_order():
    prefix = f"layer-test-{uuid.uuid4().hex[:8]}"
    sender, receiver = layer(prefix), layer(prefix)
    try:
        red, blue = await receiver.new_channel(), await receiver.new_channel()
        await receiver.group_add("team.1", red)
        await receiver.group_add("team.2", blue)
        batch = [
            ("team.1", {"type": "team.event", "n": 1}),
            ("team.2", {"type": "team.event", "n": 2}),
            ("team.1", {"type": "team.event", "n": 3}),
            ("team.3", {"type": "team.event", "n": 4}),  # nobody at this table
            ("team.1", {"type": "team.event", "n": 5}),
        ]
        await sender.group_send_many(batch)
        await sender.group_send("team.2", {"type": "team.event", "n": 6})

        assert [m["n"] for m in await receive_all(receiver, red, 3)] == [1, 3, 5]
        assert [m["n"] for m in await receive_all(receiver, blue, 2)] == [2, 6]
        # Nothing else arrives: team.3's message went to no one here.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receiver.receive(red), 0.3)
    finally:
        await sender.flush()
        await receiver.flush()


async def test_another_prefix_does_not_hear_the_batch():
    sender = layer(f"layer-test-{uuid.uuid4().hex[:8]}")
    receiver = layer(f"layer-test-{uuid.uuid4().hex[:8]}")
    try:
        channel = await receiver.new_channel()
        await receiver.group_add("team.1", channel)
        await sender.group_send_many([("team.1", {"type": "team.event", "n": 1})])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receiver.receive(channel), 0.3)
    finally:
        await sender.flush()
        await receiver.flush()


def test_layer_reads_outlast_the_blocking_pop():
    """A read that times out with the pop races it; the settings give reads the longer wait."""
    for host in settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]:
        assert host["socket_timeout"] > RedisChannelLayer.brpop_timeout


async def test_idle_receives_live_through_a_whole_blocking_pop():
    """Sockets that hear nothing for longer than one BZPOPMIN still get the next event.

    With redis-py 8's default read timeout (5 s, the pop's own length) some of these receives
    raise ``redis.exceptions.TimeoutError`` instead, which closes a socket at the table.
    """
    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer)
    channels = [await layer.new_channel() for _ in range(20)]
    receives = [asyncio.ensure_future(layer.receive(channel)) for channel in channels]
    try:
        await asyncio.sleep(RedisChannelLayer.brpop_timeout + 0.5)
        for n, channel in enumerate(channels):
            await layer.send(channel, {"type": "team.event", "n": n})
        received = await asyncio.wait_for(asyncio.gather(*receives), 5)
        assert [message["n"] for message in received] == list(range(20))
    finally:
        for receive in receives:
            receive.cancel()
        await layer.flush()
