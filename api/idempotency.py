"""``Idempotency-Key`` on POST: the first response is stored per caller and replayed for repeats.

- Same key, same request (method, path, JSON body): the stored status and body, with
  ``Idempotent-Replayed: true``; nothing runs again.
- Same key while the first request still runs (a concurrent retry): wait for it (woken at once
  when it runs in this process, else looking again after pauses that double up to a second),
  then replay; so two concurrent copies create one object. After WAIT_SECONDS: 409
  ``idempotency_in_progress`` with Retry-After.
- The first request holds the key for a lease (IDEMPOTENCY_LEASE_SECONDS, 60 s): if its process
  died, a retry after the lease takes the key over and runs the request.
- Same key, different request: 422 ``idempotency_key_reused``.
- A request that fails with an exception or a 5xx stores nothing: retrying it runs it again.
Records expire after IDEMPOTENCY_TTL (24 h); a periodic task (api.tasks) deletes old ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from api.access import caller_id
from api.models import IdempotencyRecord
from api.problems import ProblemError

HEADER = "Idempotency-Key"
# 1 to 255 printable ASCII characters, no space at either end (the schema documents the same
# pattern): a header value that is empty, padded or not ASCII is a client's bug, refused with 400
# rather than silently treated as some other key or as no key.
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"
_KEY = re.compile(KEY_PATTERN)
IDEMPOTENCY_TTL = timedelta(hours=24)
WAIT_SECONDS = 10.0
FIRST_PAUSE, MAX_PAUSE = 0.05, 1.0  # a repeat's pauses between looks at another process's key
REPLAYED_HEADERS = ("Location",)


def _fingerprint(request: Request) -> str:
    # The query string too: ``?dry_run=true`` and its absence are different requests.
    canonical = json.dumps(
        {"method": request.method, "path": request.get_full_path(), "body": request.data},
        sort_keys=True,
        cls=DjangoJSONEncoder,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.status_code)
    for name, value in record.response_headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def _lease() -> timedelta:
    return timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)


def _lease_end(record: IdempotencyRecord) -> datetime:
    # A record written before leases existed holds its key for one lease from its creation.
    return record.locked_until or record.created_at + _lease()


def _claim(caller: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Insert the in-progress record; None if another request holds this key already."""
    try:
        with transaction.atomic(using="default"):
            return IdempotencyRecord.objects.create(
                caller=caller,
                key=key,
                fingerprint=fingerprint,
                locked_until=timezone.now() + _lease(),
            )
    except IntegrityError:
        return None


def _take_over(record: IdempotencyRecord) -> bool:
    """Take a record whose holder's lease is over (its process died). Only one retry wins: the
    update matches the lease it saw."""
    now = timezone.now()
    if _lease_end(record) > now:
        return False
    new_lease = now + _lease()
    taken = IdempotencyRecord.objects.filter(
        pk=record.pk, status_code__isnull=True, locked_until=record.locked_until
    ).update(locked_until=new_lease, created_at=now)
    if taken:
        record.locked_until, record.created_at = new_lease, now
    return bool(taken)


# Requests of this process holding a key, so a repeat arriving here wakes when it finishes
# instead of asking the database again and again.
_running: dict[tuple[str, str], threading.Event] = {}
_running_lock = threading.Lock()


def _wait(caller: str, key: str, *, pause: float, longest: float) -> None:
    """Wait for the holder of the key: until it finishes if it runs in this process (at most
    ``longest``), else ``pause`` before looking again."""
    with _running_lock:
        done = _running.get((caller, key))
    if done is not None:
        done.wait(longest)
    else:
        time.sleep(min(pause, longest))


def _in_progress(record: IdempotencyRecord) -> ProblemError:
    seconds = max(1, math.ceil((_lease_end(record) - timezone.now()).total_seconds()))
    error = ProblemError(
        "A request with this Idempotency-Key is still running; retry later.",
        code="idempotency_in_progress",
        status_code=409,
    )
    error.wait = seconds  # DRF's handler turns it into Retry-After
    return error


def _acquire(request: Request, caller: str, key: str) -> IdempotencyRecord | Response:
    """The record this request now holds, or the response to give instead (a replay)."""
    fingerprint = _fingerprint(request)
    records = IdempotencyRecord.objects.filter(caller=caller, key=key)
    records.filter(created_at__lt=timezone.now() - IDEMPOTENCY_TTL).delete()
    deadline = time.monotonic() + WAIT_SECONDS
    pause = FIRST_PAUSE
    while True:
        record = _claim(caller, key, fingerprint)
        if record is not None:
            return record
        existing = records.first()
        if existing is None:
            if time.monotonic() <= deadline:
                continue  # the first request failed and let go of the key: run it ourselves
            raise ProblemError(
                "This Idempotency-Key is contended; retry later.",
                code="idempotency_in_progress",
                status_code=409,
            )
        if existing.fingerprint != fingerprint:
            raise ProblemError(
                "This Idempotency-Key was used with a different request.",
                code="idempotency_key_reused",
                status_code=422,
            )
        if existing.status_code is not None:
            return _replay(existing)
        if _take_over(existing):
            return existing
        left = deadline - time.monotonic()
        lease_left = (_lease_end(existing) - timezone.now()).total_seconds()
        if left <= 0:
            raise _in_progress(existing)
        _wait(caller, key, pause=pause, longest=max(0.0, min(left, lease_left)))
        pause = min(pause * 2, MAX_PAUSE)


def run(request: Request, key: str, produce: Callable[[], Response]) -> Response:
    if not _KEY.fullmatch(key):
        raise ProblemError(
            "Idempotency-Key must be 1 to 255 printable ASCII characters, "
            "with no space at either end.",
            code="invalid_idempotency_key",
            status_code=400,
        )
    caller = caller_id(request)
    acquired = _acquire(request, caller, key)
    if isinstance(acquired, Response):
        return acquired
    record = acquired
    # Every write below matches the lease this request holds: if it ran so long that a retry
    # took the key over, the retry's record is left alone.
    mine = IdempotencyRecord.objects.filter(pk=record.pk, locked_until=record.locked_until)
    done = threading.Event()
    with _running_lock:
        _running[(caller, key)] = done
    try:
        try:
            response = produce()
        except BaseException:
            mine.delete()
            raise
        if response.status_code >= 500:
            mine.delete()
            return response
        mine.update(
            status_code=response.status_code,
            response_body=json.loads(json.dumps(response.data, cls=DjangoJSONEncoder)),
            response_headers={h: response[h] for h in REPLAYED_HEADERS if h in response},
            locked_until=None,
        )
        return response
    finally:
        with _running_lock:
            if _running.get((caller, key)) is done:
                del _running[(caller, key)]
        done.set()


def idempotent(method: Callable) -> Callable:
    """Honour Idempotency-Key on a DRF view's ``post``."""

    @wraps(method)
    def wrapper(self, request: Request, *args, **kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return method(self, request, *args, **kwargs)
        return run(request, key, lambda: method(self, request, *args, **kwargs))

    return wrapper


def purge_expired() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - IDEMPOTENCY_TTL
    ).delete()
    return deleted
