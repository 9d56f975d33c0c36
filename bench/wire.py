"""The load generator's WebSocket client: an ``asyncio.Protocol`` on websockets' sans-I/O layer.

    conn = await wire.connect(url, origin=..., headers={"Cookie": ...})
    conn.on_text = handle  # called from data_received, once per text message
    conn.send(text)
    await conn.close()

The generator holds one socket per simulated member and shares the machine with the server it
measures, so its cost per received message is the point: no reader task per socket and no future
per message, as the high-level client has. Refused handshakes raise websockets' own exceptions
(``InvalidStatus`` carrying the response), sends on a closed socket ``ConnectionClosed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidMessage
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import CLOSED, CONNECTING, OPEN
from websockets.uri import parse_uri

__all__ = ["Connection", "ConnectionClosed", "connect"]

TEXT, CONT = Opcode.TEXT, Opcode.CONT


class Connection(asyncio.Protocol):
    def __init__(self, protocol: ClientProtocol, loop: asyncio.AbstractEventLoop) -> None:
        self.protocol = protocol
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        # Called once when the socket is gone, with what send() would raise from then on.
        self.on_close: Callable[[ConnectionClosed], None] | None = None
        self._on_text: Callable[[str], None] | None = None
        # Messages that arrive before on_text is set: the server may send its first frame in the
        # same segment as the 101 response, before connect() has even returned.
        self._pending: list[str] = []
        self._fragments: list[bytes] | None = None
        self._lost = False
        # Once open, whole unfragmented text frames are split off here (see _frames); ``_rest``
        # holds the start of a frame whose end has not arrived yet.
        self._split = False
        self._rest = b""
        self._response: bytes | None = b""  # the handshake response so far

    # --- API ------------------------------------------------------------------------------

    @property
    def on_text(self) -> Callable[[str], None] | None:
        return self._on_text

    @on_text.setter
    def on_text(self, callback: Callable[[str], None] | None) -> None:
        self._on_text = callback
        while callback is not None and self._pending and self._on_text is callback:
            callback(self._pending.pop(0))

    @property
    def closed(self) -> bool:
        return self._lost or self.protocol.state is not OPEN

    def send(self, text: str) -> None:
        if self.closed:
            raise self._closed_exc()
        self.protocol.send_text(text.encode())
        self._write(self.protocol.data_to_send())

    async def close(self, timeout: float = 10) -> None:
        """Start the closing handshake and wait, at most ``timeout``, for the server to drop the
        TCP connection (a client leaves that to the server, RFC 6455 7.1.1); then drop it."""
        if not self.closed:
            self.protocol.send_close(CloseCode.NORMAL_CLOSURE)
            self._write(self.protocol.data_to_send())
        if not self.lost.done():
            await asyncio.wait([self.lost], timeout=timeout)
        if not self.lost.done() and self.transport is not None:
            self.transport.abort()
            await asyncio.wait([self.lost])

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._write(self.protocol.data_to_send())  # the handshake request, queued by connect()

    def data_received(self, data: bytes) -> None:
        if self._split:
            self._frames(data)
            return
        protocol = self.protocol
        if protocol.state is CONNECTING and self._response is not None:
            # The protocol gets the HTTP response and nothing after it: if it opens, the frames
            # that follow (often in the same segment) are split in _frames from their start.
            seen = len(self._response)
            self._response += data
            end = self._response.find(b"\r\n\r\n", max(0, seen - 3))
            if end >= 0:
                cut = end + 4 - seen
                self._response = None
                protocol.receive_data(data[:cut])
                self._process()
                data = data[cut:]
                if protocol.state is OPEN:
                    self._split = True
                    if data:
                        self._frames(data)
                    return
                if not data:
                    return
        protocol.receive_data(data)
        self._process()

    def eof_received(self) -> None:
        self.protocol.receive_eof()
        self._process()  # returns None: the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        protocol = self.protocol
        # A reset arrives without EOF: let the protocol reach CLOSED (or fail the handshake).
        protocol.receive_eof()
        protocol.data_to_send()  # nowhere to write it any more
        if not self.opened.done():
            self.opened.set_exception(
                protocol.handshake_exc or InvalidMessage("connection lost during the handshake")
            )
        if not self.lost.done():
            self.lost.set_result(None)
        if self.on_close is not None:
            self.on_close(self._closed_exc())

    # --- internals ------------------------------------------------------------------------

    def _closed_exc(self) -> ConnectionClosed:
        p = self.protocol
        if p.state is CLOSED:
            return p.close_exc
        return ConnectionClosed(p.close_rcvd, p.close_sent, p.close_rcvd_then_sent)

    def _write(self, writes: list[bytes]) -> None:
        if not writes or self.transport is None or self._lost:
            return
        # An empty chunk (SEND_EOF) ends our side; a client has nothing more to say by then.
        eof = not writes[-1]
        data = b"".join(writes)
        if data:
            self.transport.write(data)
        if eof:
            self.transport.close()

    def _frames(self, data: bytes) -> None:
        """Split ``data`` into frames. A whole text message in one frame, unmasked and without
        extension bits (nearly every frame a server sends), goes to the listener from here:
        through the protocol it costs about eight times as much (7.6 against 0.9 µs for a
        cards_revealed frame). Every other frame (control frames, fragments, compressed or
        oversized ones, errors) goes through the protocol whole, so it never holds half a frame
        and the split stays in step; once the protocol leaves OPEN, it gets everything."""
        buf = self._rest + data if self._rest else data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                if end - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if end - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if second & 0x80:
                head += 4  # masked: a server must not; the protocol fails the connection
            max_size = self.protocol.max_message_size
            if max_size is not None and length > max_size:
                stop = end  # the protocol refuses it from the header alone
            else:
                stop = pos + head + length
                if stop > end:
                    break
            if first == 0x81 and not second & 0x80 and stop - pos == head + length:
                self._deliver(buf[pos + head : stop].decode())
            else:
                self.protocol.receive_data(buf[pos:stop])
                self._process()
                if self.protocol.state is not OPEN:
                    self._split = False
                    if stop < end:
                        self.protocol.receive_data(buf[stop:])
                        self._process()
                    self._rest = b""
                    return
            pos = stop
        self._rest = buf[pos:]

    def _process(self) -> None:
        protocol = self.protocol
        writes = protocol.data_to_send()
        if writes:  # pongs, the echo of a close frame, EOF: queued by the protocol while parsing
            self._write(writes)
        for event in protocol.events_received():
            # The hot path, inline: a whole text message once on_text is set.
            if (
                type(event) is Frame
                and event.opcode is TEXT
                and event.fin
                and self._on_text is not None
            ):
                self._on_text(event.data.decode())
            else:
                self._event(event)
        if not self.opened.done() and protocol.handshake_exc is not None:
            self.opened.set_exception(protocol.handshake_exc)  # no valid HTTP response

    def _event(self, event: Frame | Response) -> None:
        if type(event) is not Frame:  # the handshake response
            if not self.opened.done():
                exc = self.protocol.handshake_exc
                if exc is None:
                    self.opened.set_result(None)
                else:
                    self.opened.set_exception(exc)
            return
        opcode = event.opcode
        if opcode is TEXT:
            if event.fin:
                self._deliver(event.data.decode())
            else:
                self._fragments = [event.data]
        elif opcode is CONT and self._fragments is not None:
            self._fragments.append(event.data)
            if event.fin:
                text = b"".join(self._fragments).decode()
                self._fragments = None
                self._deliver(text)
        # Binary messages are not part of the protocol; ping, pong and close are the protocol's.

    def _deliver(self, text: str) -> None:
        if self._on_text is None:
            self._pending.append(text)
        else:
            self._on_text(text)


async def connect(
    url: str,
    *,
    origin: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
    deflate: bool = False,
    max_size: int | None = 2**22,
) -> Connection:
    """Open a socket and complete the handshake within ``timeout`` (``TimeoutError`` if not).

    Raises ``websockets.exceptions.InvalidStatus`` (``.response.status_code``) when the server
    answers anything but 101, ``InvalidMessage`` when it answers no valid HTTP, ``OSError`` when
    the TCP connection fails."""
    uri = parse_uri(url)
    protocol = ClientProtocol(
        uri,
        origin=origin,  # type: ignore[arg-type]
        extensions=enable_client_permessage_deflate(None) if deflate else None,
        max_size=max_size,
    )
    request = protocol.connect()
    for name, value in (headers or {}).items():
        request.headers[name] = value
    protocol.send_request(request)
    loop = asyncio.get_running_loop()
    conn = Connection(protocol, loop)
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(lambda: conn, uri.host, uri.port, ssl=uri.secure or None)
            await conn.opened
    except BaseException:
        if conn.transport is not None:
            conn.transport.abort()
        if conn.opened.done() and not conn.opened.cancelled():
            conn.opened.exception()  # a refusal that lost the race with the timeout: not logged
        raise
    return conn
