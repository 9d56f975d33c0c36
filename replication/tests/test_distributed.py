"""Cross-region replication end to end, with real processes: a Celery worker (with its embedded
beat running the sweep every second) in its own process group, a private Redis broker, and the
PostgreSQL test databases of every shard.

Rounds are played through the live table's services, exactly as a socket would play them; the
copies are made by the worker process, never in the test process (a guard fails the test if a
task runs here). Brokers and workers are killed with SIGKILL, as a crash would.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from prometheus_client.parser import text_string_to_metric_families

from conftest import facilitator_of
from pokerproject.regions import registry
from replication.models import OutboxEntry
from replication.selectors import home_checksums, region_diffs
from replication.services import checksum, replica_payload
from rooms import services as table
from rooms.game import RoundStatus
from rooms.models import Round, RoundReplica, Vote
from rooms.tests.channel_events import TeamChannel
from stories import services as story_services
from tests.processes import (
    REDIS_SERVER,
    CeleryWorker,
    RedisBroker,
    database_url,
    libpq_conninfo,
    tasks_via_broker,
    wait_until,
)

_ENGINE = settings.DATABASES["default"]["ENGINE"]
_REGIONS = list(dict.fromkeys(shard.region for shard in settings.SHARDS))

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        _ENGINE != "django.db.backends.postgresql",
        reason="needs PostgreSQL: the worker process must open the test databases "
        "(set DATABASE_URL and SHARD_URLS to PostgreSQL URLs)",
    ),
    pytest.mark.skipif(
        len(_REGIONS) < 2, reason="needs at least two regions in SHARD_URLS to replicate"
    ),
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary"),
    pytest.mark.django_db(databases="__all__", transaction=True),
]

CONVERGE_SECONDS = 60
REPLICATION_METRICS = ("poker_replication_pending", "poker_replication_lag_seconds")


# --- processes ----------------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path) -> Iterator[RedisBroker]:
    """A private Redis broker on a free port, killed at teardown."""
    server = RedisBroker(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def celery_via_broker(broker) -> Iterator[None]:
    """Send tasks from this process to the private broker instead of running them eagerly."""
    with tasks_via_broker(broker.url):
        yield


def _server_connection() -> psycopg.Connection:
    """An autocommit connection to the server's maintenance database (for pg_stat_activity)."""
    conninfo = {**libpq_conninfo(connections["default"].settings_dict), "dbname": "postgres"}
    return psycopg.connect(**conninfo, autocommit=True)


def _terminate_backends(application_name: str) -> None:
    """End the database sessions a killed worker left behind (e.g. one still waiting on a lock),
    so the teardown's flush of the test databases is not blocked by them."""
    with _server_connection() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )


@pytest.fixture
def worker(broker, celery_via_broker, tmp_path, request) -> Iterator[CeleryWorker]:
    """A Celery worker with embedded beat on the private broker and the test databases; not
    started yet. Killed at teardown; on failure its log tail is printed."""
    application_name = f"replication-e2e-{uuid.uuid4().hex[:10]}"

    def url(alias: str) -> str:
        return database_url(connections[alias].settings_dict, application_name=application_name)

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pokerproject.settings",
        "DATABASE_URL": url("default"),
        "SHARD_URLS": ",".join(
            f"{shard.alias}@{shard.region}={url(shard.alias)}" for shard in settings.SHARDS
        ),
        "CELERY_BROKER_URL": broker.url,
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "REPLICATION_SWEEP_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    process = CeleryWorker(
        env=env, cwd=settings.BASE_DIR, workdir=tmp_path, application_name=application_name
    )
    failed_before = request.session.testsfailed
    try:
        yield process
    finally:
        process.kill()
        _terminate_backends(application_name)
        if request.session.testsfailed > failed_before:
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"\n{request.node.nodeid}\n{process.log_tail(120)}")


# --- playing rounds -----------------------------------------------------------------------------


