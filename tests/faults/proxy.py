"""A small TCP proxy for injecting network faults between two real processes.

It listens on a free loopback port and forwards every connection to ``target``; its event loop
runs on a thread of its own, so the harness drives it with plain calls:

- ``delay(seconds)``: every chunk waits that long before it is forwarded (both ways);
- ``blackhole()``: nothing is forwarded any more, both ways, and new connections are accepted
  but never reach the target (a silent network drop: the bytes wait, as TCP's would, and flow
  again after ``heal()`` unless the connection was given up meanwhile);
- ``reset()``: every open connection is cut with a TCP RST (SO_LINGER 0);
- ``refuse()``: ``reset()``, then every new connection is reset as soon as it is accepted (the
  target's host is down: nothing answers on that port);
- ``heal()``: back to forwarding at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from concurrent.futures import Future

from tests.processes import free_port

CHUNK = 65536


class TcpProxy:
    def __init__(self, target_port: int, *, name: str, target_host: str = "127.0.0.1") -> None:
        self.name = name
        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode = "pass"
        self.delay_seconds = 0.0
        self.connections = 0  # accepted so far
        self.resets = 0  # connections cut by reset()/refuse()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"proxy-{name}")
        self._thread.daemon = True
        self._flowing: asyncio.Event | None = None
        self._server: asyncio.AbstractServer | None = None
        self._open: set[asyncio.StreamWriter] = set()

    # --- control, from any thread -------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._run(self._start())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._run(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def delay(self, seconds: float) -> None:
        self._run(self._set("delay", seconds))

    def blackhole(self) -> None:
        self._run(self._set("blackhole"))

    def refuse(self) -> None:
        self._run(self._set("refuse"))
        self.reset()

    def reset(self) -> None:
        self._run(self._reset_all())

    def heal(self) -> None:
        self._run(self._set("pass"))

    def _run(self, coro) -> object:
        future: Future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=10)

    # --- inside the loop ------------------------------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._reset_all()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _set(self, mode: str, seconds: float = 0.0) -> None:
        assert self._flowing is not None
        self.mode, self.delay_seconds = mode, seconds
        if mode == "blackhole":
            self._flowing.clear()
        else:
            self._flowing.set()

    async def _reset_all(self) -> None:
        for writer in list(self._open):
            self._abort(writer)
            self.resets += 1

    def _abort(self, writer: asyncio.StreamWriter) -> None:
        self._open.discard(writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                # Linger on with a zero timeout: close() sends RST instead of FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Cancelled by stop(): end quietly (asyncio would log a cancelled connection handler).
        with contextlib.suppress(asyncio.CancelledError):
            await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        if self.mode == "refuse":
            self._abort(writer)
            return
        assert self._flowing is not None
        # A new connection in a blackhole waits, as a SYN to an unreachable host would.
        await self._flowing.wait()
        if writer not in self._open:
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._abort(writer)
            return
        self._open.add(up_writer)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        # One side closed or failed: so does the other (a reset one stays reset).
        for pump in pumps:
            pump.cancel()
        for side in (writer, up_writer):
            if side in self._open:
                self._open.discard(side)
                with contextlib.suppress(Exception):
                    side.close()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await source.read(CHUNK)
                if not data:
                    with contextlib.suppress(OSError):
                        sink.write_eof()
                    return
                await self._flowing.wait()
                if self.mode == "delay" and self.delay_seconds:
                    await asyncio.sleep(self.delay_seconds)
                sink.write(data)
                await sink.drain()
