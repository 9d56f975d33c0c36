"""Request rates per API key, per user and per anonymous address (DRF throttles on the cache).

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (env API_RATE_PER_KEY, ...), read on
each request so tests and operators can change them. A throttled request gets 429 with
Retry-After.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from api.access import api_key_of


class _Throttle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class ApiKeyThrottle(_Throttle):
    scope = "api_key"

    def get_cache_key(self, request, view):
        key = api_key_of(request)
        if key is None:
            return None
        # The prefix, not the row id: ids repeat across databases and test runs, prefixes don't.
        return self.cache_format % {"scope": self.scope, "ident": key.prefix}


class UserThrottle(_Throttle):
    scope = "api_user"

    def get_cache_key(self, request, view):
        if api_key_of(request) is not None or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class AnonThrottle(_Throttle):
    scope = "api_anon"

    def get_cache_key(self, request, view):
        if request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
