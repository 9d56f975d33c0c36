"""The project's Prometheus metrics: every family, the helpers that move them, and the export.

One module names every family (docs/operations.md, "Observing it", lists them), so a dashboard
or an alert can be checked against it. Callers use the helpers, a line each. The hot ones
(``command``, ``delivered``, ``batch``, ``reveal``, ``publishing``, statement timing) take no
lock: they add to plain tallies that are moved into the metrics twice a second (``_Tally``).

Labels are bounded: command and event names come from rooms.protocol, error codes from the
code's own constants, close codes are folded into a few values, shard aliases and queues
from the configuration. No team, user, round or socket id is ever a label.

Several processes per host (ASGI workers, Celery's pool): with ``PROMETHEUS_MULTIPROC_DIR``
set (deploy/cluster/cluster.sh sets it, one directory per host, emptied at start) every
process writes its values to files there, and ``/metrics`` on any worker of the host serves
the sum (gauges per process carry a ``pid`` label), so Prometheus scrapes one target per host.
Values that only a database or Redis knows (pending outbox rows, queue lengths, whether a
shard answers) are read at scrape time by ``register_scrape_collector`` collectors.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import gc
import glob
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")

# Seconds: from a millisecond (an ack on an idle worker) to seconds (a worker in trouble).
LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

# --- live table (rooms.realtime) -------------------------------------------------------------

SOCKETS = Gauge(
    "poker_ws_open_sockets", "Open table sockets, per worker process", multiprocess_mode="liveall"
)
TEAMS = Gauge(
    "poker_ws_open_teams",
    "Teams with at least one open socket, per worker process",
    multiprocess_mode="liveall",
)
CONNECTS = Counter(
    "poker_ws_connects_total", "Socket connection attempts by result", ["result", "code"]
)
DISCONNECTS = Counter("poker_ws_disconnects_total", "Sockets closed, by close code", ["code"])
COMMANDS = Counter(
    "poker_ws_commands_total",
    "Socket commands by type and outcome (ack or the error code)",
    ["command", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "poker_ws_command_seconds",
    "Command received to ack written, per command type",
    ["command"],
    buckets=LATENCY,
)
DELIVERY_SECONDS = Histogram(
    "poker_ws_delivery_seconds",
    "Commit of a table change to its frame written to the last teammate's socket on a worker",
    ["event"],
    buckets=LATENCY,
)
FRAMES_SENT = Counter(
    "poker_ws_frames_sent_total", "Table event frames written to sockets (fan-out)", ["event"]
)
RESYNCS = Counter("poker_ws_resyncs_total", "Snapshots asked for by a socket after a gap")
RATE_LIMITED = Counter("poker_ws_rate_limited_total", "Frames refused by the per-socket limit")
BATCH_SIZE = Histogram(
    "poker_batch_size", "Commands per group commit, per kind", ["kind"], buckets=SIZES
)
BATCH_SECONDS = Histogram(
    "poker_batch_commit_seconds",
    "Time to commit and publish one group commit, per kind",
    ["kind"],
    buckets=LATENCY,
)
REVEAL_SECONDS = Histogram(
    "poker_reveal_seconds", "A reveal from submission to committed and broadcast", buckets=LATENCY
)
LOOP_LAG = Histogram(
    "poker_event_loop_lag_seconds",
    "How late a worker's event loop ran a timer (sampled every half second)",
    buckets=LATENCY,
)
GC_PAUSE = Histogram(
    "poker_gc_pause_seconds", "Cyclic garbage collector pauses", ["generation"], buckets=LATENCY
)

# --- processes -------------------------------------------------------------------------------

STARTS = Counter("poker_process_starts_total", "Processes started, by kind", ["kind"])

# --- shards ----------------------------------------------------------------------------------

QUERY_SECONDS = Histogram(
    "poker_db_query_seconds", "Database statement time, per alias", ["alias"], buckets=LATENCY
)
DB_ERRORS = Counter(
    "poker_db_errors_total",
    "Statements or probes that could not reach the database (connection errors), per alias",
    ["alias"],
)
POOL = Gauge(
    "poker_db_pool_connections",
    "Connection pool of each alias per process: size, idle (available) and requests waiting",
    ["alias", "state"],
    multiprocess_mode="liveall",
)

# --- Redis channel layer ---------------------------------------------------------------------

PUBLISH_SECONDS = Histogram(
    "poker_channel_layer_publish_seconds",
    "Publishing one batch of table events to the channel layer",
    buckets=LATENCY,
)
PUBLISH_FAILURES = Counter(
    "poker_channel_layer_publish_failures_total", "Batches of table events that failed to publish"
)
RECEIVE_FAILURES = Counter(
    "poker_channel_layer_receive_failures_total", "Failed reads of a worker's team events"
)
RECONNECTS = Counter(
    "poker_channel_layer_reconnects_total",
    "A worker's team events flowing again after failed reads",
)

# --- Celery and what it delivers -------------------------------------------------------------

TASKS = Counter("poker_celery_tasks_total", "Celery tasks run, by outcome", ["task", "outcome"])
TASK_SECONDS = Histogram(
    "poker_celery_task_seconds", "Celery task run time", ["task"], buckets=LATENCY
)
TASK_RETRIES = Counter("poker_celery_task_retries_total", "Celery task retries", ["task"])
WEBHOOK_DELIVERIES = Counter(
    "poker_webhook_deliveries_total", "Webhook delivery attempts by outcome", ["outcome"]
)
WEBHOOK_DISABLED = Counter(
    "poker_webhook_endpoints_disabled_total", "Webhook endpoints disabled after failing"
)
JIRA_WRITEBACKS = Counter(
    "poker_jira_writebacks_total", "Jira estimate write-backs by outcome", ["outcome"]
)

# --- helpers: live table ---------------------------------------------------------------------

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class _Tally:
    """Observations of one histogram child made on the event loop, kept in plain numbers and
    added to the child by ``flush()``. A histogram observation costs two locked updates (in
    multiprocess mode two writes to a shared file under one process-wide lock): ~13-40 µs on
    the benchmark box, against well under a microsecond here. Only the event loop's thread
    touches a tally (the consumer, the fan-out, the batches all run there), so none is locked.
    Relies on the child's ``_sum``, ``_buckets`` and ``_upper_bounds`` (prometheus-client is
    pinned in requirements.txt; rooms/tests/test_metrics.py reads the results)."""

    __slots__ = ("bounds", "child", "counts", "total")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.bounds = list(child._upper_bounds)  # ends with +Inf: every value has a bucket
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def flush(self) -> None:
        counts, self.counts = self.counts, [0] * len(self.bounds)
        total, self.total = self.total, 0.0
        if any(counts):
            self.child._sum.inc(total)
            for bucket, count in zip(self.child._buckets, counts, strict=True):
                if count:
                    bucket.inc(count)


class _Count:
    """A counter child's increments made on the event loop, added to it by ``flush()``."""

    __slots__ = ("child", "n")

    def __init__(self, child: Any) -> None:
        self.child, self.n = child, 0

    def flush(self) -> None:
        n, self.n = self.n, 0
        if n:
            self.child.inc(n)


