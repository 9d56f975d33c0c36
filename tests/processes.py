"""Real processes for the end-to-end tests of replication and webhooks: a private Redis broker
and a Celery worker with embedded beat, each of which a test can kill (SIGKILL) and start
again.

Nothing here is mocked: the worker is ``celery -A pokerproject worker -B`` in its own process
group, connected to the test databases, and the broker is a ``redis-server`` of its own on a free
port, so killing it touches nobody else's Redis.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import redis

T = TypeVar("T")

REDIS_SERVER = shutil.which("redis-server")
VENV_BIN = Path(sys.executable).parent


class Deadline(AssertionError):
    """A condition did not come true in time."""


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float,
    what: str,
    explain: Callable[[], str] | None = None,
    interval: float = 0.2,
) -> T:
    """Poll ``condition`` until it returns something truthy (and return that), or fail after
    ``timeout`` seconds saying ``what`` was awaited, with ``explain()`` (e.g. the worker log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            details = explain() if explain else ""
            raise Deadline(f"timed out after {timeout:.0f}s waiting for {what}\n{details}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process on the embedded default (SQLite files under ``tmp``,
    no Redis, no broker), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp}/default.sqlite3",
        SHARD_URLS=f"eu-1@eu=sqlite:///{tmp}/shard-eu-1.sqlite3",
        DJANGO_DEBUG="true",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def database_url(settings_dict: dict[str, Any], **options: str) -> str:
    """A DATABASE_URL (django-environ syntax) for a PostgreSQL settings dict, plus ``options``
    (e.g. ``application_name``) as query parameters."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(settings_dict.get("HOST") or "", safe="")  # a socket directory is %-encoded
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    query = {
        key: str(value)
        for key, value in (settings_dict.get("OPTIONS") or {}).items()
        if isinstance(value, str | int)
    }
    query.update(options)
    suffix = f"?{urlencode(query)}" if query else ""
    return f"postgres://{credentials}{host}{port}/{settings_dict['NAME']}{suffix}"


def worker_databases_env(application_name: str) -> dict[str, str]:
    """DATABASE_URL and SHARD_URLS of this test run's databases, for a process it starts (a
    worker), its sessions named ``application_name``."""
    from django.conf import settings
    from django.db import connections

    def url(alias: str) -> str:
        return database_url(connections[alias].settings_dict, application_name=application_name)

    shards = ",".join(f"{s.alias}@{s.region}={url(s.alias)}" for s in settings.SHARDS)
    return {"DATABASE_URL": url("default"), "SHARD_URLS": shards}


def libpq_conninfo(settings_dict: dict[str, Any]) -> dict[str, Any]:
    """psycopg.connect() keyword arguments for a Django PostgreSQL settings dict."""
    params = {
        "dbname": settings_dict["NAME"],
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
    }
    return {key: value for key, value in params.items() if value is not None}


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything in its process group, then reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    # Children that outlived the leader (pool processes, the beat process) share its group id.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class RedisBroker:
    """A private ``redis-server`` without persistence: killing it loses every queued message,
    as a broker crash would. It restarts on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self) -> None:
        assert REDIS_SERVER, "redis-server is not installed"
        assert self.process is None or self.process.poll() is not None, "broker already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the installed redis-server
                [
                    REDIS_SERVER,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._answers, timeout=15, what=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None

    def queue_length(self, queue: str) -> int:
        with self.client() as client:
            return int(client.llen(queue))


class CeleryWorker:
    """``celery -A pokerproject worker -B -Q <queues> -c <concurrency>`` in its own process
    group (by default the replication queues, one process).

    Each start appends to one log file; ``log_tail()`` returns its end for failure messages.
    ``env`` must name its databases with ``application_name`` so its sessions can be found.
    """

    def __init__(
        self,
        *,
        env: dict[str, str],
        cwd: Path,
        workdir: Path,
        application_name: str,
        queues: str = "celery,replication",
        concurrency: int = 1,
    ) -> None:
        self.env = env
        self.application_name = application_name  # what its database sessions are called
        self.cwd = cwd
        self.workdir = workdir
        self.queues, self.concurrency = queues, concurrency
        self.log_path = workdir / "worker.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = 45) -> None:
        """Start a worker and wait until it consumes and its beat runs."""
        assert not self.running, "worker already running"
        self.starts += 1
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            log.write(f"\n===== worker start #{self.starts} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(  # noqa: S603 - our own venv's celery
                [
                    str(VENV_BIN / "celery"),
                    "-A",
                    "pokerproject",
                    "worker",
                    "-B",
                    "-s",
                    str(self.workdir / "beat-schedule"),
                    "-Q",
                    self.queues,
                    "-c",
                    str(self.concurrency),
                    "-n",
                    f"{self.application_name}-{self.starts}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            if self.process.poll() is not None:
                raise Deadline(
                    f"the worker exited with {self.process.returncode}\n{self.log_tail()}"
                )
            text = self.log_since(offset)
            return " ready." in text and "beat: Starting" in text

        wait_until(
            ready, timeout=timeout, what="the Celery worker to be ready", explain=self.log_tail
        )

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (main process, pool child, beat)."""
        if self.process is not None:
            kill_group(self.process)
            self.process = None

    def log_since(self, offset: int) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log(self) -> str:
        return self.log_since(0)

    def log_tail(self, lines: int = 80) -> str:
        tail = self.log().splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)


def drop_broker_connections() -> None:
    """Close the Celery app's broker pools and forget them, so the next publish uses the current
    broker URL. kombu also keeps producer pools in a process-wide registry keyed by URL, and
    Celery acquires a producer even for eager tasks: a pool merely closed would break them."""
    from kombu import pools as kombu_pools

    from pokerproject.celery import app as celery_app

    for owner, attribute in ((celery_app.amqp, "_producer_pool"), (celery_app, "_pool")):
        resource = getattr(owner, attribute)
        if resource is not None:
            resource.force_close_all()
        setattr(owner, attribute, None)
    kombu_pools.reset()


@contextlib.contextmanager
def tasks_via_broker(url: str):
    """Publish tasks to the broker at ``url`` instead of running them eagerly, and fail if any
    task runs in this process anyway (it must run in the worker under test)."""
    from celery.signals import task_prerun

    from pokerproject.celery import app as celery_app

    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    ran_here: list[str] = []

    def record(sender=None, **kwargs):
        ran_here.append(getattr(sender, "name", repr(sender)))

    task_prerun.connect(record, weak=False)
    celery_app.conf.update(broker_url=url, task_always_eager=False)
    drop_broker_connections()
    try:
        yield
    finally:
        task_prerun.disconnect(record)
        celery_app.conf.update(saved)
        drop_broker_connections()
    assert ran_here == [], f"tasks ran in the test process, not the worker: {ran_here}"
