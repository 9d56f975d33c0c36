"""The system under fault: real processes on loopback, each of which the suite may break.

- PostgreSQL (the server at ``PG_URL``, or ``DATABASE_URL``'s): databases of the run's own,
  ``poker_faults_<run>`` (directory) and one per shard (``eu-1@eu``, ``us-1@us``), migrated, with
  teams seeded by ``bench.seed``. The ``eu-1`` shard is reached through a ``TcpProxy``
  (``pg_proxy``): the cluster's ``SHARD_URLS`` point at the proxy's port, so the suite can make
  that shard unreachable and bring it back without touching the server.
- Two Redis of the run's own (tests.processes.RedisBroker): one for the channel layer and the
  cache, one as the Celery broker, so each can be killed alone.
- Two uvicorn workers and HAProxy with the cluster's own configuration (tests/cluster/conftest.py,
  deploy/cluster/cluster.sh), a Celery worker with beat (tests.processes.CeleryWorker).
- A second ``TcpProxy`` (``client_proxy``) in front of the balancer: the workload's sockets go
  through it, so the suite can delay, blackhole and reset the clients' connections.

Pools are small (``DATABASE_POOL_MAX_SIZE`` 2, nothing kept idle) and every process names its
PostgreSQL sessions (``application_name`` ``faults-<run>-<process>``), so the sessions of the
run can be counted in ``pg_stat_activity``. ``stop()`` kills every process group it started and
drops the databases, on failure too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg

from tests.cluster.conftest import LiveCluster, _haproxy_cfg, _start, _wait_http
from tests.faults.proxy import TcpProxy
from tests.processes import CeleryWorker, RedisBroker, free_port, kill_group

ROOT = Path(__file__).resolve().parents[2]
SHARDS = (("eu-1", "eu"), ("us-1", "us"))
PROXIED_SHARD = "eu-1"
POOL_MAX = 2
# Two teams play through every fault; the third joins them for the moves, so what a
# cross-region move re-sends to the other region is one scenario's history, not the run's.
TEAMS = 3
MEMBERS = 4  # a facilitator and three voters per team
# Variables of the caller's environment that would point the processes elsewhere.
_FOREIGN = ("DATABASE_", "SHARD_URLS", "REDIS_", "CELERY_", "CHANNEL_LAYER_", "GC_", "ROOM_")


def server_url() -> str:
    """The PostgreSQL server to use: ``PG_URL``, else ``DATABASE_URL``'s server, else local."""
    url = os.environ.get("PG_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432"
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _db_url(server: str, name: str, *, port: int | None = None, **query: str) -> str:
    parts = urlsplit(server)
    netloc = parts.netloc
    if port is not None:
        netloc = (
            f"{netloc.rsplit('@', 1)[0]}@127.0.0.1:{port}" if "@" in netloc else f"127.0.0.1:{port}"
        )
    suffix = f"?{urlencode(query)}" if query else ""
    return urlunsplit((parts.scheme, netloc, f"/{name}", "", "")) + suffix


class SessionWatch:
    """Counts the run's PostgreSQL sessions every 100 ms from one connection of its own and
    keeps the peak since ``restart()``: in total and per process (``application_name``)."""

    def __init__(self, server: str, prefix: str) -> None:
        self.prefix = prefix
        self._conn = psycopg.connect(_db_url(server, "postgres"), autocommit=True)
        self.peak_total = 0
        self.peak_by_process: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="session-watch")

    def count(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity "
                "WHERE application_name LIKE %s GROUP BY application_name",
                [f"{self.prefix}-%"],
            ).fetchall()
        return {name: int(n) for name, n in rows}

    def restart(self) -> None:
        self.peak_total, self.peak_by_process = 0, {}

    def _watch(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psycopg.Error):
                now = self.count()
                self.peak_total = max(self.peak_total, sum(now.values()))
                for name, n in now.items():
                    self.peak_by_process[name] = max(self.peak_by_process.get(name, 0), n)
            time.sleep(0.1)

    def start(self) -> SessionWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._conn.close()