_tallies: dict[tuple, Any] = {}


def _tally(metric: Histogram, *labels: str) -> _Tally:
    tally = _tallies.get((metric, labels))
    if tally is None:
        child = metric.labels(*labels) if labels else metric
        tally = _tallies[(metric, labels)] = _Tally(child)
    return tally


def _count(metric: Counter, *labels: str) -> _Count:
    count = _tallies.get((metric, labels))
    if count is None:
        count = _tallies[(metric, labels)] = _Count(metric.labels(*labels))
    return count


def flush() -> None:
    """Add what the event loop gathered to the metrics: every half second from the loop's
    watch task, and at once in tests. Call it on the event loop's thread."""
    for tally in tuple(_tallies.values()):
        tally.flush()


def command(name: str, outcome: str, started: float) -> None:
    """One socket command answered: ``outcome`` is "ack" or the error frame's code; the
    latency is observed for acks (``started``: ``time.perf_counter()`` at receipt)."""
    if outcome == "ack":
        _tally(COMMAND_SECONDS, name).observe(time.perf_counter() - started)
    elif not _CODE.match(outcome):
        outcome = "other"
    elif outcome == "rate_limited":
        RATE_LIMITED.inc()
    _count(COMMANDS, name, outcome).n += 1


def resync() -> None:
    RESYNCS.inc()


