"""Replication of finished rounds, in process (tasks run eagerly, as in the embedded mode).

The same code with a real broker and worker processes is covered by test_distributed.py.
"""

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from accounts.roles import Role
from conftest import facilitator_of
from pokerproject.regions import registry
from replication import services
from replication.models import OutboxEntry
from replication.selectors import region_diffs
from rooms import services as table
from rooms.models import RoundReplica
from rooms.selectors import history_source
from stories import services as backlog

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def play(team, lead, voter, *, votes=("5", "8"), estimate="8", story=None):
    """Play a full round and accept an estimate; returns the round."""
    started = table.round_start(membership=lead, story_id=story.pk if story else None)
    table.vote_cast(membership=voter, value=votes[0])
    table.vote_cast(membership=lead, value=votes[1])
    table.round_reveal(membership=lead)
    table.estimate_accept(membership=lead, value=estimate)
    return started.round


def other_regions(team):
    return [r for r in registry.regions() if r != team.region]


@pytest.fixture
def eu_team(team_factory, add_member):
    team = team_factory("Euro", region="eu")
    return team, facilitator_of(team), add_member(team, "eve", Role.VOTER)


def test_a_finished_round_is_copied_to_every_other_region(eu_team):
    """Reveal and accept commit with their outbox rows; every other region gets the copy."""
    team, lead, eve = eu_team
    story = backlog.story_create(membership=lead, title="Search", external_key="EU-1")
    round_ = play(team, lead, eve, story=story)
    round_.refresh_from_db()
    assert other_regions(team)
    for region in other_regions(team):
        alias = registry.shard_for_team(team.pk, region)
        copy = RoundReplica.objects.using(alias).get(pk=round_.pk)
        assert copy.version == round_.version
        assert copy.status == "accepted"
        assert copy.estimate == "8"
        assert copy.story_external_key == "EU-1"
        assert copy.votes == sorted(
            [{"user_id": eve.user_id, "value": "5"}, {"user_id": lead.user_id, "value": "8"}],
            key=lambda v: v["user_id"],
        )
        assert copy.stats["mean"] == 6.5
        assert copy.home_region == "eu"
    entries = OutboxEntry.objects.using(team.shard).filter(round_id=round_.pk)
    assert {e.target_region for e in entries} == set(other_regions(team))
    assert all(e.delivered_at is not None and e.round_version == round_.version for e in entries)
    assert all(diff.agrees for diff in region_diffs(team=team))


def test_the_home_region_keeps_no_copy(eu_team):
    """Copies go to other regions only: the team's own region reads the originals."""
    team, lead, eve = eu_team
    round_ = play(team, lead, eve)
    for alias in registry.shards_in_region(team.region):
        assert not RoundReplica.objects.using(alias).filter(pk=round_.pk).exists()


def test_outbox_row_and_round_commit_or_fail_together(eu_team):
    """A reveal that rolls back leaves neither a revealed round nor an outbox row."""
    team, lead, eve = eu_team
    started = table.round_start(membership=lead)
    table.vote_cast(membership=eve, value="3")

    class Boom(Exception):
        pass

    def reveal_then_fail() -> None:
        with transaction.atomic(using=team.shard):
            table.round_reveal(membership=lead)
            assert OutboxEntry.objects.using(team.shard).filter(round_id=started.round.pk).exists()
            raise Boom

    with pytest.raises(Boom):
        reveal_then_fail()
    started.round.refresh_from_db()
    assert started.round.status == "voting"
    assert not OutboxEntry.objects.using(team.shard).filter(round_id=started.round.pk).exists()


def _payload(round_id: uuid.UUID, version: int, stamp, team_id: int = 1) -> dict:
    return {
        "id": str(round_id),
        "team_id": team_id,
        "version": version,
        "origin_updated_at": stamp.isoformat(),
        "story_id": None,
        "story_title": "",
        "story_external_key": "",
        "title": f"v{version}",
        "deck": "fibonacci",
        "status": "revealed",
        "stats": {"version": version},
        "estimate": str(version),
        "votes": [],
        "started_at": stamp.isoformat(),
        "revealed_at": stamp.isoformat(),
        "accepted_at": None,
    }


BASE = timezone.now().replace(microsecond=0)


