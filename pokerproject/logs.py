"""Structured logs: who and where each record is about, in JSON or readable text, with secrets
kept out.

Every record carries the fields bound for the code that logs it: ``request_id`` (an HTTP
request: the load balancer's ``X-Request-ID`` or a fresh one), ``connection_id`` (a socket),
``user_id``, ``team_id``, ``shard``, ``region``; on a socket ``command`` and ``command_id``
(the frame's own request_id); with an API key its visible prefix ``api_key``; in a Celery task
``task`` and ``task_id``. They are context variables: bound by ``RequestContextMiddleware``
for a request, by the socket at connect and per command (``own``), by a Celery task
for its run; they follow the work onto the database thread and the outbox's background threads
(both copy the context).

``LOG_FORMAT`` (settings.py) picks ``json`` (one object a line, the cluster and deploy/) or
``text`` (``make run``). Whatever the level, loggers that write request or frame contents (SQL
with its parameters, the websockets library's frames) are held at INFO, and ``RedactFilter``
blanks API keys, webhook secrets, session and CSRF cookies, passwords and bearer tokens in
whatever reaches a handler (docs/operations.md, "Logs and traces").
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

if TYPE_CHECKING:  # settings.py imports this module: no Django at import time
    from django.http import HttpRequest, HttpResponse

FIELDS = (
    "request_id",
    "connection_id",
    "user_id",
    "team_id",
    "shard",
    "region",
    "command",
    "command_id",
    "api_key",
    "task",
    "task_id",
)

_EMPTY: Mapping[str, Any] = {}
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "poker_log_context", default=_EMPTY
)


def bind(**fields: Any) -> contextvars.Token:
    """Add ``fields`` to every record logged from this context on; ``unbind(token)`` undoes it."""
    return _context.set({**_context.get(), **fields})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


def bound() -> Mapping[str, Any]:
    """The fields bound in this context."""
    return _context.get()


@contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """Bind ``fields`` inside the block only."""
    token = bind(**fields)
    try:
        yield
    finally:
        _context.reset(token)


def own(**fields: Any) -> dict[str, Any]:
    """Bind ``fields`` for the rest of this context (a socket's task) as a mapping its owner may
    change in place: a plain dict assignment per command instead of a new context each time.
    Work handed off from this context (a database call) sees the changes while it runs."""
    mapping = {**_context.get(), **fields}
    _context.set(mapping)
    return mapping


def detached() -> contextvars.Context:
    """A copy of this context without its log fields, for a task that serves more than the
    one that starts it (a worker's fan-out reader, a batch of many sockets' commands)."""
    context = contextvars.copy_context()
    context.run(_context.set, _EMPTY)
    return context


def new_id() -> str:
    return uuid.uuid4().hex


# --- records --------------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Put the bound fields on each record (a handler's filter, so every logger's records get
    them), and this deployment's region where nothing more precise is bound."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.region = os.environ.get("REGION", "eu")

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        for name in FIELDS:
            value = fields.get(name)
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        if getattr(record, "region", None) is None:
            record.region = self.region
        return True


# A secret in text: an API key, a webhook signing secret, a cookie or form field that is one, an
# Authorization header's credential. Kept as narrow as the formats are, so ids stay readable.
_SECRET = re.compile(
    r"(?P<key>pk_live_[A-Za-z0-9_\-]+)"
    r"|(?P<whsec>whsec_[A-Za-z0-9+/=]+)"
    r"|(?P<pair>\b(?:sessionid|csrftoken|csrfmiddlewaretoken|password\d?|new_password\d?"
    r"|old_password|secret|token|api_key)\b['\"]?\s*[=:]\s*['\"]?)[^\s;&,'\"]+"
    r"|(?P<auth>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=\-]+",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with every secret-shaped part replaced by ``[redacted]``."""

    def replace(match: re.Match) -> str:
        prefix = match.group("pair") or match.group("auth") or ""
        return prefix + REDACTED

    return _SECRET.sub(replace, text)


class RedactFilter(logging.Filter):
    """Blank secrets in a record's message and in its traceback's text, whichever logger wrote
    it (a library's DEBUG line, an exception that quotes its input)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RequestPathFilter(logging.Filter):
    """Django's own request records (``django.request``: "Not Found: /invite/<token>/") name the
    path and carry the request object: the path becomes the route pattern where the URL
    resolved (the access line's rule), and the request object is dropped (JSON would print it,
    path and all). Django writes them after the middleware is done: the request id comes from
    the request."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = record.__dict__.pop("request", None)
        if request is None:
            return True
        match = getattr(request, "resolver_match", None)
        path = getattr(request, "path", "")
        if match is not None and path and isinstance(record.args, tuple):
            route = "/" + match.route
            record.args = tuple(route if arg == path else arg for arg in record.args)
        request_id = getattr(request, "request_id", None)
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message``, the bound fields,
    any ``extra=``, and ``exc_info`` for a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        kwargs.setdefault(
            "rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"}
        )
        kwargs.setdefault("json_ensure_ascii", False)
        # uvicorn adds an ANSI-coloured copy of its messages.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "color_message"])
        super().__init__(*args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # ISO 8601 in UTC with milliseconds: what log stores parse without a pattern.
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{seconds}.{int(record.msecs):03d}Z"

    # python-json-logger widens the return type: a list when exc_info_as_array is on.
    def formatException(self, ei: Any) -> str | list[str]:  # type: ignore[override]
        # This formatter renders exc_info itself rather than the filter's redacted exc_text.
        text = super().formatException(ei)
        return redact(text) if isinstance(text, str) else [redact(line) for line in text]


class TextFormatter(logging.Formatter):
    """A readable line for a terminal, the bound fields at its end: ``[team=3 user=7 ...]``."""

    SHORT = {"request_id": "req", "connection_id": "conn", "user_id": "user", "team_id": "team"}

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, **kwargs: Any):
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s %(message)s", datefmt)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{self.SHORT.get(name, name)}={getattr(record, name)}"
            for name in FIELDS
            if name != "region" and getattr(record, name, None) is not None
        ]
        if not fields:
            return line
        head, sep, tail = line.partition("\n")
        return f"{head} [{' '.join(fields)}]{sep}{tail}"


