"""Who is on a socket: the logged-in user of the Django session named by the socket's cookie."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.auth import UserLazyObject, get_user
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.http.cookie import parse_cookie
from django.utils.crypto import constant_time_compare
from django.utils.functional import empty

from accounts.models import Membership, User
from accounts.selectors import membership_get
from accounts.sql import membership_read, session_preload


class NotSignedIn(PermissionError):
    """The socket's session has no signed-in user."""


class SessionUserMiddleware(BaseMiddleware):
    """Put ``scope["session"]`` and ``scope["user"]`` in a WebSocket's scope, reading only.

    Channels' ``AuthMiddlewareStack`` does the same but wraps the socket's ``send`` to save a
    modified session, checking the session on every outgoing frame. A socket at the table never
    writes its session (logging in and out happen over HTTP), and a worker sends thousands of
    frames a second, so this one leaves ``send`` alone. The user comes from Channels' own
    ``get_user``: a session whose password hash no longer matches (the password changed) gives
    an anonymous user and is flushed, as over HTTP.

    The user is read when first needed, by ``scope_user(scope)`` on a database thread: the table's
    socket reads it there together with the membership, one trip to that thread instead of two
    (docs/performance.md, round 12). Reading ``scope["user"]`` before that raises.
    """

    def __init__(self, inner):
        super().__init__(inner)
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope, receive, send):
        cookies = {}
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                cookies = parse_cookie(value.decode("latin1"))
                break
        session = self.session_store(cookies.get(settings.SESSION_COOKIE_NAME))
        scope = dict(scope, cookies=cookies, session=session, user=UserLazyObject())
        return await self.inner(scope, receive, send)


def scope_user(scope: dict) -> Any:
    """The signed-in user of the scope's session (an anonymous user if none), read once; call
    it on a database thread (it queries the session and the user)."""
    user = scope["user"]
    if user._wrapped is empty:
        # The session's row in one plain statement (accounts.sql), then Channels' get_user
        # without its own trip to the database thread: the caller is on it.
        session_preload(scope["session"])
        user._wrapped = get_user.func(scope)
    return user._wrapped


def scope_membership(scope: dict, team_slug: str) -> Membership:
    """The membership of the scope's signed-in user in the team; NotSignedIn or NotAMember if
    there is none. Call it on a database thread.

    Two statements in the usual case: the session's row, then the membership with its team and
    user, whose user is checked as Channels' ``get_user`` checks it (its backend still
    configured, allowed to sign in, the session's password hash current). Anything else (no
    membership, a backend that reads users its own way, a stale hash) takes the general path,
    ``scope_user`` then ``membership_get``, which decides as it always did.
    """
    session = scope["session"]
    session_preload(session)
    membership = _usual_membership(session, team_slug)
    if membership is not None:
        scope["user"]._wrapped = membership.user
        return membership
    user = scope_user(scope)
    if not user.is_authenticated:
        raise NotSignedIn
    return membership_get(team_slug=team_slug, user=user)


def _usual_membership(session: Any, team_slug: str) -> Membership | None:
    try:
        user_id = User._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
        session_hash = session[HASH_SESSION_KEY]
    except (KeyError, ValidationError):
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    backend = load_backend(backend_path)
    if not isinstance(backend, ModelBackend) or type(backend).get_user is not ModelBackend.get_user:
        return None
    membership = membership_read(team_slug=team_slug, user_id=user_id)
    if membership is None:
        return None
    user = membership.user
    if not backend.user_can_authenticate(user):
        return None
    if not (session_hash and constant_time_compare(session_hash, user.get_session_auth_hash())):
        return None
    return membership
