"""Who is on a table's socket (accounts.middleware.scope_membership) and the reads behind it in
plain statements (accounts.sql): the same membership, team, user and session data as the ORM and
Django's session store give, the same refusals as Channels' get_user, in two statements."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

import pytest
from channels.auth import UserLazyObject
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends import cached_db, db
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts import selectors, sql
from accounts.middleware import NotSignedIn, scope_membership, scope_user
from accounts.models import Membership
from accounts.roles import Role

pytestmark = pytest.mark.django_db(databases="__all__")


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_membership_is_the_one_the_orm_builds(team_factory, add_member):
    team = team_factory("Alpha")
    bob = add_member(team, "bob", Role.OBSERVER)
    orm = Membership.objects.select_related("team", "user").get(pk=bob.pk)

    read = sql.membership_read(team_slug=team.slug, user_id=bob.user_id)

    assert type(read) is Membership
    assert _fields(read) == _fields(orm)
    assert _fields(read.team) == _fields(orm.team)
    assert _fields(read.user) == _fields(orm.user)
    assert read._state.db == orm._state.db
    assert not read._state.adding


def test_its_team_and_user_cost_no_query(team_factory, add_member, django_assert_num_queries):
    team = team_factory("Alpha")
    bob = add_member(team, "bob")
    with django_assert_num_queries(1):
        read = selectors.membership_get(team_slug=team.slug, user=bob.user)
        assert (read.team.slug, read.user.username, read.role) == (team.slug, "bob", "voter")


def test_no_membership_of_another_team_or_of_an_unknown_slug(team_factory, add_member):
    alpha, beta = team_factory("Alpha"), team_factory("Beta")
    bob = add_member(alpha, "bob")
    assert sql.membership_read(team_slug=beta.slug, user_id=bob.user_id) is None
    assert sql.membership_read(team_slug="no-such-team", user_id=bob.user_id) is None
    with pytest.raises(selectors.NotAMember):
        selectors.membership_get(team_slug=beta.slug, user=bob.user)


def _scope(client) -> dict:
    store = import_module("django.contrib.sessions.backends.db").SessionStore
    return {"session": store(client.cookies["sessionid"].value), "user": UserLazyObject()}


def test_a_signed_in_session_reads_its_user_in_two_statements(
    client, make_user, django_assert_num_queries
):
    alice = make_user("alice")
    client.force_login(alice)
    scope = _scope(client)
    with django_assert_num_queries(2):  # the session's row, the user's
        user = scope_user(scope)
    assert user == alice
    assert scope["session"][SESSION_KEY] == str(alice.pk)
    assert scope["session"][BACKEND_SESSION_KEY]


def test_an_expired_or_unknown_session_is_nobody(client, make_user):
    client.force_login(make_user("alice"))
    key = client.cookies["sessionid"].value
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    scope = _scope(client)
    assert not scope_user(scope).is_authenticated
    assert scope["session"].session_key is None  # as SessionStore.load forgets it

    unknown = {"session": db.SessionStore("x" * 32), "user": UserLazyObject()}
    assert not scope_user(unknown).is_authenticated


def test_a_session_from_before_a_password_change_is_nobody(client, make_user):
    alice = make_user("alice")
    client.force_login(alice)
    alice.set_password("another-password")
    alice.save()
    scope = _scope(client)
    assert scope["session"][HASH_SESSION_KEY]  # still the old hash
    scope = _scope(client)
    assert not scope_user(scope).is_authenticated


def test_other_session_engines_load_themselves(client, make_user):
    client.force_login(make_user("alice"))
    session = cached_db.SessionStore(client.cookies["sessionid"].value)
    sql.session_preload(session)
    assert not hasattr(session, "_session_cache")
    assert session[SESSION_KEY]  # it loads on first use, as it always did


def test_a_member_is_identified_in_two_statements(
    client, team_factory, add_member, django_assert_num_queries
):
    team = team_factory("Alpha")
    bob = add_member(team, "bob")
    client.force_login(bob.user)
    scope = _scope(client)
    with django_assert_num_queries(2):  # the session's row, the membership with team and user
        membership = scope_membership(scope, team.slug)
    assert membership.pk == bob.pk
    assert membership.team.slug == team.slug
    assert scope_user(scope) == bob.user  # what the socket's scope says, with no third read


def test_a_signed_in_non_member_is_not_a_member(client, team_factory, add_member):
    alpha, beta = team_factory("Alpha"), team_factory("Beta")
    client.force_login(add_member(alpha, "bob").user)
    with pytest.raises(selectors.NotAMember):
        scope_membership(_scope(client), beta.slug)


def test_no_session_is_not_signed_in(team_factory):
    team = team_factory("Alpha")
    scope = {"session": db.SessionStore(None), "user": UserLazyObject()}
    with pytest.raises(NotSignedIn):
        scope_membership(scope, team.slug)


def test_a_member_whose_password_changed_is_not_signed_in(client, team_factory, add_member):
    team = team_factory("Alpha")
    bob = add_member(team, "bob")
    client.force_login(bob.user)
    bob.user.set_password("another-password")
    bob.user.save()
    scope = _scope(client)
    with pytest.raises(NotSignedIn):
        scope_membership(scope, team.slug)
    # Flushed, as Channels' get_user flushes it: the old session is gone for good.
    assert not Session.objects.filter(session_key=client.cookies["sessionid"].value).exists()


def test_a_deactivated_member_is_not_signed_in(client, team_factory, add_member):
    team = team_factory("Alpha")
    bob = add_member(team, "bob")
    client.force_login(bob.user)
    bob.user.is_active = False
    bob.user.save()
    with pytest.raises(NotSignedIn):
        scope_membership(_scope(client), team.slug)


def test_a_session_of_a_backend_no_longer_configured_is_not_signed_in(
    client, team_factory, add_member, settings
):
    team = team_factory("Alpha")
    model_backend = "django.contrib.auth.backends.ModelBackend"
    client.force_login(add_member(team, "bob").user, backend=model_backend)
    settings.AUTHENTICATION_BACKENDS = [
        path for path in settings.AUTHENTICATION_BACKENDS if path != model_backend
    ]
    with pytest.raises(NotSignedIn):
        scope_membership(_scope(client), team.slug)