# Loggers that write what a request or frame carried (SQL with its parameters: vote values,
# session keys; the websockets library's frames: votes; HTTP clients' headers) never go below
# INFO, whatever LOG_LEVEL says.
QUIET = ("django.db.backends", "websockets", "httpcore", "hpack", "asyncio")


def config(*, fmt: str = "text", level: str = "INFO") -> dict:
    """The LOGGING setting: one console handler in ``fmt`` ("json" or "text") at ``level``."""
    if fmt not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be json or text, not {fmt!r}")
    formatter = (
        "pokerproject.logs.JsonFormatter" if fmt == "json" else "pokerproject.logs.TextFormatter"
    )
    handler = ["console"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "pokerproject.logs.ContextFilter"},
            "redact": {"()": "pokerproject.logs.RedactFilter"},
            "request_path": {"()": "pokerproject.logs.RequestPathFilter"},
        },
        "formatters": {"main": {"()": formatter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                # Paths and secrets out first: the context's fields are ids, never secrets.
                "filters": ["request_path", "redact", "context"],
            }
        },
        "root": {"handlers": handler, "level": level},
        "loggers": {
            # Django's default logging holds "django" at INFO; LOG_LEVEL decides here (the
            # loggers below that print values stay at INFO all the same).
            "django": {"level": level},
            "django.channels.server": {"level": "WARNING"},
            **{name: {"level": "INFO"} for name in QUIET},
            # uvicorn configures its own handlers before it imports the application; these
            # replace them, so its lines come out in the same format.
            "uvicorn": {"handlers": handler, "level": level, "propagate": False},
            # Its access lines print the path and query string; pokerproject.http's line (the
            # route, the request id) replaces them.
            "uvicorn.access": {"handlers": handler, "level": "WARNING", "propagate": False},
        },
    }


# --- HTTP -----------------------------------------------------------------------------------

# What a request id from the load balancer may look like; anything else is replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
REQUEST_ID_HEADER = "X-Request-ID"
access_logger = logging.getLogger("pokerproject.http")


def request_id_from(headers: Mapping[str, str]) -> str:
    """The request id the load balancer sent, if it is a plausible one, else a new one."""
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.fullmatch(given) else new_id()


class RequestContextMiddleware:
    """Bind the request's id for every record logged while it is served (first in the chain, so
    all of them), answer with ``X-Request-ID``, and log one access line: method, the URL's route
    pattern (never its path: invite links carry tokens), status and duration."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.request_id = request_id_from(request.headers)  # type: ignore[attr-defined]
        # Reset at the end: this also drops what the inner layers bound (user, key, team).
        token = bind(request_id=request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response.headers.setdefault(REQUEST_ID_HEADER, request_id)
            match = request.resolver_match
            access_logger.info(
                "%s %s %s",
                request.method,
                "/" + match.route if match is not None else "(unresolved)",
                response.status_code,
                extra={
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            return response
        finally:
            unbind(token)


class UserContextMiddleware:
    """Bind the signed-in user's id (after Django's AuthenticationMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            bind(user_id=user.pk)
        return self.get_response(request)


# --- Celery ---------------------------------------------------------------------------------

_tasks: dict[str, contextvars.Token] = {}


def task_started(task_id: str | None, name: str, args: Any) -> None:
    """Bind a task's name and id (and its shard: every outbox task takes it first) for its run."""
    if task_id is None:
        return
    shard = args[0] if args and isinstance(args[0], str) else None
    fields: dict[str, Any] = {"task": name, "task_id": task_id}
    if shard is not None:
        fields["shard"] = shard
    _tasks[task_id] = bind(**fields)


def task_finished(task_id: str | None) -> None:
    token = _tasks.pop(task_id or "", None)
    if token is not None:
        # A task that ended in another context than it began in has nothing bound here.
        with contextlib.suppress(ValueError):
            unbind(token)
