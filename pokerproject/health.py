"""Liveness and readiness probes for load balancers and orchestrators."""

import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process serves requests. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        logger.warning("readiness check failed: %s", type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _database(alias: str):
    def check() -> None:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")

    return check


def _cache() -> None:
    cache.set("readyz", "1", 5)
    if cache.get("readyz") != "1":
        raise RuntimeError("cache did not keep a value")


def _channel_layer() -> None:
    layer = get_channel_layer()
    async_to_sync(layer.group_send)("readyz", {"type": "readyz.ping"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: every database alias, the cache and the channel layer answer."""
    components = {f"db:{alias}": _timed(_database(alias)) for alias in connections}
    components["cache"] = _timed(_cache)
    components["channel_layer"] = _timed(_channel_layer)
    ok = all(c["ok"] for c in components.values())
    return JsonResponse({"ok": ok, "components": components}, status=200 if ok else 503)
