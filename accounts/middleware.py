"""Who is on a socket: the logged-in user of the Django session named by the socket's cookie."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.auth import UserLazyObject, get_user
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.http.cookie import parse_cookie
from django.utils.functional import empty

from accounts.sql import session_preload


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
