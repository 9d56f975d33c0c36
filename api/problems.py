"""Errors as RFC 9457 problem details (``application/problem+json``) with a stable ``code``.

Every error of the API has the same shape: ``type``, ``title``, ``status``, ``detail``, ``code``
(and ``errors`` per field for invalid input). Codes are part of the contract (docs/api.md); the
live table's rule errors (rooms.DomainError) keep their codes here too.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import IntegrityError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from pokerproject.errors import DomainError

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://planning-poker.invalid/problems/"

# Rule errors of the live table and the integrations, by code, to an HTTP status.
GAME_STATUS = {
    "forbidden": status.HTTP_403_FORBIDDEN,
    "unknown_story": status.HTTP_404_NOT_FOUND,
    "not_found": status.HTTP_404_NOT_FOUND,
    "no_active_round": status.HTTP_409_CONFLICT,
    "round_not_voting": status.HTTP_409_CONFLICT,
    "round_not_revealed": status.HTTP_409_CONFLICT,
    "round_in_progress": status.HTTP_409_CONFLICT,
    "backlog_done": status.HTTP_409_CONFLICT,
    "no_timer": status.HTTP_409_CONFLICT,
    "conflict": status.HTTP_409_CONFLICT,
    "too_many_webhooks": status.HTTP_409_CONFLICT,
    "moved": status.HTTP_409_CONFLICT,
    # Well-formed, as far as a JSON schema can say, but not processable (RFC 9110, 15.5.21).
    "repeated_external_key": status.HTTP_422_UNPROCESSABLE_ENTITY,
    # An import the schema allows (a CSV body is any text) but that cannot be read as stories.
    "invalid_rows": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "no_title_column": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "bad_csv": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "bad_encoding": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "not_text": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "empty": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "too_large": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "too_many_rows": status.HTTP_422_UNPROCESSABLE_ENTITY,
    # A well-formed deck that breaks a rule the schema cannot say (labels unique, two cards
    # besides the special ones, a name the team has not used).
    "invalid_deck": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "paused": status.HTTP_503_SERVICE_UNAVAILABLE,
}

TITLES = {
    400: "Invalid request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    503: "Service unavailable",
}


class ProblemError(exceptions.APIException):
    """An API error with an explicit status and code (for cases DRF has no class for)."""

    def __init__(self, detail: str, *, code: str, status_code: int) -> None:
        super().__init__(detail, code)
        self.status_code = status_code


def problem(status_code: int, code: str, detail: str, **extra) -> Response:
    body = {
        "type": TYPE_BASE + code,
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "code": code,
        **extra,
    }
    response = Response(body, status=status_code)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _first_code(codes) -> str:
    if isinstance(codes, str):
        return codes
    if isinstance(codes, list) and codes:
        return _first_code(codes[0])
    if isinstance(codes, dict) and codes:
        return _first_code(next(iter(codes.values())))
    return "error"


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        status_code = GAME_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST)
        # An edge's refusal may carry more (an import's rows and their errors).
        return problem(status_code, exc.code, exc.message, **getattr(exc, "problem_extra", {}))
    if isinstance(exc, IntegrityError):
        # The only constraint a client can break is one external key per team.
        return problem(409, "duplicate_external_key", "Another story already has that key.")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a server fault: Django's 500 handling and logging
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        detail = "The request is not valid; see errors."
        extra = {"errors": exc.detail if isinstance(exc.detail, dict) else {"": exc.detail}}
    else:
        code = _first_code(exc.get_codes()) if isinstance(exc, exceptions.APIException) else "error"
        detail = str(getattr(exc, "detail", exc))
        extra = {}
    result = problem(response.status_code, code, detail, **extra)
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            result[header] = response[header]
    return result


def problem_response(status_code: int, code: str, detail: str, **extra) -> JsonResponse:
    """The same problem document as `problem`, for plain Django views and middleware."""
    body = {
        "type": TYPE_BASE + code,
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


@csrf_exempt  # it changes nothing; without this an unmatched POST would get an HTML 403
def api_not_found(request, *args, **kwargs):
    """Any path under /api/v1/ that no route matches: a problem, not Django's HTML page."""
    return problem_response(404, "not_found", "No such API route.")
