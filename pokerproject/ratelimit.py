"""Fixed-window counters in the shared cache, for the doors a stranger can knock on without an
account (guest joins, password-reset e-mails). Every worker counts in the same cache, so the
limit holds across the cluster; with the embedded cache it holds per process."""

from __future__ import annotations

from django.core.cache import cache


def allow(key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one more event under ``key``; False once the window holds more than ``limit``."""
    window = max(1, window_seconds)
    key = f"ratelimit:{key}"
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this is the window's first
        cache.add(key, 1, timeout=window)
        count = 1
    return count <= limit
