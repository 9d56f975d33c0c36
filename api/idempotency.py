"""``Idempotency-Key`` on POST: the first response is stored per caller and replayed for repeats.

- Same key, same request (method, path, JSON body): the stored status and body, with
  ``Idempotent-Replayed: true``; nothing runs again.
- Same key while the first request still runs (a concurrent retry): wait for it, then replay; so
  two concurrent copies create one object.
- Same key, different request: 422 ``idempotency_key_reused``.
- A request that fails with an exception or a 5xx stores nothing: retrying it runs it again.
Records expire after IDEMPOTENCY_TTL (24 h); a periodic task (api.tasks) deletes old ones.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from api.access import caller_id
from api.models import IdempotencyRecord
from api.problems import ProblemError

HEADER = "Idempotency-Key"
IDEMPOTENCY_TTL = timedelta(hours=24)
WAIT_SECONDS = 10.0
REPLAYED_HEADERS = ("Location",)


def _fingerprint(request: Request) -> str:
    canonical = json.dumps(
        {"method": request.method, "path": request.path, "body": request.data},
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


def _claim(caller: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Insert the in-progress record; None if another request holds this key already."""
    try:
        with transaction.atomic(using="default"):
            return IdempotencyRecord.objects.create(caller=caller, key=key, fingerprint=fingerprint)
    except IntegrityError:
        return None


def run(request: Request, key: str, produce: Callable[[], Response]) -> Response:
    if not key or len(key) > 255:
        raise ProblemError(
            "Idempotency-Key must be 1 to 255 characters.",
            code="invalid_idempotency_key",
            status_code=400,
        )
    caller = caller_id(request)
    fingerprint = _fingerprint(request)
    records = IdempotencyRecord.objects.filter(caller=caller, key=key)
    records.filter(created_at__lt=timezone.now() - IDEMPOTENCY_TTL).delete()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        record = _claim(caller, key, fingerprint)
        if record is not None:
            break
        existing = records.first()
        if existing is None and time.monotonic() <= deadline:
            continue  # the first request failed and let go of the key: run it ourselves
        if existing is None:
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
        if time.monotonic() > deadline:
            raise ProblemError(
                "A request with this Idempotency-Key is still running; retry later.",
                code="idempotency_in_progress",
                status_code=409,
            )
        time.sleep(0.05)
    try:
        response = produce()
    except BaseException:
        record.delete()
        raise
    if response.status_code >= 500:
        record.delete()
        return response
    record.status_code = response.status_code
    record.response_body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
    record.response_headers = {h: response[h] for h in REPLAYED_HEADERS if h in response}
    record.save(update_fields=["status_code", "response_body", "response_headers"])
    return response


def idempotent(method: Callable) -> Callable:
    """Honour Idempotency-Key on a DRF view's ``post``."""

    @wraps(method)
    def wrapper(self, request: Request, *args, **kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return method(self, request, *args, **kwargs)
        return run(request, key.strip(), lambda: method(self, request, *args, **kwargs))

    return wrapper


def purge_expired() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - IDEMPOTENCY_TTL
    ).delete()
    return deleted
