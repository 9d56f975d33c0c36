"""Every route, every method, with each kind of caller that must NOT get through: no key, the
other team's key, a key without the scope, another team's object ids, a non-member's session.
The answers are exactly 401, 404 and 403 as documented in docs/api.md, and no response ever
carries the other team's data."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from integrations import services
from integrations.tests.fixtures import key_client, session_client
from rooms import services as table

pytestmark = pytest.mark.django_db(databases="__all__")

READ, WRITE, HOOKS = "read", "write", "webhooks"

# (method, path under /api/v1/teams/<slug>/, scope it needs, JSON body)
ROUTES = [
    ("get", "", READ, None),
    ("get", "stories/", READ, None),
    ("post", "stories/", WRITE, {"title": "x"}),
    ("post", "stories/upsert/", WRITE, {"stories": [{"external_key": "Z-1", "title": "z"}]}),
    ("get", "stories/{story}/", READ, None),
    ("patch", "stories/{story}/", WRITE, {"title": "y"}),
    ("delete", "stories/{story}/", WRITE, None),
    ("post", "stories/{story}/move/", WRITE, {"offset": 1}),
    ("get", "estimates/", READ, None),
    ("get", "rounds/", READ, None),
    ("get", "rounds/{round}/", READ, None),
    ("get", "rounds/{round}/votes/", READ, None),
    ("get", "table/", READ, None),
    ("post", "table/rounds/", WRITE, {}),
    ("post", "table/reveal/", WRITE, None),
    ("post", "table/accept/", WRITE, {"value": "5"}),
    ("get", "webhooks/", HOOKS, None),
    ("post", "webhooks/", HOOKS, {"url": "https://example.com/hook"}),
    ("get", "webhooks/{webhook}/", HOOKS, None),
    ("delete", "webhooks/{webhook}/", HOOKS, None),
    ("post", "webhooks/{webhook}/rotate-secret/", HOOKS, None),
    ("get", "webhooks/{webhook}/deliveries/", HOOKS, None),
]
ROUTE_IDS = [f"{m.upper()} {p or '.'}" for m, p, _, _ in ROUTES]
HAS_OBJECT = [r for r in ROUTES if "{" in r[1]]


@pytest.fixture
def world(alpha, beta):
    for t in (alpha, beta):
        table.round_start(membership=t.lead, story_id=t.stories[0].pk)
        table.vote_cast(membership=t.lead, value="5")
        t.round = table.round_reveal(membership=t.lead).round
        t.webhook, _ = services.webhook_endpoint_create(
            actor=t.lead, url=f"https://example.com/{t.slug}", events=[]
        )
    return SimpleNamespace(alpha=alpha, beta=beta)


def path(owner, ids_from, template: str) -> str:
    filled = template.format(
        story=ids_from.stories[1].pk, round=ids_from.round.pk, webhook=ids_from.webhook.pk
    )
    return f"/api/v1/teams/{owner.slug}/{filled}"


def call(client, method: str, url: str, body):
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


def assert_problem(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/problem+json"
    if code:
        assert response.json()["code"] == code


def assert_nothing_of(team, response) -> None:
    text = response.content.decode()
    for secret in (team.slug, team.stories[0].title, str(team.stories[1].pk), str(team.round.pk)):
        assert secret not in text


@pytest.mark.parametrize(("method", "template", "scope", "body"), ROUTES, ids=ROUTE_IDS)
def test_no_key_is_401(world, anonymous, method, template, scope, body):
    response = call(anonymous, method, path(world.alpha, world.alpha, template), body)
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(("method", "template", "scope", "body"), ROUTES, ids=ROUTE_IDS)
def test_a_revoked_or_unknown_key_is_401(world, method, template, scope, body):
    services.api_key_revoke(
        actor=world.alpha.lead, key_id=world.alpha.team.api_keys.get(name="bot").pk
    )
    for client in (world.alpha.rw, key_client("pk_live_not-a-real-key")):
        response = call(client, method, path(world.alpha, world.alpha, template), body)
        assert_problem(response, 401, "invalid_key")


@pytest.mark.parametrize(("method", "template", "scope", "body"), ROUTES, ids=ROUTE_IDS)
def test_the_other_teams_key_gets_404(world, method, template, scope, body):
    # Beta's key with every scope it has, on Alpha's team and Alpha's objects.
    for client in (world.beta.rw, world.beta.ro, world.beta.wh):
        response = call(client, method, path(world.alpha, world.alpha, template), body)
        assert_problem(response, 404, "not_found")
        assert_nothing_of(world.alpha, response)


@pytest.mark.parametrize(("method", "template", "scope", "body"), ROUTES, ids=ROUTE_IDS)
def test_a_non_members_session_gets_404(world, make_user, method, template, scope, body):
    stranger = session_client(make_user("stranger"))
    response = call(stranger, method, path(world.alpha, world.alpha, template), body)
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(("method", "template", "scope", "body"), ROUTES, ids=ROUTE_IDS)
def test_a_key_without_the_scope_gets_403_and_with_it_gets_through(
    world, method, template, scope, body
):
    a = world.alpha
    lacking = {READ: a.wh, WRITE: a.ro, HOOKS: a.ro}[scope]
    response = call(lacking, method, path(a, a, template), body)
    assert_problem(response, 403, "insufficient_scope")
    having = {READ: a.ro, WRITE: a.rw, HOOKS: a.wh}[scope]
    allowed = call(having, method, path(a, a, template), body)
    assert allowed.status_code < 400 or allowed.status_code == 409, allowed.content[:300]
    assert_nothing_of(world.beta, allowed)


@pytest.mark.parametrize(
    ("method", "template", "scope", "body"),
    HAS_OBJECT,
    ids=[f"{m} {p}" for m, p, _, _ in HAS_OBJECT],
)
def test_another_teams_object_under_ones_own_team_is_404(world, method, template, scope, body):
    a = world.alpha
    client = {READ: a.ro, WRITE: a.rw, HOOKS: a.wh}[scope]
    response = call(client, method, path(a, world.beta, template), body)
    assert_problem(response, 404)
    assert_nothing_of(world.beta, response)


def test_my_teams_with_a_key_is_only_its_team(world):
    assert [t["slug"] for t in world.beta.ro.get("/api/v1/teams/").json()] == [world.beta.slug]
    assert world.beta.wh.get("/api/v1/teams/").json() == []


def test_session_writes_need_the_csrf_token(world):
    client = session_client(world.alpha.lead.user, enforce_csrf=True)
    response = client.post(
        f"/api/v1/teams/{world.alpha.slug}/stories/", {"title": "x"}, format="json"
    )
    assert_problem(response, 403)
    assert "CSRF" in response.json()["detail"]
    client.get(f"/teams/{world.alpha.slug}/")  # the page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    ok = client.post(
        f"/api/v1/teams/{world.alpha.slug}/stories/",
        {"title": "x"},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert ok.status_code == 201
