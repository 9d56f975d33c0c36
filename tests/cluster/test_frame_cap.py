"""The ASGI server itself refuses an oversized WebSocket frame: a real uvicorn worker, started
with the command line `make cluster` uses (``cluster.sh worker-cmd``: a worker forked by
pokerproject.prefork), closes the socket with 1009 (message too big) for a frame over its cap,
before the application buffers it; a frame over the table's own limit but under the cap is
answered ``frame_too_large`` by the table."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import websockets

from bench.client import TableClient, login
from tests.processes import embedded_env, free_port, kill_group, wait_until

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "deploy" / "cluster" / "cluster.sh"
PASSWORD = "frame-cap-demo"
LIMIT = 4096  # ROOM_MAX_FRAME_BYTES
CAP = LIMIT * 16  # what cluster.sh derives: --ws-max-size


@pytest.fixture
def uvicorn_worker(tmp_path):
    env = embedded_env(tmp_path, ROOM_MAX_FRAME_BYTES=str(LIMIT))
    for args in (["migrate_all"], ["seed_demo", "--password", PASSWORD]):
        subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )
    port = free_port()
    printed = subprocess.run(  # noqa: S603 - our own script
        ["bash", str(CLUSTER), "worker-cmd"],  # noqa: S607 - bash from PATH
        cwd=ROOT,
        env={**env, "SERVER": "uvicorn", "WORKERS": "1", "WORKER_BASE_PORT": str(port - 1)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    argv = shlex.split(printed)
    assert argv[argv.index("--ws-max-size") + 1] == str(CAP)
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(  # noqa: S603 - the cluster's own worker command
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            assert worker.poll() is None, log.read_text()
            try:
                return bool(login(url, "alice", PASSWORD))
            except OSError:
                return False

        wait_until(answers, timeout=60, what="the uvicorn worker", explain=log.read_text)
        yield url
    finally:
        kill_group(worker)


async def drain(ws) -> None:
    """Read until the server closes the socket (raises ConnectionClosed)."""
    while True:
        await asyncio.wait_for(ws.recv(), timeout=10)


async def test_the_server_closes_a_socket_sending_a_frame_over_its_cap(uvicorn_worker):
    session = await asyncio.to_thread(login, uvicorn_worker, "alice", PASSWORD)
    async with TableClient(uvicorn_worker, "demo", session) as table:
        # Over the table's limit, under the server's cap: the table answers, the socket lives.
        await table.ws.send(json.dumps({"type": "ping", "pad": "x" * (LIMIT * 2)}))
        answer = await table.wait_for("error")
        assert answer["code"] == "frame_too_large"
        await table.ws.ping()

        # Over the cap: uvicorn closes with 1009 without handing the frame to the table.
        await table.ws.send("x" * (CAP + 1))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await drain(table.ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