@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    copies=st.lists(st.tuples(st.integers(1, 6), st.integers(0, 5)), min_size=1, max_size=12),
    data=st.data(),
)
def test_any_order_and_repetition_of_copies_converges_to_the_newest(copies, data):
    """Whatever order copies arrive in, and however often, the newest one stays."""
    alias = registry.shard_aliases()[-1]
    round_id = uuid.uuid4()
    arrivals = data.draw(st.permutations(copies + copies[: data.draw(st.integers(0, 3))]))
    for version, second in arrivals:
        table.round_copy_apply(
            alias=alias,
            payload=_payload(round_id, version, BASE + timedelta(seconds=second)),
            home_region="eu",
        )
    newest_version, newest_second = max(copies)
    copy = RoundReplica.objects.using(alias).get(pk=round_id)
    assert (copy.version, copy.origin_updated_at) == (
        newest_version,
        BASE + timedelta(seconds=newest_second),
    )
    assert copy.title == f"v{newest_version}"
    assert RoundReplica.objects.using(alias).filter(pk=round_id).count() == 1


def test_equal_versions_resolve_by_origin_timestamp():
    """A conflict on the same version goes to the later change, deterministically."""
    early, late = BASE, BASE + timedelta(seconds=1)
    assert table.is_newer((3, late), (3, early))
    assert not table.is_newer((3, early), (3, late))
    assert not table.is_newer((3, early), (3, early))
    assert table.is_newer((4, early), (3, late))


def test_a_failed_copy_is_recorded_and_retried_later(eu_team, monkeypatch):
    """A target that fails leaves the row pending with the error and a back-off."""
    team, lead, eve = eu_team

    def unreachable(**kwargs):
        raise ConnectionError("target shard unreachable")

    monkeypatch.setattr(services, "round_copy_apply", unreachable)
    round_ = play(team, lead, eve)  # the copy fails after commit; the round is still finished
    entry = OutboxEntry.objects.using(team.shard).filter(round_id=round_.pk).first()
    assert entry.delivered_at is None
    assert entry.attempts >= 1
    assert "unreachable" in entry.last_error
    assert entry.next_attempt_at > timezone.now()

    monkeypatch.undo()
    OutboxEntry.objects.using(team.shard).update(
        next_attempt_at=timezone.now(), created_at=timezone.now() - timedelta(minutes=1)
    )
    assert services.outbox_sweep() == 1
    entry.refresh_from_db()
    assert entry.delivered_at is not None
    assert services.outbox_sweep() == 0  # nothing left, and nothing queued twice
    assert all(diff.agrees for diff in region_diffs(team=team))


def test_verify_regions_finds_a_corrupted_copy_and_repair_fixes_it(eu_team, capsys):
    """A copy that drifted is reported with its id, and --repair makes the regions agree."""
    team, lead, eve = eu_team
    round_ = play(team, lead, eve)
    play(team, lead, eve, votes=("1", "2"), estimate="2")
    region = other_regions(team)[0]
    alias = registry.shard_for_team(team.pk, region)
    RoundReplica.objects.using(alias).filter(pk=round_.pk).update(
        votes=[{"user_id": eve.user_id, "value": "89"}]
    )
    stray = uuid.uuid4()
    table.round_copy_apply(
        alias=alias, payload=_payload(stray, 1, BASE, team_id=team.pk), home_region="eu"
    )

    with pytest.raises(SystemExit) as exit_:
        call_command("verify_regions")
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert f"different {round_.pk}" in out
    assert f"extra {stray}" in out

    call_command("verify_regions", "--repair")
    capsys.readouterr()
    call_command("verify_regions")
    assert "agree" in capsys.readouterr().out
    assert RoundReplica.objects.using(alias).get(pk=round_.pk).votes != [
        {"user_id": eve.user_id, "value": "89"}
    ]
    assert not RoundReplica.objects.using(alias).filter(pk=stray).exists()


def test_verify_regions_finds_a_missing_copy(eu_team, capsys):
    team, lead, eve = eu_team
    round_ = play(team, lead, eve)
    alias = registry.shard_for_team(team.pk, other_regions(team)[0])
    RoundReplica.objects.using(alias).filter(pk=round_.pk).delete()
    with pytest.raises(SystemExit):
        call_command("verify_regions", "--team", team.slug)
    assert f"missing {round_.pk}" in capsys.readouterr().out
    call_command("verify_regions", "--team", team.slug, "--repair")
    assert RoundReplica.objects.using(alias).filter(pk=round_.pk).exists()


