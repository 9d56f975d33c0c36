"""Fixtures shared by the API and integrations tests: two teams, keys with each scope set, and
API clients authenticated by key or by session."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from accounts.roles import Role
from conftest import facilitator_of
from integrations import services
from stories import services as story_services


def key_client(raw: str | None) -> APIClient:
    client = APIClient()
    if raw:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def session_client(user, *, enforce_csrf: bool = False) -> APIClient:
    client = APIClient(enforce_csrf_checks=enforce_csrf)
    client.force_login(user)
    return client


def make_team(team_factory, add_member, name: str) -> SimpleNamespace:
    team = team_factory(name)
    lead = facilitator_of(team)
    low = name.lower()
    voter = add_member(team, f"{low}-voter")
    observer = add_member(team, f"{low}-observer", Role.OBSERVER)
    _, rw = services.api_key_create(actor=lead, name="bot", scopes=["read", "write"])
    _, ro = services.api_key_create(actor=lead, name="reader", scopes=["read"])
    _, wh = services.api_key_create(actor=lead, name="hooks", scopes=["webhooks"])
    stories = [
        story_services.story_create(
            membership=lead, title=f"{name} story {n}", external_key=f"{name[:3].upper()}-{n}"
        )
        for n in (1, 2)
    ]
    return SimpleNamespace(
        team=team,
        slug=team.slug,
        shard=team.shard,
        lead=lead,
        voter=voter,
        observer=observer,
        rw_key=rw,
        ro_key=ro,
        wh_key=wh,
        stories=stories,
        rw=key_client(rw),
        ro=key_client(ro),
        wh=key_client(wh),
        as_lead=session_client(lead.user),
        as_observer=session_client(observer.user),
    )


@pytest.fixture
def alpha(team_factory, add_member):
    return make_team(team_factory, add_member, "Alpha")


@pytest.fixture
def beta(team_factory, add_member):
    return make_team(team_factory, add_member, "Beta")


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()
