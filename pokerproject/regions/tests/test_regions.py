"""Regions and shards: configuration, placement of teams, the router and the placement checks."""

import pytest
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import models
from django.test.utils import isolate_apps

from accounts import checks as account_checks
from accounts.models import Membership, Team, User
from pokerproject.regions import checks, registry
from pokerproject.regions.config import ShardConfigError, ShardSpec, parse_shard_urls
from pokerproject.regions.placement import GlobalModel, Placement, RegionalModel, placement_of
from pokerproject.regions.router import PlacementRouter, UnroutableQuery
from rooms.models import Presence, Room, Round, Vote
from stories.models import Story

REGIONAL_MODELS = [Story, Round, Vote, Room, Presence]
GLOBAL_MODELS = [User, Team, Membership, Group, Session]

# --- SHARD_URLS -------------------------------------------------------------------------------


def test_parse_shard_urls():
    shards = parse_shard_urls(
        " eu-1@eu=postgres://db1/poker_eu_1 , eu-2@eu=sqlite:///var/eu-2.sqlite3,"
        "us-1@us=postgres://u:p@db2:5432/poker?sslmode=require,"
    )
    assert shards == [
        ShardSpec(alias="eu-1", region="eu", url="postgres://db1/poker_eu_1"),
        ShardSpec(alias="eu-2", region="eu", url="sqlite:///var/eu-2.sqlite3"),
        # Everything after the first "=" is the URL, "@" and "=" included.
        ShardSpec(alias="us-1", region="us", url="postgres://u:p@db2:5432/poker?sslmode=require"),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "names no shard"),
        (" , ", "names no shard"),
        ("eu-1=postgres://db/x", "not alias@region=url"),  # no region
        ("eu-1@eu", "not alias@region=url"),  # no url
        ("eu-1@eu=", "not alias@region=url"),
        ("@eu=postgres://db/x", "not alias@region=url"),
        ("eu-1@=postgres://db/x", "not alias@region=url"),
        ("default@eu=postgres://db/x", "'default'"),
        ("eu-1@eu=postgres://a/x,eu-1@us=postgres://b/x", "twice"),
    ],
)
def test_parse_shard_urls_errors(value, message):
    with pytest.raises(ShardConfigError, match=message):
        parse_shard_urls(value)


def test_shard_config_errors_do_not_echo_the_url():
    """A malformed entry is named by its alias part only, never with its password."""
    with pytest.raises(ShardConfigError) as excinfo:
        parse_shard_urls("eu-1=postgres://user:s3cret@db/x")
    assert "s3cret" not in str(excinfo.value)


# --- Registry ---------------------------------------------------------------------------------


def spec(alias: str, region: str) -> ShardSpec:
    return ShardSpec(alias=alias, region=region, url=f"postgres://{alias}/poker")


@pytest.fixture
def shards(settings):
    """Three regions, five shards, none of them a real database: the registry only hashes."""
    settings.SHARDS = [
        spec("us-1", "us"),
        spec("eu-1", "eu"),
        spec("us-2", "us"),
        spec("ap-1", "ap"),
        spec("eu-2", "eu"),
    ]
    settings.REGION = "eu"
    return settings


def test_regions_in_configuration_order(shards):
    assert registry.regions() == ["us", "eu", "ap"]
    assert registry.shard_aliases() == ["us-1", "eu-1", "us-2", "ap-1", "eu-2"]
    assert registry.shards() == shards.SHARDS


def test_shards_in_region_and_region_of(shards):
    assert registry.shards_in_region("us") == ["us-1", "us-2"]
    assert registry.shards_in_region("ap") == ["ap-1"]
    assert registry.region_of("eu-2") == "eu"
    with pytest.raises(registry.UnknownRegion):
        registry.shards_in_region("mars")
    with pytest.raises(registry.UnknownRegion):
        registry.region_of("default")


def test_home_region_is_the_configured_one_or_the_first(shards):
    assert registry.home_region() == "eu"
    shards.REGION = "mars"
    assert registry.home_region() == "us"


def test_settings_are_read_on_each_call(shards):
    """Nothing is cached at import time: overriding SHARDS takes effect at once."""
    shards.SHARDS = [spec("solo", "xx")]
    assert registry.regions() == ["xx"]
    assert registry.shard_for_team(1, "xx") == "solo"


