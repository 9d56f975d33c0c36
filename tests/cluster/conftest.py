"""Real processes for the cluster tests: two ASGI workers and HAProxy in front of them, on the
shared Redis (``live_cluster``) or on a Redis of the module's own that tests may kill
(``cluster_on_own_redis``).

Needs PostgreSQL (``DATABASE_URL``) and Redis (``REDIS_URL``), as CI's first run provides; the
tests are skipped on the embedded default. The fixture creates its own databases on that
PostgreSQL server (one per alias of ``SHARD_URLS``), migrates them, seeds one team through
``bench.seed``, starts the workers (the Redis pub/sub channel layer, as ``make cluster`` runs
them) and, when the ``haproxy`` binary exists, the balancer with the cluster's hashing rules;
everything is stopped and dropped afterwards. pytest-django's test databases are not used.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest

from tests.processes import RedisBroker, kill_group

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _requirements() -> tuple[str, str, list[tuple[str, str]]]:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        pytest.skip(
            "cluster tests need PostgreSQL (DATABASE_URL=postgres://...) and Redis (REDIS_URL): "
            "the embedded default has neither (CI's first run sets both)"
        )
    from pokerproject.regions.config import parse_shard_urls

    shards = [(s.alias, s.region) for s in parse_shard_urls(os.environ.get("SHARD_URLS", ""))]
    return database_url, redis_url, shards


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _admin(database_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(_with_db(database_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode:
        pytest.fail(f"{' '.join(cmd[1:3])} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


@dataclass
class LiveCluster:
    workers: list[str]  # base URLs of each worker, reached directly
    balancer: str | None  # base URL of HAProxy, when installed
    seed: dict
    seed_path: Path
    env: dict[str, str]
    logs: Path
    procs: list[subprocess.Popen] = field(default_factory=list)  # workers first, in order
    worker_cmds: list[list[str]] = field(default_factory=list)

    def team(self, index: int = 0) -> dict:
        return self.seed["teams"][index]

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker ``index``: no goodbye to its sockets, its presence rows or Redis."""
        kill_group(self.procs[index])

    def revive_workers(self) -> None:
        """Start every killed worker again on its port, as a supervisor would after a crash."""
        for index, cmd in enumerate(self.worker_cmds):
            if self.procs[index].poll() is not None:
                log = self.logs / f"worker-{index}.log"
                self.procs[index] = _start(cmd, self.env, log)
                _wait_http(f"{self.workers[index]}/healthz", self.procs[index], log)

    def worker_holding(self, sockets: int) -> int:
        """The index of the worker that holds at least ``sockets`` open connections (the
        balancer's sockets to it: health checks come and go, WebSockets stay)."""
        for index, (url, proc) in enumerate(zip(self.workers, self.procs, strict=False)):
            port = int(url.rsplit(":", 1)[1])
            held = [
                c
                for c in psutil.Process(proc.pid).net_connections(kind="tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
            ]
            if len(held) >= sockets:
                return index
        raise AssertionError(f"no worker holds {sockets} sockets")


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_http(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url} exited with {proc.returncode}:\n{_tail(log)}", pytrace=False)
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback test server
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer in {START_TIMEOUT:.0f} s:\n{_tail(log)}", pytrace=False)


def _haproxy_cfg(port: int, worker_ports: list[int]) -> str:
    """The cluster's own balancer configuration (deploy/cluster/cluster.sh), for these ports:
    the tests run the hashing rules `make cluster` runs."""
    done = subprocess.run(  # noqa: S603
        [str(ROOT / "deploy" / "cluster" / "cluster.sh"), "haproxy-cfg"],
        env={
            **os.environ,
            "CLUSTER_PORT": str(port),
            "WORKER_PORTS": ",".join(str(p) for p in worker_ports),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory) -> Iterator[LiveCluster]:
    """The cluster on the Redis at ``REDIS_URL``."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[RedisBroker]:
    """A Redis of the module's own, which a test may kill and start again."""
    _requirements()
    server = RedisBroker(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def cluster_on_own_redis(tmp_path_factory, redis_server) -> Iterator[LiveCluster]:
    """The cluster on ``redis_server``: its tests may kill workers and Redis."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), redis_server.url) as cluster:
        yield cluster


@contextlib.contextmanager
def running_cluster(tmp: Path, redis_url: str | None = None) -> Iterator[LiveCluster]:
    database_url, default_redis_url, shards = _requirements()
    redis_url = redis_url or default_redis_url
    run = uuid.uuid4().hex[:8]
    directory = f"poker_cluster_test_{run}"
    shard_dbs = {alias: f"{directory}_{alias.replace('-', '_')}" for alias, _ in shards}
    env = {
        **os.environ,
        "DATABASE_URL": _with_db(database_url, directory),
        "SHARD_URLS": ",".join(
            f"{alias}@{region}={_with_db(database_url, shard_dbs[alias])}"
            for alias, region in shards
        ),
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_BACKEND": "pubsub",
        "CHANNEL_LAYER_PREFIX": f"cluster-test-{run}",
        "DATABASE_SERVER_SIDE_BINDING": "true",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CELERY_BROKER_URL", None)  # tasks run in the worker; this test is about sockets
    for name in (directory, *shard_dbs.values()):
        _admin(database_url, f'CREATE DATABASE "{name}"')
    procs: list[subprocess.Popen] = []
    try:
        _run([sys.executable, "manage.py", "migrate_all"], env)
        seed_path = tmp / "seed.json"
        _run(
            [
                sys.executable,
                "-m",
                "bench.seed",
                "--teams=3",
                "--members=3",
                f"--prefix=xw{run}",
                f"--out={seed_path}",
            ],
            env,
        )
        uvicorn = Path(sys.executable).parent / "uvicorn"
        worker_ports = [_free_port(), _free_port()]
        workers, worker_cmds = [], []
        for i, port in enumerate(worker_ports):
            log = tmp / f"worker-{i}.log"
            if uvicorn.exists():
                cmd = [str(uvicorn), "pokerproject.asgi:application", "--port", str(port)]
                cmd += ["--host", "127.0.0.1", "--lifespan", "off", "--no-access-log"]
            else:
                cmd = [str(Path(sys.executable).parent / "daphne"), "-p", str(port)]
                cmd += ["-b", "127.0.0.1", "pokerproject.asgi:application"]
            worker_cmds.append(cmd)
            procs.append(_start(cmd, env, log))
            workers.append(f"http://127.0.0.1:{port}")
            _wait_http(f"{workers[-1]}/healthz", procs[-1], log)
        balancer = None
        haproxy = shutil.which("haproxy") or (
            "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
        )
        if haproxy:
            port = _free_port()
            cfg = tmp / "haproxy.cfg"
            cfg.write_text(_haproxy_cfg(port, worker_ports))
            log = tmp / "haproxy.log"
            procs.append(_start([haproxy, "-db", "-f", str(cfg)], env, log))
            balancer = f"http://127.0.0.1:{port}"
            _wait_http(f"{balancer}/healthz", procs[-1], log)
        yield LiveCluster(
            workers=workers,
            balancer=balancer,
            seed=json.loads(seed_path.read_text()),
            seed_path=seed_path,
            env=env,
            logs=tmp,
            procs=procs,
            worker_cmds=worker_cmds,
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for name in (directory, *shard_dbs.values()):
            _admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
