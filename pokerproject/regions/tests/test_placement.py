"""Where new teams land, on the configured databases."""

from collections import Counter

import pytest

from accounts import services
from accounts.models import User
from pokerproject.regions import registry
from pokerproject.regions.guard import MisroutedQuery, shard_scope
from rooms.models import Room
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")


def multi_shard_region() -> str | None:
    return next((r for r in registry.regions() if len(registry.shards_in_region(r)) > 1), None)


def test_new_teams_spread_evenly_over_their_regions_shards():
    """Teams of a region with several shards are spread roughly evenly, each recorded."""
    region = multi_shard_region()
    if region is None:
        pytest.skip("SHARD_URLS has no region with two shards")
    owner = User.objects.create_user("owner")
    teams = [services.team_create(name=f"T{i}", creator=owner, region=region) for i in range(160)]
    counts = Counter(t.shard for t in teams)
    shards = registry.shards_in_region(region)
    assert set(counts) == set(shards)
    fair = len(teams) / len(shards)
    assert all(0.6 * fair <= n <= 1.4 * fair for n in counts.values()), counts
    for team in teams[:10]:
        assert Room.objects.using(team.shard).filter(team_id=team.pk).exists()
        for alias in set(registry.shard_aliases()) - {team.shard}:
            assert not Room.objects.using(alias).filter(team_id=team.pk).exists()


def test_each_region_gets_its_own_teams():
    owner = User.objects.create_user("owner")
    for region in registry.regions():
        team = services.team_create(name=f"In {region}", creator=owner, region=region)
        assert team.region == region
        assert registry.region_of(team.shard) == region


def test_the_guard_stops_a_query_on_another_teams_shard():
    """Inside a team's scope, a query that reaches a different shard fails loudly."""
    first, second = registry.shard_aliases()[:2]
    with shard_scope(first):
        assert Story.objects.using(first).count() == 0
        with pytest.raises(MisroutedQuery):
            Story.objects.using(second).count()
        assert User.objects.count() == 0  # the directory is always allowed