def test_rendezvous_is_deterministic_and_stays_in_the_region(shards):
    placed = {team_id: registry.shard_for_team(team_id, "us") for team_id in range(1, 400)}
    assert placed == {team_id: registry.shard_for_team(team_id, "us") for team_id in placed}
    assert set(placed.values()) == {"us-1", "us-2"}
    # Both shards get a fair share.
    share = sum(alias == "us-1" for alias in placed.values()) / len(placed)
    assert 0.35 < share < 0.65
    assert {registry.shard_for_team(t, "ap") for t in range(1, 50)} == {"ap-1"}


def test_rendezvous_does_not_depend_on_configuration_order(shards):
    before = {t: registry.shard_for_team(t, "us") for t in range(1, 200)}
    shards.SHARDS = list(reversed(shards.SHARDS))
    assert {t: registry.shard_for_team(t, "us") for t in range(1, 200)} == before


def test_adding_a_shard_moves_only_the_teams_that_now_hash_to_it(shards):
    """Rendezvous hashing: a new shard takes about 1/n of the teams, all others stay put."""
    teams = range(1, 3001)
    before = {t: registry.shard_for_team(t, "us") for t in teams}
    shards.SHARDS = [*shards.SHARDS, spec("us-3", "us")]
    after = {t: registry.shard_for_team(t, "us") for t in teams}
    moved = [t for t in teams if after[t] != before[t]]
    assert all(after[t] == "us-3" for t in moved)
    assert 0.25 < len(moved) / len(teams) < 0.42  # about a third
    # Another region's new shard moves nobody in this one.
    shards.SHARDS = [*shards.SHARDS, spec("eu-9", "eu")]
    assert {t: registry.shard_for_team(t, "us") for t in teams} == after


# --- Router -----------------------------------------------------------------------------------

router = PlacementRouter()


@pytest.mark.parametrize("model", REGIONAL_MODELS)
def test_regional_query_without_a_shard_is_unroutable(model):
    """A regional query must name its shard; it never falls back to the directory."""
    with pytest.raises(UnroutableQuery, match=model._meta.label):
        model.objects.count()
    with pytest.raises(UnroutableQuery):
        router.db_for_write(model)


def test_regional_instance_routes_to_the_database_it_came_from():
    story = Story(team_id=1, title="Login")
    story._state.db = "eu-9"
    assert router.db_for_read(Round, instance=story) == "eu-9"
    assert router.db_for_write(Story, instance=story) == "eu-9"
    with pytest.raises(UnroutableQuery):
        router.db_for_write(Story, instance=Story(team_id=1, title="unsaved"))


@pytest.mark.parametrize("model", GLOBAL_MODELS)
def test_global_models_route_to_the_directory(model):
    assert router.db_for_read(model) == "default"
    assert router.db_for_write(model) == "default"


def test_relations_only_within_one_database():
    a, b, c = Story(), Round(), Round()
    a._state.db, b._state.db, c._state.db = "eu-1", "eu-1", "eu-2"
    assert router.allow_relation(a, b) is True
    assert router.allow_relation(a, c) is False


@pytest.mark.parametrize(
    ("db", "app_label", "model_name", "allowed"),
    [
        ("eu-1", "stories", "story", True),
        ("eu-1", "rooms", "vote", True),
        ("eu-1", "rooms", "room", True),
        ("default", "rooms", "round", False),
        ("default", "rooms", "presence", False),
        ("default", "accounts", "team", True),
        ("eu-1", "accounts", "team", False),
        ("eu-1", "accounts", "user", False),
        ("default", "auth", "group", True),
        ("eu-1", "sessions", "session", False),
        ("default", "contenttypes", "contenttype", True),
        ("eu-1", "contenttypes", "contenttype", False),
        ("default", "stories", None, True),  # data migrations without a model: directory only
        ("eu-1", "stories", None, False),
        ("nowhere", "stories", "story", False),  # not a configured shard
    ],
)
def test_allow_migrate(db, app_label, model_name, allowed):
    assert router.allow_migrate(db, app_label, model_name) is allowed


