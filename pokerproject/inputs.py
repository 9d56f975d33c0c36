"""Refuse request text that no database column can hold, before any view or query sees it.

PostgreSQL rejects a NUL in text (SQLite stores it, so the bug hides in the embedded mode), and a
lone surrogate is not Unicode text at all: it cannot be encoded to UTF-8 for the database, the
channel layer or a webhook. Query strings and form bodies are checked here for every request;
JSON bodies are checked by the serializers' fields (DRF's CharField refuses both).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.utils.translation import gettext, gettext_noop

from api.problems import problem_response

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
API_PREFIX = "/api/"
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def is_unstorable(text: str) -> bool:
    """True if ``text`` holds a NUL or a lone surrogate."""
    return _UNSTORABLE.search(text) is not None


def unstorable_fields(items: Iterable[tuple[str, list[str]]]) -> list[str]:
    """The names of the fields whose name or any value is unstorable, in order."""
    return [
        name
        for name, values in items
        if is_unstorable(name) or any(is_unstorable(value) for value in values)
    ]


class UnstorableInputMiddleware:
    """Answer 400 to a query string or form body with a NUL or a lone surrogate: a problem
    document under /api/, a page elsewhere."""

    MESSAGE = gettext_noop("Text may not contain NUL characters or unpaired surrogates.")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fields = unstorable_fields(request.GET.lists())
        # The pages' forms. Not the API's: it takes JSON only, and reading a form body here would
        # leave DRF an empty body instead of its 415 for the wrong media type.
        is_api = request.path_info.startswith(API_PREFIX)
        if not is_api and request.method == "POST" and request.content_type in FORM_CONTENT_TYPES:
            fields += unstorable_fields(request.POST.lists())
        if fields:
            return self._refuse(request, fields)
        return self.get_response(request)

    def _refuse(self, request: HttpRequest, fields: list[str]) -> HttpResponse:
        # A field name may itself be unstorable: show it escaped rather than echo it.
        names = [name.encode("unicode_escape").decode("ascii") for name in fields]
        if request.path_info.startswith(API_PREFIX):
            return problem_response(
                400,
                "invalid",
                "The request is not valid; see errors.",
                errors={name: [self.MESSAGE] for name in names},
            )
        body = render_to_string("400.html", {"message": gettext(self.MESSAGE)}, request=request)
        return HttpResponseBadRequest(body)
