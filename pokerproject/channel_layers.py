"""The cluster's channel layer: channels_redis' pub/sub layer, with a batch send.

``RedisPubSubChannelLayer.group_send`` publishes one message per round trip, behind a lock
that the shard's subscribes share: a worker's events go out one at a time, and a connect storm
(a subscribe per new table) holds them up. Table events come in batches (rooms.realtime.batching
commits the votes or reveals of a few milliseconds at once), so ``group_send_many`` publishes
a batch in one pipelined round trip per Redis shard (docs/performance.md, round 7).

Messages, channel names and shards are the parent's own (``serialize``,
``_get_group_channel_name``, ``_get_shard``), so receivers are the parent's, unchanged; this
relies on channels-redis internals, which requirements.txt pins, and
pokerproject/tests/test_channel_layers.py checks against a real Redis.
"""

from __future__ import annotations

from collections.abc import Iterable

from channels_redis.pubsub import RedisPubSubChannelLayer


class PubSubChannelLayer(RedisPubSubChannelLayer):
    async def group_send_many(self, messages: Iterable[tuple[str, dict]]) -> None:
        """Publish ``(group, message)`` pairs, in order, one round trip per Redis shard."""
        layer = self._get_layer()
        by_shard: dict = {}
        for group, message in messages:
            channel = layer._get_group_channel_name(group)
            shard = layer._get_shard(channel)
            by_shard.setdefault(shard, []).append((channel, self.serialize(message)))
        for shard, items in by_shard.items():
            shard._ensure_redis()
            async with shard._redis.pipeline(transaction=False) as pipe:
                for channel, data in items:
                    pipe.publish(channel, data)
                await pipe.execute()

    async def group_send(self, group: str, message: dict) -> None:
        await self.group_send_many([(group, message)])
