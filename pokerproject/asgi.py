"""ASGI entry point: Django for HTTP, the live table for WebSockets."""

import gc
import os
import sys

from django.core.asgi import get_asgi_application

from pokerproject import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokerproject.settings")
# Before the handler loads the middleware: Django's instrumentation adds its own (OTEL_*).
tracing.setup()
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from accounts.middleware import SessionUserMiddleware  # noqa: E402  (needs Django set up first)
from rooms.realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            SessionUserMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)


def _tune_gc() -> None:
    """Keep the cyclic GC from pausing a worker that holds thousands of sockets.

    Everything imported so far lives as long as the process: ``gc.freeze()`` moves it out of the
    collector's generations so full collections stop scanning it. ``GC_THRESHOLDS`` ("g0,g1,g2")
    makes collections rarer. Both are process knobs, read from the environment here; the embedded
    default leaves the interpreter's own settings alone. Measured in docs/performance.md.
    """
    thresholds = os.environ.get("GC_THRESHOLDS", "")
    if thresholds:
        gc.set_threshold(*(int(part) for part in thresholds.split(",")))
    if os.environ.get("GC_FREEZE", "").lower() in ("1", "true", "yes"):
        gc.collect()
        gc.freeze()


def _tune_switch_interval() -> None:
    """Let the event loop take the GIL back sooner from the database thread.

    The loop releases the GIL on every socket write; while the database thread runs Python (the
    ORM), the loop then waits up to the interpreter's switch interval (5 ms) to get it back, for
    each write. ``PY_SWITCH_INTERVAL_MS`` shortens that wait. Measured in docs/performance.md.
    """
    interval_ms = os.environ.get("PY_SWITCH_INTERVAL_MS", "")
    if interval_ms:
        sys.setswitchinterval(float(interval_ms) / 1000)


_tune_gc()
_tune_switch_interval()