@pytest.fixture
def team_in(team_factory, add_member):
    """``team_in(region)``: a team homed in ``region`` with a facilitator and two voters."""

    def make(region: str, name: str) -> SimpleNamespace:
        team = team_factory(name, region=region)
        return SimpleNamespace(
            team=team,
            lead=facilitator_of(team),
            voters=[add_member(team, f"{name.lower()}-{who}") for who in ("bob", "carol")],
        )

    return make


def start_round(t: SimpleNamespace, title: str, votes: tuple[str, str] = ("3", "5")) -> None:
    """Put a new story on the table and let both voters play a card."""
    story = story_services.story_create(membership=t.lead, title=title)
    table.round_start(membership=t.lead, story_id=story.pk)
    for membership, value in zip(t.voters, votes, strict=True):
        table.vote_cast(membership=membership, value=value)


def finish_round(t: SimpleNamespace, estimate: str = "5") -> Round:
    """Reveal the cards and accept an estimate: two committed changes, each queuing a copy."""
    table.round_reveal(membership=t.lead)
    return table.estimate_accept(membership=t.lead, value=estimate).round


def play_round(
    t: SimpleNamespace, title: str, votes: tuple[str, str] = ("3", "5"), estimate: str = "5"
) -> Round:
    start_round(t, title, votes)
    return finish_round(t, estimate)


# --- what converged means -----------------------------------------------------------------------


def other_regions(team) -> list[str]:
    return [region for region in registry.regions() if region != team.region]


def replicas_of(team, region: str) -> list[RoundReplica]:
    alias = registry.shard_for_team(team.pk, region)
    return list(RoundReplica.objects.using(alias).filter(team_id=team.pk))


def outbox_of(team) -> list[OutboxEntry]:
    return list(OutboxEntry.objects.using(team.shard).filter(team_id=team.pk))


def converged(team, rounds: int) -> bool:
    """Every other region holds a copy of each of the ``rounds`` finished rounds, each copy
    agrees with its origin, and nothing is left in the outbox."""
    diffs = region_diffs(team=team)
    return (
        len(diffs) == len(other_regions(team))
        and all(d.agrees and d.home_count == d.copy_count == rounds for d in diffs)
        and all(entry.delivered_at is not None for entry in outbox_of(team))
    )


def wait_converged(team, rounds: int, worker: CeleryWorker) -> None:
    wait_until(
        lambda: converged(team, rounds),
        timeout=CONVERGE_SECONDS,
        what=f"{rounds} round(s) of team {team.slug} ({team.region}) to reach every region",
        explain=lambda: f"{region_diffs(team=team)}\n{worker.log_tail()}",
    )


def assert_identical_copies(team, rounds: int) -> None:
    """Exactly one copy per finished round on the team's shard in every other region, equal to
    the origin by checksum, version and content; none anywhere else; the outbox delivered."""
    home = home_checksums(team=team)
    assert len(home) == rounds
    originals = {
        str(r.pk): r
        for r in Round.objects.using(team.shard).filter(pk__in=[uuid.UUID(i) for i in home])
    }
    for region in other_regions(team):
        copies = replicas_of(team, region)
        assert sorted(str(c.id) for c in copies) == sorted(home), region
        for copy in copies:
            origin = originals[str(copy.id)]
            assert checksum(replica_payload(copy)) == home[str(copy.id)]
            assert (copy.version, copy.status, copy.estimate) == (
                origin.version,
                origin.status,
                origin.estimate,
            )
            assert copy.home_region == team.region
            expected_votes = list(
                Vote.objects.using(team.shard)
                .filter(round_id=origin.pk)
                .order_by("user_id")
                .values("user_id", "value")
            )
            assert copy.votes == expected_votes
    # A copy lives only on the team's shard of each other region: never at home, never twice.
    elsewhere = {
        alias: RoundReplica.objects.using(alias).filter(team_id=team.pk).count()
        for alias in registry.shard_aliases()
        if alias not in {registry.shard_for_team(team.pk, r) for r in other_regions(team)}
    }
    assert elsewhere == dict.fromkeys(elsewhere, 0)
    entries = outbox_of(team)
    assert len(entries) == rounds * len(other_regions(team))
    assert all(e.delivered_at is not None and e.last_error == "" for e in entries)
    assert all(e.round_version == originals[str(e.round_id)].version for e in entries)


