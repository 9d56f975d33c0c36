"""The fault suite's fast subset (``make faults`` runs them all; docs/reliability.md).

Each test plays rounds over real processes (two uvicorn workers behind HAProxy, Redis, a Celery
worker, PostgreSQL with the teams' shard behind a proxy), injects one fault while they play,
heals it, and checks every invariant. Needs PostgreSQL (``DATABASE_URL``) and ``redis-server``,
as CI's first run provides; skipped on the embedded default like the other cluster tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time

import pytest

from tests.faults.proxy import TcpProxy
from tests.faults.scenarios import CI_FAULTS, MOVE_STEPS, run_fault


@pytest.fixture(scope="module")
def fault_cluster(tmp_path_factory):
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        pytest.skip("the fault suite needs PostgreSQL (DATABASE_URL=postgres://...)")
    if not shutil.which("redis-server"):
        pytest.skip("the fault suite needs redis-server")
    from tests.faults.harness import FaultCluster

    cluster = FaultCluster(tmp_path_factory.mktemp("faults")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.processes
@pytest.mark.timeout(240)
@pytest.mark.parametrize("fault", CI_FAULTS)
async def test_every_invariant_holds_through_the_fault(fault_cluster, fault):
    row = await run_fault(fault_cluster, fault)
    assert not row.failure, row.failure
    failed = {name: result.detail for name, result in row.results.items() if not result.ok}
    assert not failed, f"{fault}: {failed}\n" + "\n".join(fault_cluster.log[-20:])
    assert row.votes > 0, "the workload cast no vote"
    if fault == "shard_unreachable":
        # The table said so (run_fault requires the code too): never `internal`.
        assert row.codes["shard_unavailable"] > 0, row.codes
        assert row.codes["internal"] == 0, row.codes


def test_the_suite_interrupts_every_step_of_a_move_but_the_last():
    from operations.moves import STEPS

    assert STEPS[:-1] == MOVE_STEPS


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    async def serve() -> None:
        async def echo(reader, writer):
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
            writer.close()

        srv = await asyncio.start_server(echo, sock=server)
        async with srv:
            await srv.serve_forever()

    import threading

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    return server, port


def test_the_proxy_forwards_delays_blackholes_resets_and_refuses():
    _server, port = _echo_server()
    proxy = TcpProxy(port, name="echo").start()
    try:

        def round_trip(timeout: float = 2.0) -> tuple[bytes, float]:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout) as conn:
                started = time.monotonic()
                conn.sendall(b"ping")
                return conn.recv(16), time.monotonic() - started

        assert round_trip()[0] == b"ping"
        proxy.delay(0.2)
        data, took = round_trip()
        assert data == b"ping"
        assert took >= 0.4  # both ways
        proxy.blackhole()
        with pytest.raises(TimeoutError):
            round_trip(timeout=0.5)
        proxy.heal()
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        held.sendall(b"x")
        assert held.recv(1) == b"x"
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            held.recv(1)
        held.close()
        proxy.refuse()
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            round_trip()
        proxy.heal()
        assert round_trip()[0] == b"ping"
    finally:
        proxy.stop()
