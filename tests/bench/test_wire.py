"""bench.wire, the generator's socket layer, against a real websockets server on loopback."""

from __future__ import annotations

import asyncio
import http

import pytest
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from bench import run, wire

pytestmark = pytest.mark.timeout(30)


class Server:
    """Behaves by path: /echo, /close, /ping, /fragments; /refuse/<status> refuses the upgrade."""

    def __init__(self) -> None:
        self.headers = Headers()
        self.closed_with: asyncio.Future[int | None] | None = None
        self.pong: asyncio.Future[float] | None = None

    def process_request(self, connection, request):
        if request.path.startswith("/refuse/"):
            status = http.HTTPStatus(int(request.path.rsplit("/", 1)[1]))
            return connection.respond(status, "no\n")
        return None

    async def handle(self, ws) -> None:
        loop = asyncio.get_running_loop()
        self.closed_with = loop.create_future()
        self.headers = ws.request.headers
        path = ws.request.path
        try:
            if path == "/close":
                await ws.close(4403, "forbidden")
                return
            # Sent right after the 101: wire has to hold it until on_text is set.
            await ws.send("hello")
            if path == "/ping":
                self.pong = asyncio.ensure_future(asyncio.wait_for(await ws.ping(), 5))
            elif path == "/fragments":
                await ws.send(["frag", "mented ", "é"])
            async for text in ws:
                await ws.send(f"echo:{text}")
        finally:
            self.closed_with.set_result(ws.close_code)


@pytest.fixture
async def server():
    behaviour = Server()
    port = run.free_port()
    async with serve(
        behaviour.handle, "127.0.0.1", port, process_request=behaviour.process_request
    ):
        behaviour.url = f"ws://127.0.0.1:{port}"
        yield behaviour


def receiver(conn: wire.Connection) -> asyncio.Queue[str]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    conn.on_text = queue.put_nowait
    return queue


async def next_text(queue: asyncio.Queue[str]) -> str:
    return await asyncio.wait_for(queue.get(), 5)


async def test_handshake_and_text_both_ways(server):
    conn = await wire.connect(
        f"{server.url}/echo", origin="http://example.test", headers={"Cookie": "sessionid=abc"}
    )
    assert server.headers["Cookie"] == "sessionid=abc"
    assert server.headers["Origin"] == "http://example.test"
    assert "Sec-WebSocket-Extensions" not in server.headers  # no compression unless asked
    queue = receiver(conn)
    assert await next_text(queue) == "hello"
    conn.send('{"type": "ping", "n": "ü"}')
    conn.send("second")
    assert await next_text(queue) == 'echo:{"type": "ping", "n": "ü"}'
    assert await next_text(queue) == "echo:second"
    assert not conn.closed
    await conn.close()
    assert conn.closed
    assert await asyncio.wait_for(server.closed_with, 5) == 1000
    with pytest.raises(ConnectionClosedOK):  # a wire.ConnectionClosed
        conn.send("after close")


@pytest.mark.parametrize("status", [403, 502])
async def test_a_refused_handshake_raises_with_its_status(server, status):
    with pytest.raises(InvalidStatus) as refused:
        await wire.connect(f"{server.url}/refuse/{status}")
    assert refused.value.response.status_code == status


async def test_no_listener_raises_oserror():
    with pytest.raises(ConnectionRefusedError):
        await wire.connect(f"ws://127.0.0.1:{run.free_port()}/", timeout=5)


async def test_a_silent_server_times_out():
    gone = asyncio.Event()

    async def silent(reader, writer):
        await reader.read()  # never answers the handshake; returns once the client gave up
        writer.close()
        await writer.wait_closed()
        gone.set()

    async with await asyncio.start_server(silent, "127.0.0.1", 0) as listener:
        port = listener.sockets[0].getsockname()[1]
        with pytest.raises(TimeoutError):
            await wire.connect(f"ws://127.0.0.1:{port}/", timeout=0.2)
        await asyncio.wait_for(gone.wait(), 5)


