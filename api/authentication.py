"""API keys for programs: ``Authorization: Bearer pk_live_…``. A key acts for ONE team."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from integrations.models import ApiKey
from integrations.services import KEY_PREFIX, api_key_use
from pokerproject import logs


class KeyPrincipal:
    """``request.user`` for a request made with an API key: authenticated, but no person.

    Views never treat it as a user: they read the key (``request.auth``) and its team.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.username = f"api-key:{key.prefix}"

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw = raw.strip()
        if not raw.startswith(KEY_PREFIX):
            raise exceptions.AuthenticationFailed("Malformed API key.", code="invalid_key")
        key = api_key_use(raw=raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.", code="invalid_key")
        # The request's log records name the key (its visible prefix, never the secret) and
        # its team; RequestContextMiddleware drops them with the request.
        logs.bind(api_key=key.prefix, team_id=key.team_id)
        return KeyPrincipal(key), key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return f'{self.keyword} realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pk_live_…",
            "description": "A team API key, created on the team's page by a facilitator.",
        }
