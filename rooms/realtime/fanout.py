"""Worker-local fan-out of table events: one channel-layer subscription per team and worker.

Channels' usual pattern puts each socket's channel in its team's group, so every event is
queued, woken up for and decoded once per socket: 14 % of a worker's CPU at the benchmark's
knee, ~47 µs a delivery (docs/performance.md, round 5). Here a worker joins a team's group
once, with a channel of its own, receives each event once and hands it to that worker's
sockets at the table in turn.

Per team, events keep the order the layer delivers them in (one reader per worker). A handler
that must reach the database (``table_resumed``) runs on a task of its own, so the worker's
other tables do not wait for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from channels.layers import BaseChannelLayer, get_channel_layer

from pokerproject import logs, metrics
from rooms.realtime.perloop import PerLoop

logger = logging.getLogger(__name__)

# Events whose handler reads the database: served off the shared reader (see module docstring).
SLOW_EVENTS = frozenset({"table_resumed"})


class Seat(Protocol):
    """What the fan-out needs of a socket: RoomConsumer.team_event."""

    async def team_event(self, message: dict) -> None: ...


class Fanout:
    """The team events of one event loop (one worker process)."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.seats: dict[str, set[Seat]] = {}
        # Joins and leaves of the layer's groups happen one at a time, so a leave that empties
        # a table cannot unsubscribe after a join that filled it again.
        self.lock = asyncio.Lock()
        self.reader: asyncio.Task | None = None
        self.slow: set[asyncio.Task] = set()

    async def join(self, group: str, seat: Seat) -> None:
        """Seat ``seat`` at ``group``'s table: it receives every event sent to the group after
        this returns."""
        async with self.lock:
            if self.channel is None:
                # The layer's default kind of channel: the core Redis layer reads all of a
                # process's channels through one shared list, and only for that prefix.
                self.channel = await self.layer.new_channel()
                # Not in the context of the socket that happens to start it: it serves them all.
                self.reader = asyncio.create_task(
                    self._read(), name="rooms.realtime.fanout", context=logs.detached()
                )
            # Added on every join, not only the first: with the core Redis layer this also
            # renews the group's expiry while the table is in use.
            await self.layer.group_add(group, self.channel)
            self.seats.setdefault(group, set()).add(seat)
            metrics.seats(+1, len(self.seats))

    async def leave(self, group: str, seat: Seat) -> None:
        async with self.lock:
            seats = self.seats.get(group)
            if seats is None or seat not in seats:
                return
            seats.discard(seat)
            metrics.seats(-1, len(self.seats) - (not seats))
            if not seats:
                del self.seats[group]
                await self.layer.group_discard(group, self.channel)

    async def _read(self) -> None:
        failing = False
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The layer's own reconnects did not help: keep trying, the sockets stay open
                # and catch up from the version gap when events flow again.
                logger.exception("team events: receiving from the channel layer failed")
                metrics.receive_failed()
                failing = True
                await asyncio.sleep(1)
                continue
            if failing:
                failing = False
                metrics.reconnected()
            await self.deliver(message)

    async def deliver(self, message: dict) -> None:
        """Hand ``message`` to every seat of its group on this worker."""
        slow = message.get("kind") in SLOW_EVENTS
        group = message.get("group", "")
        seats = tuple(self.seats.get(group, ()))
        for seat in seats:
            if slow:
                task = asyncio.create_task(self._serve(group, seat, message))
                self.slow.add(task)
                task.add_done_callback(self.slow.discard)
            else:
                await self._serve(group, seat, message)
        # Once per event and worker, not per frame: the last teammate's frame is written.
        metrics.delivered(message.get("kind", ""), message.get("at"), len(seats))

    async def _serve(self, group: str, seat: Seat, message: dict) -> None:
        try:
            await seat.team_event(message)
        except Exception:
            # One socket's failure (it closed meanwhile, say) is not its teammates'. A seat
            # that failed once is dropped, so a dead socket costs one log line, not one per
            # event; the socket closes itself (RoomConsumer.team_event) and its client
            # reconnects.
            logger.warning(
                "delivering %s to a seat of %s failed; the seat is dropped",
                message.get("kind"),
                group,
                exc_info=True,
            )
            try:
                await self.leave(group, seat)
            except Exception:
                logger.warning("leaving %s failed", group, exc_info=True)


_fanouts: PerLoop[Fanout] = PerLoop(lambda: Fanout(get_channel_layer()))


def current() -> Fanout:
    """This event loop's fan-out, created on first use."""
    return _fanouts.get()