def test_history_of_a_team_homed_elsewhere_is_read_from_this_regions_copy(
    team_factory, add_member, settings
):
    """The story page of a team homed in another region reads this region's copies."""
    settings.REGION = "eu"
    team = team_factory("Yanks", region="us")
    lead, sam = facilitator_of(team), add_member(team, "sam", Role.VOTER)
    story = backlog.story_create(membership=lead, title="Billing")
    round_ = play(team, lead, sam, story=story, estimate="13")
    local = registry.shard_for_team(team.pk, "eu")
    assert history_source(team=team) == local
    # Mark the copy so the page shows which one it read.
    RoundReplica.objects.using(local).filter(pk=round_.pk).update(title="from the eu copy")
    client = Client()
    client.force_login(lead.user)
    page = client.get(f"/teams/{team.slug}/stories/{story.pk}/")
    assert page.status_code == 200
    assert "from the eu copy" in page.content.decode()


def test_metrics_export_pending_rows_and_lag(eu_team, monkeypatch):
    team, lead, eve = eu_team
    monkeypatch.setattr(services.OUTBOX, "enqueue", lambda *args, **kwargs: None)  # broker "down"
    play(team, lead, eve)
    body = Client().get("/metrics").content.decode()
    pending = float(len(other_regions(team)))  # one row per region that needs a copy
    assert f'poker_replication_pending{{shard="{team.shard}"}} {pending}' in body
    # The same rows, as every outbox reports them.
    assert f'poker_outbox_pending{{outbox="replication",shard="{team.shard}"}} {pending}' in body
    assert f'poker_outbox_pending{{outbox="webhooks",shard="{team.shard}"}} 0.0' in body
    assert "poker_replication_lag_seconds" in body
    assert "poker_replication_oldest_pending_seconds" in body


def test_the_sweep_does_not_queue_a_round_again_on_every_run(eu_team, monkeypatch):
    """During a long outage a pending round is re-sent once per resend interval, not per sweep."""
    team, lead, eve = eu_team
    queued = []
    monkeypatch.setattr(
        services.OUTBOX, "enqueue", lambda shard, round_id, **kw: queued.append(round_id)
    )
    round_ = play(team, lead, eve)
    queued.clear()  # the commit-time attempts
    OutboxEntry.objects.using(team.shard).update(created_at=timezone.now() - timedelta(minutes=1))
    assert services.outbox_sweep() == 1
    assert services.outbox_sweep() == 0
    assert queued == [round_.pk]
    OutboxEntry.objects.using(team.shard).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.outbox_sweep() == 1


def test_verify_regions_inspects_the_home_region_and_repair_removes_a_stray_copy(eu_team, capsys):
    """A copy of a team's round in its own home region is a stray: reported, and dropped."""
    team, lead, eve = eu_team
    round_ = play(team, lead, eve)
    home_alias = registry.shard_for_team(team.pk, team.region)
    table.round_copy_apply(
        alias=home_alias,
        payload=_payload(round_.pk, 99, BASE, team_id=team.pk),
        home_region="us",
    )
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_regions", "--team", team.slug)
    assert exit_.value.code == 1
    assert f"extra {round_.pk}" in capsys.readouterr().out
    call_command("verify_regions", "--team", team.slug, "--repair")
    assert not RoundReplica.objects.using(home_alias).filter(team_id=team.pk).exists()
    capsys.readouterr()
    call_command("verify_regions", "--team", team.slug)
    assert "agree" in capsys.readouterr().out


def test_repair_exits_non_zero_while_differences_remain(eu_team, monkeypatch, capsys):
    """A repair whose copies cannot be made (a region unreachable) says so by its exit code."""
    team, lead, eve = eu_team
    round_ = play(team, lead, eve)
    alias = registry.shard_for_team(team.pk, other_regions(team)[0])
    RoundReplica.objects.using(alias).filter(pk=round_.pk).delete()

    def unreachable(**kwargs):
        raise ConnectionError("target shard unreachable")

    monkeypatch.setattr(services, "round_copy_apply", unreachable)
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_regions", "--team", team.slug, "--repair")
    assert exit_.value.code == 1
    assert "still disagree" in capsys.readouterr().out