def connected(refused_code: int | None = None) -> None:
    if refused_code is None:
        CONNECTS.labels("accepted", "").inc()
    else:
        CONNECTS.labels("refused", str(refused_code)).inc()


def close_code_label(code: int | None) -> str:
    """A close code as a bounded label. A client may close with any code from 1000 to 4999:
    only those the server, the browser or the protocol use (the table's own are 44xx, as in
    HTTP) are kept as themselves, anything else is "other"."""
    if code in (1000, 1001, 1005, 1006, 1008, 1009, 1011, 1012) or (
        code is not None and 4400 <= code <= 4499
    ):
        return str(code)
    return "other"


def disconnected(code: int | None) -> None:
    DISCONNECTS.labels(close_code_label(code)).inc()


def seats(sockets_delta: int, teams: int) -> None:
    """A socket sat down (+1) or left (-1) this worker's table; ``teams`` tables are open."""
    SOCKETS.inc(sockets_delta)
    TEAMS.set(teams)


def delivered(event: str, committed_at: float | None, frames: int) -> None:
    """A table event went out to ``frames`` sockets of this worker; ``committed_at`` (wall
    clock, from the message) is when the change committed on whichever worker made it."""
    if frames:
        _count(FRAMES_SENT, event).n += frames
        if committed_at:
            _tally(DELIVERY_SECONDS, event).observe(max(time.time() - committed_at, 0.0))


def batch(kind: str, size: int, started: float) -> None:
    """A group commit of ``size`` commands finished (``started``: perf_counter before)."""
    _tally(BATCH_SIZE, kind).observe(size)
    _tally(BATCH_SECONDS, kind).observe(time.perf_counter() - started)


def reveal(started: float) -> None:
    _tally(REVEAL_SECONDS).observe(time.perf_counter() - started)


@contextlib.asynccontextmanager
async def publishing() -> Any:
    """Time one publish of table events; count it as failed if it raises."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        PUBLISH_FAILURES.inc()
        raise
    _tally(PUBLISH_SECONDS).observe(time.perf_counter() - started)


def receive_failed() -> None:
    RECEIVE_FAILURES.inc()


def reconnected() -> None:
    RECONNECTS.inc()


# --- event loop and GC -----------------------------------------------------------------------

LOOP_INTERVAL = 0.5
_monitored: set[int] = set()


def watch_event_loop() -> None:
    """Sample this event loop's lag (how late a timer fires) and refresh the pool gauges,
    from a task of its own; once per loop. Called when a socket connects."""
    loop = asyncio.get_running_loop()
    if id(loop) in _monitored:
        return
    _monitored.add(id(loop))
    task = loop.create_task(_watch(), name="metrics.event_loop")
    task.add_done_callback(lambda _: _monitored.discard(id(loop)))


async def _watch() -> None:
    ticks = 0
    while True:
        started = time.perf_counter()
        await asyncio.sleep(LOOP_INTERVAL)
        LOOP_LAG.observe(max(time.perf_counter() - started - LOOP_INTERVAL, 0.0))
        flush()
        gc_pauses()
        ticks += 1
        if ticks % 10 == 0:
            pool_stats()


_gc_started: list[float] = [0.0]
# Pauses waiting to be observed. The collector may run inside a metric's update, which holds
# prometheus_client's lock (in multiprocess mode one lock for every metric of the process) and
# is not reentrant: the callback only notes the pause, ``gc_pauses()`` observes it later.
_gc_pauses: collections.deque[tuple[int, float]] = collections.deque(maxlen=10_000)


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    elif _gc_started[0]:
        _gc_pauses.append((info.get("generation", -1), time.perf_counter() - _gc_started[0]))
        _gc_started[0] = 0.0


def gc_pauses() -> None:
    """Observe the GC pauses noted since the last call (from the event-loop watch, a Celery
    task's end, or a scrape)."""
    while _gc_pauses:
        generation, seconds = _gc_pauses.popleft()
        GC_PAUSE.labels(str(generation)).observe(seconds)


# --- helpers: databases ----------------------------------------------------------------------


class _ThreadTallies(threading.local):
    """Statement timings of one thread, added to the histogram at most once a second by that
    same thread (see _Tally: a locked update per statement costs more than the tally)."""

    def __init__(self) -> None:
        self.tallies: dict[str, _Tally] = {}
        self.flushed = time.perf_counter()


_statements = _ThreadTallies()


def _timer(alias: str) -> Callable:
    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        except Exception as exc:
            if _is_connection_error(exc):
                DB_ERRORS.labels(alias).inc()
            raise
        finally:
            now = time.perf_counter()
            mine = _statements
            tally = mine.tallies.get(alias)
            if tally is None:
                tally = mine.tallies[alias] = _Tally(QUERY_SECONDS.labels(alias))
            tally.observe(now - started)
            if now - mine.flushed > 1.0:
                mine.flushed = now
                for each in mine.tallies.values():
                    each.flush()

    timed._poker_metrics = True  # type: ignore[attr-defined]
    return timed


def flush_statements() -> None:
    """Add the calling thread's statement timings to the histogram now (tests)."""
    _statements.flushed = time.perf_counter()
    for tally in _statements.tallies.values():
        tally.flush()


def _is_connection_error(exc: BaseException) -> bool:
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, InterfaceError | OperationalError)


