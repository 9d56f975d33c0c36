"""Group commit of votes and reveals: the votes (or reveals) a worker receives within a few
milliseconds are written in one transaction per shard (rooms.services.votes_cast_batch,
rooms.services.rounds_reveal_batch), then the batch's events are published from the event loop
(rooms.realtime.dbpool.call) and each command acknowledged.

Same rules and promises as ``rooms.services.vote_cast`` (it is the same code): a vote is
acknowledged only after its transaction committed, and the team learns only *who* voted. What
changes is the cost: one thread hop and three statements per batch instead of a hop and several
statements per vote (docs/performance.md).

Used from the socket consumer: ``update = await batching.vote_cast(membership=..., value=...)``
and ``update = await batching.round_reveal(membership=...)``. Reveals use the vote batch's
window and size (ROOM_VOTE_BATCH_MS, ROOM_VOTE_BATCH_MAX).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.models import Membership
from pokerproject import logs, metrics, tracing
from pokerproject.regions.availability import ShardUnavailable
from rooms import selectors, services
from rooms.realtime import dbpool
from rooms.realtime.perloop import PerLoop
from rooms.services import TableUpdate

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Pending:
    membership: Membership
    item: object  # what the batch service takes for this command
    future: asyncio.Future
    trace: object = None  # the command's span context, when tracing is on (pokerproject.tracing)


class Batcher:
    """Collects one kind of command of one event loop (one worker) and commits them in batches
    through ``service(alias=..., pending=[item, ...]) -> results`` (each a TableUpdate or the
    error that refused that item; the service checks each item's role like any other door).

    The first command of a batch waits ``window`` seconds for company; while a batch is being
    written, the next one fills up, so batches grow with the load and the wait stays short.
    """

    def __init__(
        self,
        *,
        window: float,
        max_batch: int,
        service: Callable[..., list],
        name: str,
    ) -> None:
        self.window, self.max_batch = window, max_batch
        self.service, self.name = service, name
        self.pending: list[_Pending] = []
        self.task: asyncio.Task | None = None

    async def submit(self, *, membership: Membership, item: object) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.pending.append(_Pending(membership, item, future, tracing.current()))
        if self.task is None:
            # Not in this socket's context (log fields): the batch is every socket's.
            self.task = asyncio.create_task(self._drain(), context=logs.detached())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                if len(self.pending) < self.max_batch:
                    await asyncio.sleep(self.window)
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                by_shard: dict[str, list[_Pending]] = {}
                for item in batch:
                    by_shard.setdefault(item.membership.team.shard, []).append(item)
                for alias, items in by_shard.items():
                    await self._commit(alias, items)
        finally:
            self.task = None

    async def _commit(self, alias: str, items: list[_Pending]) -> None:
        started = time.perf_counter()
        token = dbpool.shard.set(alias)
        try:
            # Committed and published (each event serialised once) when this returns.
            with tracing.batch(self.name, alias, [i.trace for i in items]):
                results = await dbpool.call(
                    self.service, alias=alias, pending=[i.item for i in items]
                )
            metrics.batch(self.name, len(items), started)
        except Exception as exc:  # nothing was committed: every command of the batch fails
            if not isinstance(exc, ShardUnavailable):
                logger.exception("%s batch of %d on %s failed", self.name, len(items), alias)
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            dbpool.shard.reset(token)
        for item, result in zip(items, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, Exception):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)


def _presence_batch(
    *, alias: str, pending: list[tuple[Membership, services.PresenceChange]]
) -> list[dict | Exception | None]:
    """Sockets that opened and closed (rooms.services.presence_batch), and each opened
    socket's snapshot, built from its table as the batch read it: what a snapshot shares with
    its teammates' (decks, backlog, round) is read and built once per table."""
    results = services.presence_batch(alias=alias, pending=[change for _, change in pending])
    shared: dict[int, dict] = {}
    answers: list[dict | Exception | None] = []
    for (membership, _), result in zip(pending, results, strict=True):
        if isinstance(result, selectors.TableState):
            parts = shared.get(membership.team_id)
            if parts is None:
                parts = selectors.snapshot_shared(team=membership.team, state=result)
                shared[membership.team_id] = parts
            answers.append(
                selectors.room_snapshot(membership=membership, state=result, shared=parts)
            )
        else:
            answers.append(result)
    return answers


_batchers: PerLoop[dict[str, Batcher]] = PerLoop(dict)

_KINDS: dict[str, Callable[..., list]] = {
    "vote": services.votes_cast_batch,
    "reveal": services.rounds_reveal_batch,
    # Reads, not writes: every socket's heartbeat asks for its table's version (a few hundred a
    # second with 10,000 sockets), so they share one query per shard like the votes.
    "version": selectors.table_versions,
    # Sockets opening and closing: a burst of reconnects (a worker restarted) or of closes
    # (offices going home) costs one transaction and one presence event per table and batch,
    # not one per socket.
    "presence": _presence_batch,
}


def _batcher(kind: str) -> Batcher:
    """This event loop's batcher of ``kind``, created on first use."""
    batchers = _batchers.get()
    batcher = batchers.get(kind)
    if batcher is None:
        batcher = batchers[kind] = Batcher(
            window=settings.ROOM_VOTE_BATCH_MS / 1000,
            max_batch=settings.ROOM_VOTE_BATCH_MAX,
            service=_KINDS[kind],
            name=kind,
        )
    return batcher


async def vote_cast(*, membership: Membership, value: object) -> TableUpdate:
    """Play a card, or change it, through this worker's batch; returns once committed."""
    return await _batcher("vote").submit(membership=membership, item=(membership, value))


async def table_version(*, membership: Membership) -> int:
    """The member's table's current version, read with this worker's other heartbeats."""
    return await _batcher("version").submit(membership=membership, item=membership)


async def presence_join(*, membership: Membership, channel_name: str) -> dict:
    """Seat a socket at its table (its presence row) with this worker's other joins and leaves;
    returns the socket's snapshot once the row is committed."""
    change = services.PresenceChange(membership.team, channel_name, membership.user_id)
    return await _batcher("presence").submit(membership=membership, item=(membership, change))


async def presence_leave(*, membership: Membership, channel_name: str) -> None:
    """Delete a socket's presence row with this worker's other joins and leaves; returns once
    committed. A leave submitted after its socket's join is written after it."""
    change = services.PresenceChange(membership.team, channel_name)
    await _batcher("presence").submit(membership=membership, item=(membership, change))


async def round_reveal(*, membership: Membership) -> TableUpdate:
    """Turn the cards through this worker's reveal batch; returns once committed and broadcast."""
    started = time.perf_counter()
    update = await _batcher("reveal").submit(membership=membership, item=membership)
    metrics.reveal(started)
    return update
