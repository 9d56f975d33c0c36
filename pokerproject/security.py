"""Response headers no Django setting gives: Permissions-Policy on every page, and no-store on
whatever a signed-in user (or an API caller) receives, so no shared or back-button cache keeps it.

Static files never reach this middleware (WhiteNoise answers them earlier) and keep their
far-future caching. The Content-Security-Policy comes from django-csp (settings.py).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

# No page of the app uses any of these browser features: deny them to every frame.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "usb",
        "xr-spatial-tracking",
    )
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        # A view that already said no-store (a secret shown once) keeps its exact header; one
        # that said public (the JavaScript catalogue, the same for everyone) keeps its caching.
        cache_control = response.get("Cache-Control", "")
        if (
            "no-store" not in cache_control
            and "public" not in cache_control
            and self._personal(request)
        ):
            add_never_cache_headers(response)
        return response

    @staticmethod
    def _personal(request: HttpRequest) -> bool:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return True
        # An API key's answers are as private as a session's (DRF authenticates inside the view).
        return "Authorization" in request.headers