@dataclass
class FaultCluster:
    workdir: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    server: str = field(default_factory=server_url)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.prefix = f"faults-{self.run}"
        self.directory = f"poker_faults_{self.run}"
        self.databases = {"default": self.directory} | {
            alias: f"{self.directory}_{alias.replace('-', '_')}" for alias, _ in SHARDS
        }
        self.redis = RedisBroker(self.workdir / "redis-layer")
        self.broker = RedisBroker(self.workdir / "redis-broker")
        self.pg_port = urlsplit(self.server).port or 5432
        self.pg_proxy = TcpProxy(self.pg_port, name=f"pg-{PROXIED_SHARD}")
        self.client_proxy: TcpProxy | None = None
        self.web: LiveCluster | None = None
        self.celery: CeleryWorker | None = None
        self.sessions: SessionWatch | None = None
        self.seed: dict = {}
        self._created: list[str] = []

    # --- environment ----------------------------------------------------------------------------

    def env(self, process: str) -> dict[str, str]:
        """The environment of one of the run's processes, its sessions named ``process``."""
        name = {"application_name": f"{self.prefix}-{process}"}
        shard_urls = []
        for alias, region in SHARDS:
            port = self.pg_proxy.port if alias == PROXIED_SHARD else None
            shard_urls.append(
                f"{alias}@{region}={_db_url(self.server, self.databases[alias], port=port, **name)}"
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
        env.update(
            DATABASE_URL=_db_url(self.server, self.directory, **name),
            SHARD_URLS=",".join(shard_urls),
            REGION="eu",
            DATABASE_POOL_MIN_SIZE="0",
            DATABASE_POOL_MAX_SIZE=str(POOL_MAX),
            DATABASE_POOL_TIMEOUT="3",
            DATABASE_POOL_MAX_IDLE="5",
            DATABASE_CONNECT_TIMEOUT="2",
            DATABASE_CONN_HEALTH_CHECKS="false",
            SHARD_RETRY_SECONDS="1",
            REDIS_URL=self.redis.url,
            CHANNEL_LAYER_BACKEND="pubsub",
            CHANNEL_LAYER_PREFIX="faults",
            CELERY_BROKER_URL=self.broker.url,
            CELERY_VISIBILITY_TIMEOUT="20",
            REPLICATION_SWEEP_SECONDS="3",
            WEBHOOK_SWEEP_SECONDS="30",
            ROOM_PRESENCE_HEARTBEAT_SECONDS="2",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        return env

    def note(self, text: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {text}")
        print(f"  [{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> FaultCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "redis-layer").mkdir(exist_ok=True)
        (self.workdir / "redis-broker").mkdir(exist_ok=True)
        with self._admin() as conn:
            for name in self.databases.values():
                conn.execute(f'CREATE DATABASE "{name}"')
                self._created.append(name)
        self.pg_proxy.start()
        self.redis.start()
        self.broker.start()
        self.sessions = SessionWatch(self.server, self.prefix).start()
        tools = self.env("tools")
        self._run([sys.executable, "manage.py", "migrate_all"], tools)
        seed_path = self.workdir / "seed.json"
        self._run(
            [
                sys.executable,
                "-m",
                "bench.seed",
                f"--teams={TEAMS}",
                f"--members={MEMBERS}",
                f"--prefix=f{self.run}",
                f"--out={seed_path}",
            ],
            tools,
        )
        self.seed = json.loads(seed_path.read_text())
        web_env = self.env("web")
        uvicorn = Path(sys.executable).parent / "uvicorn"
        ports = [free_port(), free_port()]
        procs, cmds, urls = [], [], []
        for index, port in enumerate(ports):
            cmd = [str(uvicorn), "pokerproject.asgi:application", "--host", "127.0.0.1"]
            cmd += ["--port", str(port), "--lifespan", "off", "--no-access-log"]
            cmd += ["--ws-ping-interval", "5", "--ws-ping-timeout", "5"]
            log = self.workdir / f"worker-{index}.log"
            cmds.append(cmd)
            procs.append(_start(cmd, web_env, log))
            urls.append(f"http://127.0.0.1:{port}")
        for index, url in enumerate(urls):
            _wait_http(f"{url}/healthz", procs[index], self.workdir / f"worker-{index}.log")
        balancer = None
        haproxy = shutil.which("haproxy") or (
            "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
        )
        if haproxy:
            port = free_port()
            cfg = self.workdir / "haproxy.cfg"
            cfg.write_text(_haproxy_cfg(port, ports))
            procs.append(_start([haproxy, "-db", "-f", str(cfg)], web_env, self.workdir / "lb.log"))
            balancer = f"http://127.0.0.1:{port}"
            _wait_http(f"{balancer}/healthz", procs[-1], self.workdir / "lb.log")
        self.web = LiveCluster(
            workers=urls,
            balancer=balancer,
            seed=self.seed,
            seed_path=seed_path,
            env=web_env,
            logs=self.workdir,
            procs=procs,
            worker_cmds=cmds,
        )
        front = balancer or urls[0]
        self.client_proxy = TcpProxy(int(front.rsplit(":", 1)[1]), name="clients").start()
        self.celery = CeleryWorker(
            env=self.env("celery"),
            cwd=ROOT,
            workdir=self.workdir,
            application_name=f"{self.prefix}-celery",
            queues="celery,replication,webhooks",
            concurrency=1,
        )
        self.celery.start(timeout=60)

    @property
    def url(self) -> str:
        """Where the workload's sockets connect: the client proxy in front of the balancer."""
        assert self.client_proxy is not None
        return f"http://127.0.0.1:{self.client_proxy.port}"

    def stop(self) -> None:
        for proxy in (self.client_proxy, self.pg_proxy):
            if proxy is not None:
                with contextlib.suppress(Exception):
                    proxy.stop()
        if self.celery is not None:
            self.celery.kill()
        if self.web is not None:
            for proc in self.web.procs:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGTERM)
            for proc in self.web.procs:
                try:
                    proc.wait(timeout=8)
                except subprocess.TimeoutExpired:
                    kill_group(proc)
        for server in (self.redis, self.broker):
            server.kill()
        if self.sessions is not None:
            with contextlib.suppress(Exception):
                self.sessions.stop()
        with contextlib.suppress(psycopg.Error), self._admin() as conn:
            for name in self._created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # --- faults the scenarios use ---------------------------------------------------------------

    def kill_busiest_worker(self) -> int:
        """SIGKILL the worker holding the most sockets; returns its index."""
        assert self.web is not None
        import psutil

        def held(index: int) -> int:
            port = int(self.web.workers[index].rsplit(":", 1)[1])
            return sum(
                1
                for c in psutil.Process(self.web.procs[index].pid).net_connections(kind="tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
            )

        index = max(range(len(self.web.workers)), key=held)
        self.web.kill_worker(index)
        return index

    def revive_workers(self) -> None:
        assert self.web is not None
        self.web.revive_workers()

    def revive_celery(self) -> None:
        assert self.celery is not None
        if not self.celery.running:
            self.celery.start(timeout=60)

    def redis_signal(self, sig: signal.Signals) -> None:
        assert self.redis.process is not None
        os.kill(self.redis.process.pid, sig)

    def manage(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 - our own interpreter
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env("tools"),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def moves_interrupted(self, slug: str, shards: tuple[str, str], steps: tuple[str, ...]) -> None:
        """Move the team back and forth between ``shards``, each move killed after one of
        ``steps`` and then finished (tests/faults/mover.py); raises if one did not go so."""
        env = {**self.env("tools"), "DATABASE_POOL": "false"}  # the mover forks
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter
            [sys.executable, "-m", "tests.faults.mover", slug, *shards, *steps],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        out: list[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.append(line)
                if line.startswith("move "):
                    self.note(line.strip())
            proc.wait(timeout=120)
        finally:
            kill_group(proc)
        if proc.returncode:
            raise RuntimeError(f"the moves failed ({proc.returncode}):\n{''.join(out)[-2000:]}")

    # --- reading the databases ------------------------------------------------------------------

    def connect(self, alias: str) -> psycopg.Connection:
        """A connection of the suite's own, straight to the server (never through a proxy)."""
        return psycopg.connect(
            _db_url(self.server, self.databases[alias], application_name="faults-check"),
            autocommit=True,
            connect_timeout=5,
        )

    def home_of(self, team_id: int) -> str:
        with self.connect("default") as conn:
            row = conn.execute(
                "SELECT shard FROM accounts_team WHERE id = %s", [team_id]
            ).fetchone()
        return row[0]

    # --- helpers --------------------------------------------------------------------------------

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(_db_url(self.server, "postgres"), autocommit=True)

    def _run(self, cmd: list[str], env: dict[str, str]) -> None:
        done = subprocess.run(  # noqa: S603 - our own interpreter
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300
        )
        if done.returncode:
            raise RuntimeError(f"{cmd[1:3]} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
