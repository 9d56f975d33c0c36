"""The worker-local fan-out (rooms.realtime.fanout) through the configured channel layer: each
event once to each seat of its table, in order, nothing to other tables or to seats that left,
and one seat's failure or slow handler is not its neighbours' problem. End to end (real sockets,
several workers) it is exercised by test_consumers.py and tests/cluster."""

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer

from rooms.broadcast import TEAM_EVENT
from rooms.realtime.fanout import Fanout

pytestmark = pytest.mark.asyncio


class Seat:
    def __init__(self, *, fail: bool = False, hold: asyncio.Event | None = None) -> None:
        self.got: list[int] = []
        self.fail, self.hold = fail, hold
        self.arrived = asyncio.Event()

    async def team_event(self, message: dict) -> None:
        self.got.append(message["n"])
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise RuntimeError("socket gone")


def group() -> str:
    return f"test.fanout.{uuid.uuid4().hex[:12]}"


async def send(layer, name: str, n: int, kind: str = "vote_cast") -> None:
    await layer.group_send(
        name, {"type": TEAM_EVENT, "group": name, "kind": kind, "n": n, "text": ""}
    )


async def settle(*seats: Seat, count: int) -> None:
    async with asyncio.timeout(5):
        while any(len(seat.got) < count for seat in seats):  # noqa: ASYNC110 (a test's poll)
            await asyncio.sleep(0.01)


async def stop(fanout: Fanout) -> None:
    for name in list(fanout.seats):
        for seat in list(fanout.seats[name]):
            await fanout.leave(name, seat)
    fanout.reader.cancel()


async def test_each_seat_gets_its_tables_events_once_and_in_order():
    layer = get_channel_layer()
    fanout = Fanout(layer)
    a, b = group(), group()
    a1, a2, b1 = Seat(), Seat(), Seat()
    await fanout.join(a, a1)
    await fanout.join(a, a2)
    await fanout.join(b, b1)
    for n in range(6):
        await send(layer, a, n)
    await send(layer, b, 100)
    await settle(a1, a2, count=6)
    await settle(b1, count=1)
    await asyncio.sleep(0.1)  # nothing more is on its way
    assert a1.got == a2.got == [0, 1, 2, 3, 4, 5]
    assert b1.got == [100]
    await stop(fanout)


async def test_a_seat_that_left_gets_nothing_and_the_table_can_fill_again():
    layer = get_channel_layer()
    fanout = Fanout(layer)
    a = group()
    first, second, later = Seat(), Seat(), Seat()
    await fanout.join(a, first)
    await fanout.join(a, second)
    await fanout.leave(a, first)
    await send(layer, a, 1)
    await settle(second, count=1)
    await fanout.leave(a, second)  # the last seat: the worker leaves the group
    assert a not in fanout.seats
    await send(layer, a, 2)
    await fanout.join(a, later)
    await send(layer, a, 3)
    await settle(later, count=1)
    await asyncio.sleep(0.1)
    assert first.got == []
    assert second.got == [1]
    assert later.got == [3]
    await stop(fanout)


async def test_one_failing_seat_does_not_stop_its_teammates(caplog):
    """A seat whose delivery fails is dropped: logged once, and later events skip it."""
    layer = get_channel_layer()
    fanout = Fanout(layer)
    a = group()
    broken, fine = Seat(fail=True), Seat()
    await fanout.join(a, broken)
    await fanout.join(a, fine)
    for n in (1, 2, 3):
        await send(layer, a, n)
    await settle(fine, count=3)
    await asyncio.sleep(0.1)
    assert fine.got == [1, 2, 3]
    assert broken.got == [1]
    assert fanout.seats[a] == {fine}
    failures = [r for r in caplog.records if "delivering vote_cast" in r.getMessage()]
    assert len(failures) == 1
    await stop(fanout)


async def test_a_failing_slow_handler_drops_its_seat_only():
    layer = get_channel_layer()
    fanout = Fanout(layer)
    a = group()
    broken, fine = Seat(fail=True), Seat()
    await fanout.join(a, broken)
    await fanout.join(a, fine)
    await send(layer, a, 1, kind="table_resumed")
    await settle(fine, broken, count=1)
    async with asyncio.timeout(5):
        while broken in fanout.seats[a]:  # noqa: ASYNC110 (a test's poll)
            await asyncio.sleep(0.01)
    assert fanout.seats[a] == {fine}
    await stop(fanout)


async def test_a_slow_handler_does_not_hold_up_the_other_tables():
    layer = get_channel_layer()
    fanout = Fanout(layer)
    moving, other = group(), group()
    release = asyncio.Event()
    reloading, neighbour = Seat(hold=release), Seat()
    await fanout.join(moving, reloading)
    await fanout.join(other, neighbour)
    await send(layer, moving, 1, kind="table_resumed")  # its handler reads the database
    await send(layer, other, 2)
    await settle(neighbour, count=1)
    assert reloading.got == [1]  # started, and still waiting
    assert not release.is_set()
    release.set()
    await stop(fanout)