def on_connection_created(sender, connection, **kwargs) -> None:
    """Time every statement on ``connection`` (a signal receiver; once per connection object)."""
    if not any(getattr(w, "_poker_metrics", False) for w in connection.execute_wrappers):
        connection.execute_wrappers.append(_timer(connection.alias))


def pool_stats() -> None:
    """Copy each alias's connection pool figures of this process into the pool gauge."""
    from django.db import connections

    for alias in connections:
        pool = _pool_of(connections[alias])
        if pool is None:
            continue
        try:
            stats = pool.get_stats()
        except Exception:  # noqa: S112 - a closed pool has nothing to say
            continue
        POOL.labels(alias, "size").set(stats.get("pool_size", 0))
        POOL.labels(alias, "available").set(stats.get("pool_available", 0))
        POOL.labels(alias, "waiting").set(stats.get("requests_waiting", 0))


def _pool_of(wrapper: Any) -> Any:
    # Only a pool that exists: reading ``wrapper.pool`` would open one (and its connections).
    pools = getattr(type(wrapper), "_connection_pools", None)
    return pools.get(wrapper.alias) if pools else None


# --- helpers: Celery and deliveries ----------------------------------------------------------

_task_started: dict[str, float] = {}
_task_lock = threading.Lock()


def _task_name(sender: Any) -> str:
    return getattr(sender, "name", None) or "unknown"


def _on_task_prerun(sender=None, task_id=None, **kwargs) -> None:
    with _task_lock:
        _task_started[task_id] = time.perf_counter()
    TASK_RETRIES.labels(_task_name(sender))  # shown as 0 until the first retry


def _on_task_postrun(sender=None, task_id=None, state=None, **kwargs) -> None:
    with _task_lock:
        started = _task_started.pop(task_id, None)
    name = _task_name(sender)
    gc_pauses()
    TASKS.labels(name, (state or "unknown").lower()).inc()
    if started is not None:
        TASK_SECONDS.labels(name).observe(time.perf_counter() - started)


def _on_task_retry(sender=None, **kwargs) -> None:
    TASK_RETRIES.labels(_task_name(sender)).inc()


def webhook_delivery(outcome: str) -> str:
    """Count a webhook delivery attempt's outcome (the delivery's status after it); returns it."""
    WEBHOOK_DELIVERIES.labels(outcome if _CODE.match(outcome) else "other").inc()
    return outcome


def webhook_endpoint_disabled() -> None:
    WEBHOOK_DISABLED.inc()


def jira_writeback(outcome: str) -> str:
    """Count a Jira write-back's outcome (the sync row's status, or "retry"); returns it."""
    JIRA_WRITEBACKS.labels(outcome if _CODE.match(outcome) else "other").inc()
    return outcome


# --- scrape-time collectors ------------------------------------------------------------------

_scrape_collectors: list = []


def register_scrape_collector(collector: Any) -> None:
    """Add a collector that reads its values when /metrics is asked (once per collector)."""
    if any(type(c) is type(collector) for c in _scrape_collectors):
        return
    _scrape_collectors.append(collector)
    if not MULTIPROC_DIR:
        REGISTRY.register(collector)