def test_pending_copies_moved_with_a_team_never_land_in_its_new_home_region(
    team_factory, add_member, monkeypatch
):
    """A team moves to another region while copies of its rounds wait in the outbox (broker
    down): the rows that pointed at its new home are not delivered there."""
    from operations.moves import team_move

    team = team_factory("Nomads", region="eu")
    lead, eve = facilitator_of(team), add_member(team, "eve")
    monkeypatch.setattr(services.OUTBOX, "enqueue", lambda *args, **kwargs: None)
    round_ = play(team, lead, eve)
    target = next(a for a in registry.shard_aliases() if registry.region_of(a) != "eu")
    team_move(team=team, target=target)
    team.refresh_from_db()
    monkeypatch.undo()
    for round_id in set(
        OutboxEntry.objects.using(team.shard)
        .filter(delivered_at__isnull=True)
        .values_list("round_id", flat=True)
    ):
        services.outbox_deliver(shard=team.shard, round_id=round_id)
    for alias in registry.shards_in_region(team.region):
        assert not RoundReplica.objects.using(alias).filter(pk=round_.pk).exists()
    assert all(diff.agrees for diff in region_diffs(team=team))


@pytest.fixture
def eu_tables(team_factory, add_member):
    """Two voting tables of region eu on one shard: (shard, [facilitator of each])."""
    by_shard: dict[str, list] = {}
    for name in ("Ein", "Zwei", "Drei"):  # eu has two shards: two of three share one
        team = team_factory(name, region="eu")
        lead = facilitator_of(team)
        voter = add_member(team, f"{name.lower()}-voter", Role.VOTER)
        table.round_start(membership=lead)
        table.vote_cast(membership=voter, value="5")
        by_shard.setdefault(team.shard, []).append(lead)
    shard, leads = next((s, leads) for s, leads in by_shard.items() if len(leads) >= 2)
    return shard, leads[:2]


def test_a_reveal_batch_queues_its_rounds_in_one_message(eu_tables, monkeypatch):
    """One broker message for the batch's rounds, not one per round, and only at commit."""
    shard, leads = eu_tables
    single, many = [], []
    monkeypatch.setattr(services.OUTBOX, "enqueue", lambda s, key, **kw: single.append(key))
    monkeypatch.setattr(services.OUTBOX, "enqueue_many", lambda s, keys: many.append((s, keys)))
    with transaction.atomic(using=shard):
        results = table.rounds_reveal_batch(alias=shard, pending=leads)
        assert many == []  # nothing before the commit
    assert single == []
    assert many == [(shard, [result.round.pk for result in results])]


def test_a_batch_of_copies_delivers_each_round_and_queues_a_failed_one_alone(
    eu_tables, monkeypatch
):
    """A round whose copy fails has its failure recorded and goes on alone (its own task's
    retries); the batch's other rounds are copied."""
    shard, leads = eu_tables
    monkeypatch.setattr(services.OUTBOX, "enqueue_many", lambda s, keys: None)  # not delivered
    good, bad = (r.round for r in table.rounds_reveal_batch(alias=shard, pending=leads))
    copy_apply = services.round_copy_apply

    def failing_for_bad(*, alias, payload, home_region):
        if payload["id"] == str(bad.pk):
            raise ConnectionError("target shard unreachable")
        return copy_apply(alias=alias, payload=payload, home_region=home_region)

    queued = []
    monkeypatch.setattr(services, "round_copy_apply", failing_for_bad)
    monkeypatch.setattr(services.OUTBOX, "eager", lambda: False)
    monkeypatch.setattr(
        services.OUTBOX, "enqueue", lambda s, key, **kw: queued.append((s, key, kw["countdown"]))
    )
    delivered = services.outbox_deliver_many(shard=shard, round_ids=[bad.pk, good.pk])
    assert delivered == len(other_regions(leads[0].team))
    assert queued == [(shard, bad.pk, 2.0)]
    rows = OutboxEntry.objects.using(shard)
    assert all(e.delivered_at is not None for e in rows.filter(round_id=good.pk))
    failed = list(rows.filter(round_id=bad.pk))
    assert failed
    assert all(e.delivered_at is None and "unreachable" in e.last_error for e in failed)
