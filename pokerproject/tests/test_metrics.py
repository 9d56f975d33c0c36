"""The export (pokerproject.metrics): the sum over a host's processes with
PROMETHEUS_MULTIPROC_DIR, per-process gauges of processes that are gone dropped; the
scrape-time figures (whether each shard answers, Celery queue lengths) read when asked."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from pokerproject import metrics

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokerproject.settings")
    import django
    django.setup()
    from pokerproject import metrics
    metrics.SOCKETS.inc(int(sys.argv[1]))
    metrics.command("cast_vote", "ack", 0.0)
    metrics.command("cast_vote", "ack", 0.0)
    metrics.flush()  # as the event loop's watch does
    if sys.argv[2] == "stay":
        print("ready", flush=True)
        sys.stdin.read()
    """
)

EXPORT = textwrap.dedent(
    """
    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokerproject.settings")
    import django
    django.setup()
    from pokerproject import metrics
    print(metrics.exposition()[0].decode())
    """
)


def samples(text: str, name: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def host(tmp_path):
    """The environment of a host's processes: one multiprocess directory, SQLite databases."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "DATABASE_URL": f"sqlite:///{tmp_path}/directory.sqlite3",
        "SHARD_URLS": f"eu-1@eu=sqlite:///{tmp_path}/eu1.sqlite3",
    }

    def run(script: str, *args: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603 - this interpreter
            [sys.executable, "-c", script, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            text=True,
            **kw,
        )

    return run


def test_the_export_sums_the_processes_of_a_host(host):
    """Two processes that ended and one still running: counters add up over all three, the
    open-socket gauge is reported per live process only."""
    gone = []
    for _ in range(2):
        done = host(CHILD, "5", "exit")
        assert done.wait(timeout=60) == 0
        gone.append(str(done.pid))
    alive = host(CHILD, "3", "stay")
    try:
        assert alive.stdout.readline().strip() == "ready"
        export = host(EXPORT)
        text, _ = export.communicate(timeout=60)
        assert export.returncode == 0
        commands = samples(text, "poker_ws_commands_total")
        assert commands[(("command", "cast_vote"), ("outcome", "ack"))] == 6
        sockets = {dict(k)["pid"]: v for k, v in samples(text, "poker_ws_open_sockets").items()}
        assert sockets[str(alive.pid)] == 3.0
        assert sockets[str(export.pid)] == 0.0  # the exporting process
        assert not set(gone) & set(sockets)
        starts = samples(text, "poker_process_starts_total")
        assert sum(starts.values()) == 4  # three children and the exporting process
        cpu = samples(text, "poker_process_cpu_seconds_total")
        assert (("kind", "web"), ("pid", str(alive.pid))) in cpu
        assert samples(text, "poker_db_up") == {
            (("alias", "default"),): 1.0,
            (("alias", "eu-1"),): 1.0,
        }
    finally:
        alive.stdin.close()
        alive.wait(timeout=30)
    text, _ = host(EXPORT).communicate(timeout=60)
    assert not any(samples(text, "poker_ws_open_sockets").values())
    assert samples(text, "poker_ws_commands_total")[(("command", "cast_vote"), ("outcome", "ack"))]


@pytest.mark.django_db(databases="__all__")
def test_a_shard_that_does_not_answer_is_down_and_counted(monkeypatch):
    """``poker_db_up`` is 0 for an alias whose connection fails, and the failure is counted."""
    real = BaseDatabaseWrapper.ensure_connection

    def ensure_connection(self):
        if self.alias == "eu-2":
            raise OperationalError("connection refused")
        return real(self)

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", ensure_connection)
    before = _sample("poker_db_errors_total", alias="eu-2")
    [family] = metrics.ShardProbeCollector().collect()
    up = {s.labels["alias"]: s.value for s in family.samples}
    assert up["eu-2"] == 0.0
    assert up["eu-1"] == 1.0
    # At least: reading the registry probes again (the collector is registered there too).
    assert _sample("poker_db_errors_total", alias="eu-2") >= before + 1


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.processes
def test_queue_lengths_are_read_from_the_broker(settings, tmp_path):
    """Messages waiting in each routed Celery queue, as Redis holds them."""
    from tests.processes import RedisBroker

    broker = RedisBroker(tmp_path)
    broker.start()
    try:
        settings.CELERY_BROKER_URL = broker.url
        client = broker.client()
        client.rpush("replication", "a", "b", "c")
        client.rpush("webhooks", "d")
        [family] = metrics.QueueCollector().collect()
        lengths = {s.labels["queue"]: s.value for s in family.samples}
        assert lengths == {"celery": 0.0, "replication": 3.0, "webhooks": 1.0, "notifications": 0.0}
    finally:
        broker.kill()


@pytest.mark.django_db(databases="__all__")
def test_metrics_lists_the_domain_families(settings):
    settings.METRICS_OPEN_WITHOUT_TOKEN = True
    settings.METRICS_TOKEN = ""
    text = Client().get("/metrics").content.decode()
    for family in (
        "poker_ws_commands_total",
        "poker_ws_delivery_seconds",
        "poker_batch_size",
        "poker_db_up",
        "poker_outbox_pending",
        "poker_replication_lag_seconds",
        "poker_webhook_deliveries_total",
    ):
        assert f"# TYPE {family}" in text, family


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_the_pool_gauge_reports_each_alias_pool():
    """With PostgreSQL's connection pool (which the test process otherwise goes without, see
    conftest.py): its size, idle connections and waiting requests, per alias."""
    from django.db import connections

    connection = connections["eu-1"]
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's (settings.DATABASE_POOL)")
    connection.close()
    options = connection.settings_dict["OPTIONS"]
    options["pool"] = {"name": "eu-1-metrics-test", "min_size": 1, "max_size": 2, "timeout": 10}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            metrics.pool_stats()
            size = _sample("poker_db_pool_connections", alias="eu-1", state="size")
            assert size >= 1
            assert _sample("poker_db_pool_connections", alias="eu-1", state="available") < size
        assert _sample("poker_db_pool_connections", alias="eu-1", state="waiting") == 0
    finally:
        connection.close()
        connection.close_pool()
        del options["pool"]