def no_copies(team) -> bool:
    return all(not replicas_of(team, region) for region in other_regions(team))


def pending_entries(team) -> list[OutboxEntry]:
    return [e for e in outbox_of(team) if e.delivered_at is None]


def worker_ran(worker: CeleryWorker, task: str) -> int:
    """How many runs of ``task`` the worker's log reports as succeeded."""
    return len(re.findall(rf"Task {re.escape(task)}\[[^\]]+\] succeeded", worker.log()))


def sweeps_that_queued(worker: CeleryWorker) -> int:
    """How many sweeps the worker's log reports as having re-queued at least one round."""
    return len(
        re.findall(r"replication\.sweep\[[^\]]+\] succeeded in [\d.]+s: [1-9]", worker.log())
    )


# --- scenarios ----------------------------------------------------------------------------------


def test_rounds_finished_in_two_regions_reach_every_other_region(team_in, worker):
    """Rounds finished by a team in one region and a team in another are copied by the worker
    to every other region: identical copies (same checksums), and every outbox row delivered."""
    worker.start()
    first, second = registry.regions()[:2]
    alpha = team_in(first, "Alpha")
    beta = team_in(second, "Beta")

    play_round(alpha, "Login page", votes=("3", "5"), estimate="5")
    play_round(beta, "Search", votes=("8", "8"), estimate="8")
    play_round(alpha, "Logout", votes=("1", "2"), estimate="2")
    play_round(beta, "Export", votes=("13", "21"), estimate="21")

    wait_converged(alpha.team, 2, worker)
    wait_converged(beta.team, 2, worker)
    assert_identical_copies(alpha.team, 2)
    assert_identical_copies(beta.team, 2)
    assert worker_ran(worker, "replication.replicate_round") >= 4


def test_a_round_finished_while_the_broker_is_down_arrives_through_the_sweep(
    team_in, broker, worker
):
    """With the broker dead at commit time, revealing and accepting still succeed (the round and
    its votes are committed) and the outbox rows wait; once the broker is back, the periodic sweep
    re-sends them and the copies arrive."""
    worker.start()
    alpha = team_in(registry.regions()[0], "Alpha")
    start_round(alpha, "Billing", votes=("5", "8"))
    seated = TeamChannel(alpha.team.pk)  # a socket at the table

    broker.kill()
    began = time.monotonic()
    round_ = finish_round(alpha, estimate="8")
    service_seconds = time.monotonic() - began

    assert seated.names() == ["cards_revealed", "estimate_accepted"]
    seated.close()

    stored = Round.objects.using(alpha.team.shard).get(pk=round_.pk)
    assert (stored.status, stored.estimate) == (RoundStatus.ACCEPTED, "8")
    assert Vote.objects.using(alpha.team.shard).filter(round_id=round_.pk).count() == 2
    assert {e.target_region for e in pending_entries(alpha.team)} == set(other_regions(alpha.team))
    assert no_copies(alpha.team)
    # Each failed publish costs kombu's connect retries (about 6 s today), not a hang.
    assert service_seconds < 30, f"reveal + accept took {service_seconds:.1f}s with no broker"

    assert sweeps_that_queued(worker) == 0
    broker.start()  # same port, empty: the messages of the failed commits never existed
    wait_converged(alpha.team, 1, worker)
    assert_identical_copies(alpha.team, 1)
    assert sweeps_that_queued(worker) > 0, "the copy must have been re-queued by the sweep"


def _waiting_on_lock(database: str, application_name: str) -> int:
    with _server_connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND application_name = %s AND wait_event_type = 'Lock'",
            [database, application_name],
        ).fetchone()
    return row[0]


