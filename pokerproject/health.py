"""Liveness and readiness probes for load balancers and orchestrators, and the metrics export.

/healthz is public (it tells nothing). /readyz names every database and service with its
latency or error, and /metrics exposes traffic and internals: both need
``Authorization: Bearer <METRICS_TOKEN>``. Without a token they are open in the embedded
mode (DJANGO_DEBUG on) and do not exist (404) in a deployment.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import wraps

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache

from pokerproject import metrics as project_metrics

logger = logging.getLogger(__name__)


def _bearer(request: HttpRequest) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None if the caller may see the probes (see the module's docstring), else the answer."""
    token = settings.METRICS_TOKEN
    if not token:
        if settings.METRICS_OPEN_WITHOUT_TOKEN:
            return None
        raise Http404("No such page.")
    if not constant_time_compare(_bearer(request), token):
        response = JsonResponse({"detail": "A bearer token is required."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return None


def token_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve ``view`` only to a caller with the metrics token (see the module's docstring)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return _refusal(request) or view(request, *args, **kwargs)

    return guarded


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
@token_required
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: every database alias, the cache and the channel layer answer."""
    components = {f"db:{alias}": _timed(_database(alias)) for alias in connections}
    components["cache"] = _timed(_cache)
    components["channel_layer"] = _timed(_channel_layer)
    ok = all(c["ok"] for c in components.values())
    return JsonResponse({"ok": ok, "components": components}, status=200 if ok else 503)


# Collecting reads every process's files and probes the shards: on a thread of its own, not on
# the thread that Django's sync views share with the live table's database work
# (rooms.realtime.dbpool), which would stall the worker's votes for the length of a scrape.
_exporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics")


def _export() -> tuple[bytes, str]:
    try:
        return project_metrics.exposition()
    finally:
        # The scrape-time collectors read the shards: hand this thread's connections back to
        # their pools, as the end of a request would.
        connections.close_all()


@never_cache
async def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format: this process, or every process of the host
    (pokerproject.metrics)."""
    refused = _refusal(request)
    if refused is not None:
        return refused
    loop = asyncio.get_running_loop()
    body, content_type = await loop.run_in_executor(_exporter, _export)
    return HttpResponse(body, content_type=content_type)
