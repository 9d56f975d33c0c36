"""Shared fixtures: users, teams on their shard, memberships in each role."""

import copy
import uuid

import pytest
from django.conf import settings
from django.utils import translation

from accounts import services as account_services
from accounts.models import Membership, User
from accounts.roles import Role

ALL_DATABASES = "__all__"


def pytest_configure(config):
    # Every test runs with the shard guard: a query reaching a shard other than the team's fails.
    settings.SHARD_GUARD = True
    # No connection pool in the test process: async tests and their sync_to_async threads end
    # without the end of a unit of work (no request_finished), so each would keep a pooled
    # connection for good and empty the pool. Servers and workers the tests start use it, as
    # deployed; the `pooled` fixture gives one test a pool of its own.
    for database in settings.DATABASES.values():
        database.get("OPTIONS", {}).pop("pool", None)


def pytest_collection_modifyitems(config, items):
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread
    for as long as its session-wide browser lives, and a test after it that calls asyncio.run
    (the fault suite's clients, a load on the observed cluster) would find that loop running."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _rate_limits_lifted(settings):
    """The guest-join limit counts per address in the cache, which outlives a test: every test
    client comes from 127.0.0.1 (and password resets per address likewise). The tests of the
    limits set them back."""
    settings.GUEST_JOIN_LIMIT = 10**6
    settings.PASSWORD_RESET_LIMIT = 10**6


@pytest.fixture(autouse=True)
def _outbox_tasks_inline(settings):
    """Eager outbox tasks run inside the commit, so a test observes a delivery (or a Jira
    write-back) as soon as the change is made; tests about the background threads switch it
    back on."""
    settings.OUTBOX_EAGER_IN_BACKGROUND = False


@pytest.fixture(autouse=True)
def _isolated_channel_layer(settings):
    """A fresh channel layer for every test, under its own key prefix on Redis.

    A Redis layer binds its connections to the event loop that first used it, and each async test
    has its own loop; the prefix keeps tests (and concurrent runs on one Redis) apart.
    """
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    config = layers["default"].setdefault("CONFIG", {})
    if "prefix" in config:
        config["prefix"] = f"test-{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = layers  # Channels drops its cached layers on this setting change


@pytest.fixture
def make_user(db):
    def make(username: str, password: str = "pw-for-tests") -> User:
        user = User.objects.create_user(username=username, password=password)
        user.raw_password = password
        return user

    return make


@pytest.fixture
def team_factory(make_user):
    """Create a team with a facilitator; ``add(team, name, role)`` adds members."""

    def make(name: str = "Alpha", facilitator: User | None = None, region: str | None = None):
        owner = facilitator or make_user(f"{name.lower()}-lead")
        return account_services.team_create(name=name, creator=owner, region=region)

    return make


@pytest.fixture
def add_member(make_user):
    def add(team, username: str, role: Role = Role.VOTER) -> Membership:
        user = make_user(username)
        membership = Membership.objects.create(team=team, user=user, role=role)
        return Membership.objects.select_related("team", "user").get(pk=membership.pk)

    return add


def facilitator_of(team) -> Membership:
    return (
        Membership.objects.select_related("team", "user")
        .filter(team=team, role=Role.FACILITATOR)
        .first()
    )


@pytest.fixture
def shard_aliases() -> list[str]:
    return [shard.alias for shard in settings.SHARDS]


@pytest.fixture(autouse=True)
def _default_language_afterwards():
    """LocaleMiddleware activates a request's language for the rest of the thread: a German
    request in one test must not leave the next one (which expects English) in German."""
    yield
    translation.deactivate()
