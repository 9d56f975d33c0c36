"""A server's PostgreSQL connections stay bounded under HTTP traffic and fall back when it stops.

Under ASGI Django runs each request's sync code on a thread of its own, so a persistent
connection (``CONN_MAX_AGE`` > 0) belongs to a thread that ends with the request and stays open
until the cyclic collector reaches it, which the shipped GC tuning makes rare. A real uvicorn
process with the settings `deploy/k8s/config.yaml` ships serves concurrent clients (signed in,
anonymous, anonymous with a made-up session cookie, the readiness probe that touches every
alias) while another connection counts the server's sessions in ``pg_stat_activity``.

Needs PostgreSQL (``DATABASE_URL``); skipped on the embedded default. The test makes databases
of its own, named after ``DATABASE_URL``'s, and drops them afterwards. It stops sending as soon
as the bound is passed, so a leaking server never takes more than a handful of the server's
shared ``max_connections``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from tests.processes import free_port, kill_group, wait_until

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 4
REQUESTS = 40
# What the pool keeps per alias when idle, and at most (settings.py's defaults unless the shipped
# configuration says otherwise).
POOL_MIN = 1
POOL_MAX = 3


def _shipped_settings() -> dict[str, str]:
    """The process knobs of the shipped configuration (the web Deployment's ConfigMap)."""
    for document in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "config.yaml").read_text()):
        if document and document.get("kind") == "ConfigMap":
            return {
                key: str(value)
                for key, value in document["data"].items()
                if key.startswith(("DATABASE_", "GC_", "PY_", "ROOM_"))
            }
    raise AssertionError("deploy/k8s/config.yaml has no ConfigMap")


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _admin_connect(database_url: str):
    import psycopg

    return psycopg.connect(_with_db(database_url, "postgres"), autocommit=True)


@dataclass
class Databases:
    url: str
    names: list[str]
    env: dict[str, str]
    seed: dict


@pytest.fixture(scope="module")
def databases(tmp_path_factory) -> Iterator[Databases]:
    """Fresh databases (one per alias), migrated, with one team whose members have sessions."""
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...)")
    from pokerproject.regions.config import parse_shard_urls

    shards = parse_shard_urls(os.environ.get("SHARD_URLS", ""))
    directory = f"{urlsplit(database_url).path.lstrip('/')}_conns_{uuid.uuid4().hex[:6]}"
    names = {"default": directory}
    names.update({s.alias: f"{directory}_{s.alias.replace('-', '_')}" for s in shards})
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "GC_", "PY_SWITCH", "ROOM_", "CELERY_", "REDIS_"))
    }
    env.update(
        DATABASE_URL=_with_db(database_url, directory),
        SHARD_URLS=",".join(
            f"{s.alias}@{s.region}={_with_db(database_url, names[s.alias])}" for s in shards
        ),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    with _admin_connect(database_url) as conn:
        for name in names.values():
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        seed_path = tmp_path_factory.mktemp("conns") / "seed.json"
        seed = ["-m", "bench.seed", "--teams=1", "--members=2", "--prefix=conns"]
        for cmd in (["manage.py", "migrate_all"], [*seed, f"--out={seed_path}"]):
            done = subprocess.run(  # noqa: S603 - our own interpreter
                [sys.executable, *cmd], cwd=ROOT, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{cmd}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        yield Databases(
            url=database_url,
            names=list(names.values()),
            env=env,
            seed=json.loads(seed_path.read_text()),
        )
    finally:
        with _admin_connect(database_url) as conn:
            for name in names.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ConnectionCounter:
    """Counts the sessions on the test's databases every 20 ms from one connection of its own,
    keeping the largest count seen; sets ``exceeded`` once it passes ``bound``."""

    def __init__(self, databases: Databases, bound: int) -> None:
        self.databases, self.bound = databases, bound
        self.peak = 0
        self.exceeded = threading.Event()
        self._stop = threading.Event()
        self._conn = _admin_connect(databases.url)
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def count(self) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s)",
            [self.databases.names],
        ).fetchone()
        return int(row[0])

    def _watch(self) -> None:
        while not self._stop.is_set():
            now = self.count()
            self.peak = max(self.peak, now)
            if now > self.bound:
                self.exceeded.set()
            time.sleep(0.02)

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._conn.close()


def _get(port: int, path: str, session: str | None) -> int:
    """One request on a new HTTP connection (as each new browser connection is); its status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Cookie": f"sessionid={session}"} if session else {}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.parametrize(
    "extra_env",
    [
        pytest.param({}, id="shipped"),
        # An operator's environment written before the pool: the old setting must not bring the
        # per-context connections back.
        pytest.param({"DATABASE_CONN_MAX_AGE": "300"}, id="old-conn-max-age"),
    ],
)
def test_connections_stay_bounded_and_fall_back(databases, tmp_path, extra_env):
    """Forty requests from four clients hold at most the pool's maximum per alias, and once they
    stop the server's sessions fall back to the pool's minimum per alias."""
    env = {**databases.env, **_shipped_settings(), **extra_env}
    per_alias = int(env.setdefault("DATABASE_POOL_MAX_SIZE", str(POOL_MAX)))
    idle_per_alias = int(env.setdefault("DATABASE_POOL_MIN_SIZE", str(POOL_MIN)))
    # Idle connections above the minimum are closed after this long (600 s when deployed).
    env["DATABASE_POOL_MAX_IDLE"] = "1"
    aliases = len(databases.names)
    team = databases.seed["teams"][0]
    member_session = team["members"][0]["session"]
    made_up = uuid.uuid4().hex  # a session key no store has
    requests = [
        ("/readyz", None),  # every alias
        (f"/teams/{team['slug']}/table/", member_session),  # directory and the team's shard
        (f"/teams/{team['slug']}/table/", made_up),  # anonymous: redirected to log in
        ("/", made_up),
    ]

    port = free_port()
    log_path = tmp_path / "server.log"
    uvicorn = Path(sys.executable).parent / "uvicorn"
    cmd = [str(uvicorn), "pokerproject.asgi:application", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--lifespan", "off", "--no-access-log"]
    with log_path.open("ab") as log:
        server = subprocess.Popen(  # noqa: S603 - our own venv's uvicorn
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:

        def answers() -> bool:
            assert server.poll() is None, log_path.read_text()[-3000:]
            try:
                return _get(port, "/healthz", None) == 200
            except OSError:
                return False

        wait_until(answers, timeout=60, what="the server to answer /healthz")
        statuses: list[int] = []
        with ConnectionCounter(databases, bound=per_alias * aliases) as counter:

            def client(index: int) -> None:
                for n in range(REQUESTS // CLIENTS):
                    if counter.exceeded.is_set():
                        return  # a leaking server: stop before it takes more of the shared server
                    path, session = requests[(index + n) % len(requests)]
                    statuses.append(_get(port, path, session))

            threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            time.sleep(0.1)  # one more count after the last response
            assert not counter.exceeded.is_set(), (
                f"{counter.peak} PostgreSQL sessions after {len(statuses)} requests: more than "
                f"{per_alias} per alias for {aliases} aliases"
            )
            assert len(statuses) == REQUESTS
            assert all(status < 500 for status in statuses), sorted(statuses)
            assert counter.peak > 0
            wait_until(
                lambda: counter.count() <= idle_per_alias * aliases,
                timeout=20,
                what=f"the sessions to fall back to {idle_per_alias} per alias",
                explain=lambda: f"{counter.count()} sessions still open",
            )
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_group(server)