@isolate_apps("stories")
def test_allow_migrate_uses_the_model_hint_for_models_that_no_longer_exist(shard_aliases):
    class Gone(RegionalModel):
        class Meta:
            app_label = "stories"

    assert router.allow_migrate(shard_aliases[0], "stories", "gone", model=Gone) is True
    assert router.allow_migrate("default", "stories", "gone", model=Gone) is False


@isolate_apps("stories")
def test_allow_migrate_follows_a_model_that_moved_to_another_app_by_its_table(shard_aliases):
    """stories' first migration creates the rounds table, which rooms.Round owns now: the
    historical model (no placement of its own) is routed as the live model of its table."""

    class Round(models.Model):  # noqa: DJ008 - what stories/migrations/0001 hands the router
        class Meta:
            app_label = "stories"
            db_table = "stories_round"

    assert router.allow_migrate(shard_aliases[0], "stories", "round", model=Round) is True
    assert router.allow_migrate("default", "stories", "round", model=Round) is False


# --- Placement and system checks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "placement"),
    [(m, Placement.REGIONAL) for m in REGIONAL_MODELS]
    + [(m, Placement.GLOBAL) for m in GLOBAL_MODELS],
)
def test_every_project_model_declares_its_placement(model, placement):
    assert placement_of(model) is placement


@pytest.fixture
def isolated(monkeypatch):
    """Throwaway models in their own app registry, which the checks then inspect."""
    with isolate_apps(
        "stories", "accounts", "django.contrib.messages", kwarg_name="apps"
    ) as registry_:
        monkeypatch.setattr(checks, "apps", registry_)
        yield registry_


def test_check_reports_a_model_without_placement(isolated):
    class Orphan(models.Model):  # noqa: DJ008 - a throwaway model, never displayed
        class Meta:
            app_label = "stories"

    class Fine(RegionalModel):
        class Meta:
            app_label = "stories"

    errors = checks.check_placement()
    assert [(e.id, e.obj) for e in errors] == [("regions.E001", Orphan)]
    assert "stories.Orphan declares no placement" in errors[0].msg


def test_check_ignores_models_of_apps_that_are_not_ours(isolated):
    class Foreign(models.Model):  # noqa: DJ008 - a throwaway model, never displayed
        class Meta:
            app_label = "messages"

    assert checks.check_placement() == []


def test_check_reports_a_foreign_key_across_placements(isolated):
    class Owner(GlobalModel):
        class Meta:
            app_label = "accounts"

    class Leaf(RegionalModel):
        owner = models.ForeignKey(Owner, on_delete=models.CASCADE)

        class Meta:
            app_label = "stories"

    class Twig(RegionalModel):
        leaf = models.ForeignKey(Leaf, on_delete=models.CASCADE)  # same placement: fine

        class Meta:
            app_label = "stories"

    class Badge(GlobalModel):
        leaves = models.ManyToManyField(Leaf)

        class Meta:
            app_label = "accounts"

    errors = checks.check_placement()
    assert sorted((e.id, e.obj.__name__, e.msg.split(" ")[0]) for e in errors) == [
        ("regions.E002", "Badge", "accounts.Badge.leaves"),
        ("regions.E002", "Leaf", "stories.Leaf.owner"),
    ]
    assert all("no foreign key may cross databases" in e.msg for e in errors)


def test_project_models_pass_the_placement_checks():
    assert checks.check_placement() == []


def test_manage_py_check_passes():
    """The real project configuration passes every system check, ours included."""
    call_command("check", fail_level="WARNING")


@pytest.mark.django_db(databases="__all__")
def test_check_reports_teams_on_a_shard_that_is_not_configured(team_factory):
    """A deployment that dropped a shard still holding teams is stopped where Django runs
    database checks (migrate), with the shard and how many teams it holds."""
    team_factory("Alpha")
    lost = [team_factory("Beta"), team_factory("Gamma")]
    assert account_checks.check_team_shards(databases=["default"]) == []
    Team.objects.filter(pk__in=[t.pk for t in lost]).update(shard="retired-1")
    errors = account_checks.check_team_shards(databases=["default"])
    assert [e.id for e in errors] == ["regions.E003"]
    assert "2 team(s) live on shard 'retired-1'" in errors[0].msg
    # Only when database checks were asked for (as migrate and `check --database` do).
    assert account_checks.check_team_shards() == []