def test_a_worker_killed_mid_copy_is_replaced_and_the_copies_converge_without_duplicates(
    team_in, worker
):
    """A worker SIGKILLed while its copy waits on the target table loses nothing: the reveal's
    only message is given back (or the sweep re-sends it), a new worker makes the copy, and every
    region holds exactly one copy of the round; a later accept replaces it, still one copy."""
    worker.start()
    alpha = team_in(registry.regions()[0], "Alpha")
    target_region = other_regions(alpha.team)[0]
    target_alias = registry.shard_for_team(alpha.team.pk, target_region)
    target_db = connections[target_alias].settings_dict["NAME"]
    start_round(alpha, "Checkout", votes=("2", "3"))

    blocker = psycopg.connect(**libpq_conninfo(connections[target_alias].settings_dict))
    try:
        blocker.execute("LOCK TABLE replication_roundreplica IN ACCESS EXCLUSIVE MODE")
        # Reveal only: one committed change, one message, and the worker is stuck on it.
        round_ = table.round_reveal(membership=alpha.lead).round
        wait_until(
            lambda: _waiting_on_lock(target_db, worker.application_name),
            timeout=30,
            what=f"the worker's copy to {target_alias} to wait on the table lock",
            explain=worker.log_tail,
        )
        worker.kill()
    finally:
        blocker.rollback()
        blocker.close()

    assert target_region in {e.target_region for e in pending_entries(alpha.team)}
    assert not replicas_of(alpha.team, target_region)
    assert worker_ran(worker, "replication.replicate_round") == 0

    worker.start()
    wait_converged(alpha.team, 1, worker)
    assert_identical_copies(alpha.team, 1)

    accepted = table.estimate_accept(membership=alpha.lead, value="3").round
    assert accepted.version > round_.version
    wait_until(
        lambda: (
            all(
                copy.version == accepted.version
                for region in other_regions(alpha.team)
                for copy in replicas_of(alpha.team, region)
            )
            and converged(alpha.team, 1)
        ),
        timeout=CONVERGE_SECONDS,
        what="the accepted version to replace every copy",
        explain=worker.log_tail,
    )
    assert_identical_copies(alpha.team, 1)
    for region in other_regions(alpha.team):
        alias = registry.shard_for_team(alpha.team.pk, region)
        assert RoundReplica.objects.using(alias).filter(id=round_.pk).count() == 1


def scrape(client) -> dict[tuple[str, str], float]:
    """The replication series of GET /metrics, by (metric, shard)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, sample.labels["shard"]): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if sample.name in REPLICATION_METRICS
    }


def test_pending_and_lag_are_exported_while_waiting_and_after_convergence(
    team_in, broker, worker, client
):
    """/metrics reports the outbox backlog per shard while no worker runs (the copy queued on the
    broker, not made in process), then zero pending and the commit-to-copy lag once it has run."""
    alpha = team_in(registry.regions()[0], "Alpha")
    home = alpha.team.shard
    round_ = play_round(alpha, "Profile", votes=("5", "5"), estimate="5")
    committed = time.monotonic()

    # Nothing ran the copy synchronously: the outbox waits and the messages sit on the broker.
    assert no_copies(alpha.team)
    assert len(pending_entries(alpha.team)) == len(other_regions(alpha.team))
    assert broker.queue_length("replication") == 2  # one per committed change: reveal, accept

    series = scrape(client)
    for metric in REPLICATION_METRICS:
        assert {shard for name, shard in series if name == metric} == set(
            registry.shard_aliases()
        ), metric
    assert series["poker_replication_pending", home] == len(other_regions(alpha.team))
    assert all(
        value == 0
        for (name, shard), value in series.items()
        if name == "poker_replication_pending" and shard != home
    )

    worker.start()
    waited = time.monotonic() - committed
    wait_converged(alpha.team, 1, worker)

    series = scrape(client)
    assert all(
        value == 0 for (name, _), value in series.items() if name == "poker_replication_pending"
    )
    for region in other_regions(alpha.team):
        target = registry.shard_for_team(alpha.team.pk, region)
        lag = series["poker_replication_lag_seconds", target]
        copy = RoundReplica.objects.using(target).get(id=round_.pk)
        assert lag == pytest.approx(copy.lag_seconds)
        assert lag >= waited - 0.5, (lag, waited)