async def test_a_close_from_the_server_reaches_on_close_and_send(server):
    conn = await wire.connect(f"{server.url}/close")
    closed: asyncio.Future[wire.ConnectionClosed] = asyncio.get_running_loop().create_future()
    conn.on_close = closed.set_result
    exc = await asyncio.wait_for(closed, 5)
    assert isinstance(exc, ConnectionClosedError)
    assert exc.rcvd.code == 4403
    assert conn.closed
    with pytest.raises(ConnectionClosedError):
        conn.send("too late")
    await conn.close()  # already closed: returns at once


async def test_a_ping_from_the_server_is_answered(server):
    conn = await wire.connect(f"{server.url}/ping")
    assert await next_text(receiver(conn)) == "hello"
    await asyncio.wait_for(server.pong, 5)  # the server's ping got its pong
    await conn.close()


async def test_fragmented_messages_arrive_whole(server):
    conn = await wire.connect(f"{server.url}/fragments")
    queue = receiver(conn)
    assert await next_text(queue) == "hello"
    assert await next_text(queue) == "fragmented é"
    await conn.close()


async def test_deflate_is_negotiated_on_request(server):
    conn = await wire.connect(f"{server.url}/echo", deflate=True)
    assert "permessage-deflate" in server.headers["Sec-WebSocket-Extensions"]
    assert [e.name for e in conn.protocol.extensions] == ["permessage-deflate"]
    queue = receiver(conn)
    assert await next_text(queue) == "hello"
    conn.send("x" * 5000)
    assert await next_text(queue) == "echo:" + "x" * 5000
    await conn.close()
    assert await asyncio.wait_for(server.closed_with, 5) == 1000


def _frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """An unmasked server frame, as RFC 6455 5.2 lays it out."""
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        head = bytes([first, len(payload)])
    elif len(payload) < 2**16:
        head = bytes([first, 126]) + len(payload).to_bytes(2, "big")
    else:
        head = bytes([first, 127]) + len(payload).to_bytes(8, "big")
    return head + payload


async def test_frames_split_and_packed_anyhow_arrive_in_order():
    """The client splits frames itself once open: a frame in the 101's segment, one a byte at
    a time, several in one segment, fragments, a ping between them, 16- and 64-bit lengths."""
    from websockets.server import ServerProtocol

    medium, large = "m" * 300 + "é", "L" * 70_000
    pongs: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(reader, writer):
        server = ServerProtocol()
        while (request := server.events_received()) == []:
            server.receive_data(await reader.read(4096))
        server.send_response(server.accept(request[0]))
        writer.write(b"".join(server.data_to_send()) + _frame(1, b"first"))
        for byte in _frame(1, medium.encode()):
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(
            _frame(1, b"a")
            + _frame(9, b"are you there")
            + _frame(1, b"frag", fin=False)
            + _frame(0, b"ment")
            + _frame(1, b"b")
        )
        whole = _frame(1, large.encode())
        writer.write(whole[:5])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(whole[5:] + _frame(8, (1000).to_bytes(2, "big")))
        # The client masks what it sends: let its own protocol read the pong and the close.
        server.receive_data(await reader.read(4096))
        for event in server.events_received():
            await pongs.put(event.data)
        writer.close()

    async with await asyncio.start_server(handle, "127.0.0.1", 0) as listener:
        port = listener.sockets[0].getsockname()[1]
        conn = await wire.connect(f"ws://127.0.0.1:{port}/")
        closed = asyncio.get_running_loop().create_future()
        conn.on_close = closed.set_result
        queue = receiver(conn)
        got = [await next_text(queue) for _ in range(6)]
        assert got == ["first", medium, "a", "fragment", "b", large]
        await asyncio.wait_for(closed, 5)
        assert await asyncio.wait_for(pongs.get(), 5) == b"are you there"
        assert conn.closed