class ShardProbeCollector:
    """``poker_db_up{alias}``: 1 if the alias answered ``SELECT 1`` within PROBE_TIMEOUT, at
    scrape time. A probe that does not come back is not waited for twice."""

    PROBE_TIMEOUT = 2.0

    def __init__(self) -> None:
        self.running: dict[str, threading.Thread] = {}

    def describe(self):
        yield GaugeMetricFamily("poker_db_up", "", labels=["alias"])

    def collect(self):
        from django.db import connections

        up = GaugeMetricFamily(
            "poker_db_up", "The database alias answers a query (1) or not (0)", labels=["alias"]
        )
        results: dict[str, bool] = {}
        for alias in connections:
            if alias in self.running and self.running[alias].is_alive():
                continue  # the last probe still hangs: down
            thread = threading.Thread(target=self._probe, args=(alias, results), daemon=True)
            self.running[alias] = thread
            thread.start()
        deadline = time.monotonic() + self.PROBE_TIMEOUT
        for thread in list(self.running.values()):
            thread.join(max(deadline - time.monotonic(), 0))
        for alias in connections:
            ok = results.get(alias, False)
            if not ok:
                DB_ERRORS.labels(alias).inc()
            up.add_metric([alias], 1.0 if ok else 0.0)
        yield up

    @staticmethod
    def _probe(alias: str, results: dict[str, bool]) -> None:
        from django.db import connections

        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
            results[alias] = True
        except Exception:
            results[alias] = False
        finally:
            with contextlib.suppress(Exception):
                connections[alias].close()


class QueueCollector:
    """``poker_celery_queue_length{queue}``: messages waiting in each Celery queue (Redis)."""

    def describe(self):
        yield GaugeMetricFamily("poker_celery_queue_length", "", labels=["queue"])

    def collect(self):
        from django.conf import settings

        url = settings.CELERY_BROKER_URL
        if not url.startswith(("redis://", "rediss://")):
            return
        import redis

        length = GaugeMetricFamily(
            "poker_celery_queue_length", "Messages waiting in a Celery queue", labels=["queue"]
        )
        try:
            client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
            try:
                for queue in queues():
                    length.add_metric([queue], float(client.llen(queue)))
            finally:
                client.close()
        except Exception:
            logger.warning("queue lengths not read: the broker does not answer")
            return
        yield length


def queues() -> list[str]:
    """Every Celery queue the project routes tasks to."""
    from django.conf import settings

    names = {"celery"}
    for route in (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).values():
        if isinstance(route, dict) and route.get("queue"):
            names.add(route["queue"])
    return sorted(names)


class ProcessCollector:
    """CPU and memory of every live process writing to the multiprocess directory, per pid and
    kind (web, celery), from /proc: the client's own process collector sees only the process
    that answers the scrape."""

    def describe(self):
        yield GaugeMetricFamily("poker_process_cpu_seconds_total", "", labels=["pid", "kind"])
        yield GaugeMetricFamily("poker_process_resident_memory_bytes", "", labels=["pid", "kind"])

    def collect(self):
        cpu = GaugeMetricFamily(
            "poker_process_cpu_seconds_total",
            "User and system CPU time of a process (a counter; use rate())",
            labels=["pid", "kind"],
        )
        rss = GaugeMetricFamily(
            "poker_process_resident_memory_bytes",
            "Resident memory of a process",
            labels=["pid", "kind"],
        )
        ticks = os.sysconf("SC_CLK_TCK")
        page = os.sysconf("SC_PAGE_SIZE")
        for pid in _live_pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            kind = "celery" if b"celery" in cmdline else "web"
            cpu.add_metric([str(pid), kind], (int(fields[11]) + int(fields[12])) / ticks)
            rss.add_metric([str(pid), kind], int(fields[21]) * page)
        yield cpu
        yield rss


def _pids_in(directory: str) -> Iterator[tuple[str, int]]:
    for path in glob.glob(os.path.join(directory, "*.db")):
        match = re.search(r"_(\d+)\.db$", path)
        if match:
            yield path, int(match.group(1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _live_pids() -> list[int]:
    if not MULTIPROC_DIR:
        return [os.getpid()]
    return sorted({pid for _, pid in _pids_in(MULTIPROC_DIR) if _alive(pid)})


def forget_dead_processes() -> None:
    """Drop the per-process gauges of processes that are gone (a restarted worker, a Celery
    pool child that was replaced), as ``mark_process_dead`` would if anything called it;
    their counters stay, so totals do not go backwards."""
    for pid in {pid for _, pid in _pids_in(MULTIPROC_DIR) if not _alive(pid)}:
        multiprocess.mark_process_dead(pid, MULTIPROC_DIR)


# --- export ----------------------------------------------------------------------------------


def registry() -> CollectorRegistry:
    """What /metrics serves: this process's registry, or with PROMETHEUS_MULTIPROC_DIR the sum
    of every process of the host plus the scrape-time collectors."""
    if not MULTIPROC_DIR:
        return REGISTRY
    forget_dead_processes()
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined, path=MULTIPROC_DIR)
    for collector in (*_scrape_collectors, ProcessCollector()):
        combined.register(collector)
    return combined


class _Host:
    """A registry that is ``registry()`` afresh at each scrape (for ``serve``)."""

    def collect(self):
        from django.db import connections

        try:
            yield from registry().collect()
        finally:
            # Each request is a thread of its own: hand its connections (the scrape-time
            # collectors read the shards) back to the pools, or each scrape would keep some.
            connections.close_all()


def serve(port: int) -> None:
    """Answer Prometheus on ``port`` from a thread of this process, for processes that serve no
    HTTP of their own: a Celery worker's main process, for its pool (CELERY_METRICS_PORT)."""
    from prometheus_client import start_http_server

    start_http_server(port, registry=_Host())
    logger.info("metrics on port %s", port)


def _on_worker_init(**kwargs) -> None:
    port = os.environ.get("CELERY_METRICS_PORT", "")
    if port:
        serve(int(port))


def exposition() -> tuple[bytes, str]:
    """The text /metrics answers, and its content type."""
    pool_stats()
    gc_pauses()
    return generate_latest(registry()), CONTENT_TYPE_LATEST


# --- installation ----------------------------------------------------------------------------

_installed = False


def install(kind: str | None = None) -> None:
    """Hook the metrics into Django, Celery and the interpreter (once per process): statement
    timing, task signals, GC pauses, the scrape-time collectors, and count this start."""
    global _installed
    if _installed:
        return
    _installed = True
    from celery import signals
    from django.db.backends.signals import connection_created

    connection_created.connect(on_connection_created, dispatch_uid="metrics.query_timer")
    signals.task_prerun.connect(_on_task_prerun, weak=False)
    signals.task_postrun.connect(_on_task_postrun, weak=False)
    signals.task_retry.connect(_on_task_retry, weak=False)
    signals.worker_init.connect(_on_worker_init, weak=False)
    gc.callbacks.append(_on_gc)
    for collector in (ShardProbeCollector(), QueueCollector()):
        register_scrape_collector(collector)
    _initialise()
    STARTS.labels(kind or _process_kind(sys.argv)).inc()


def launcher() -> None:
    """In a process that only forks workers (pokerproject.prefork), once it has imported what
    they share: it is not one of the host's processes, so it records nothing more (no GC
    pauses) and its value files go (its import counted a start each worker counts itself)."""
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(_on_gc)
    if not MULTIPROC_DIR:
        return
    for path, owner in list(_pids_in(MULTIPROC_DIR)):
        if owner == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def forked(kind: str = "web") -> None:
    """In a worker forked by such a launcher: its values start afresh in files of its own (the
    client notices the new pid), so record GC pauses again, set the series that exist at 0
    again and count this start."""
    if _installed and _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
    _initialise()
    STARTS.labels(kind).inc()


# Series that exist, at 0, before anything happens: a dashboard or an alert on a rate then
# reads 0 rather than nothing.
WEBHOOK_OUTCOMES = ("delivered", "pending", "failed", "cancelled", "skipped")
JIRA_OUTCOMES = ("done", "failed", "skipped", "pending", "retry", "gone")


def _initialise() -> None:
    from django.conf import settings

    for alias in settings.DATABASES:
        DB_ERRORS.labels(alias)
    for outcome in WEBHOOK_OUTCOMES:
        WEBHOOK_DELIVERIES.labels(outcome)
    for outcome in JIRA_OUTCOMES:
        JIRA_WRITEBACKS.labels(outcome)
    CONNECTS.labels("accepted", "")


def _process_kind(argv: Iterable[str]) -> str:
    command = " ".join(argv)
    if "celery" in command:
        return "celery"
    if "pytest" in command or "manage.py" in command:
        return "command"
    return "web"
