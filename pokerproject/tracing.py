"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables ask for it.

On (``setup()`` at process start: pokerproject/asgi.py, wsgi.py, each Celery worker process),
a trace follows the work across the system:

- an HTTP request (Django's instrumentation) and everything it does;
- a socket command (``Frames`` in the consumer) -> the group commit it joined
  (``batch()``, rooms/realtime/batching.py; the batch's span is the child of its first command
  and links to every other one) -> the publish of the table events (``span("broadcast")``);
- a Celery task queued by any of them (replication, webhooks, Jira): Celery's instrumentation
  puts the context in the task's headers at publish and the worker's span continues it; eager
  tasks (the embedded mode) run inside it, on the outbox's background threads too, which copy
  the context. A row the sweep resends later starts a trace of its own (the sweep's).

Off (the default), nothing of OpenTelemetry is imported and the helpers return one shared
do-nothing context manager: the vote path creates no span objects.

When is it on: ``OTEL_SDK_DISABLED=true`` keeps it off; else ``OTEL_TRACES_EXPORTER`` = otlp or
console turns it on (none: off), and so does an ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``..._TRACES_ENDPOINT``) on its own. The exporter, the sampler and the resource read the rest
of the standard variables themselves (``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``,
``OTEL_EXPORTER_OTLP_HEADERS``, ...). OTLP is sent over HTTP/protobuf.
"""

from __future__ import annotations

import os
from typing import Any

SERVICE_NAME = "planning-poker"

_tracer: Any = None  # an opentelemetry Tracer once set up; None means off
_instrumentors: list[Any] = []


class _Null:
    """The context manager the helpers return when tracing is off: one object, no work."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


NULL = _Null()


def enabled() -> bool:
    return _tracer is not None


def wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment asks for tracing (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _exporter_from_env() -> Any:
    names = [
        n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n
    ]
    if names != ["otlp"] and names != ["console"]:
        raise RuntimeError(
            f"OTEL_TRACES_EXPORTER={os.environ.get('OTEL_TRACES_EXPORTER')!r}: "
            "this server sends traces with one of otlp, console or none"
        )
    if names == ["console"]:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol not in ("", "http/protobuf"):
        raise RuntimeError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: this server sends OTLP as http/protobuf"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def setup(*, provider: Any = None) -> bool:
    """Turn tracing on if the environment asks for it (or ``provider`` is given: the tests'
    in-memory one); returns whether it is on. Idempotent."""
    global _tracer
    if _tracer is not None:
        return True
    if provider is None:
        if not wanted():
            return False
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", SERVICE_NAME)}
        )
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(_exporter_from_env()))
        trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    # Django's adds its middleware to settings.MIDDLEWARE: call this before the handler loads
    # it (pokerproject/asgi.py does). /metrics and the probes are scraped every few seconds.
    for instrumentor, options in (
        (
            DjangoInstrumentor(),
            {"excluded_urls": "metrics,healthz,readyz", "response_hook": _route_not_path},
        ),
        (CeleryInstrumentor(), {}),
    ):
        instrumentor.instrument(tracer_provider=provider, **options)
        _instrumentors.append(instrumentor)
    _tracer = provider.get_tracer("pokerproject")
    return True


# The request's URL, as Django's instrumentation records it, may carry a secret (an invite link's
# token, a query string): the span keeps the route pattern instead, as the access log does.
_URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.path", "url.query")


def _route_not_path(span: Any, request: Any, response: Any) -> None:
    if not span.is_recording():
        return
    match = getattr(request, "resolver_match", None)
    route = "/" + match.route if match is not None else "(unresolved)"
    recorded = span.attributes or {}
    for name in _URL_ATTRIBUTES:
        if name in recorded:
            span.set_attribute(name, "" if name == "url.query" else route)


def flush() -> None:
    """Send the spans still waiting in the exporter's batch (a worker process about to exit)."""
    if _tracer is not None:
        from opentelemetry import trace

        provider = trace.get_tracer_provider()
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None:
            force_flush()


def teardown() -> None:
    """Turn tracing off again (the tests)."""
    global _tracer
    while _instrumentors:
        _instrumentors.pop().uninstrument()
    _tracer = None


# --- spans of the live table ----------------------------------------------------------------


def span(name: str, attributes: dict[str, Any] | None = None) -> Any:
    """``with tracing.span("broadcast"):`` a child of the current span, when tracing is on."""
    if _tracer is None:
        return NULL
    return _tracer.start_as_current_span(name, attributes=attributes)


def current() -> Any:
    """The current span's context, to link work done later on its behalf; None when off."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else None


def batch(kind: str, alias: str, causes: list[Any]) -> Any:
    """The span of one group commit of ``kind`` on ``alias``: the child of the first command
    that joined it (``current()`` at its submit), linked to all of them."""
    if _tracer is None:
        return NULL
    from opentelemetry import trace

    contexts = [c for c in causes if c is not None]
    parent = trace.set_span_in_context(trace.NonRecordingSpan(contexts[0])) if contexts else None
    return _tracer.start_as_current_span(
        f"{kind} batch",
        context=parent,
        links=[trace.Link(c) for c in contexts],
        attributes={"poker.shard": alias, "poker.batch.size": len(causes)},
    )


class Frames:
    """One socket's inbound frames, one at a time: ``with frames:`` around each, and
    ``frames.command(name, id)`` once it is parsed. It names the command in the socket's log
    fields (``fields``, from ``logs.own``) until the frame is done and, when tracing is on,
    gives the frame a span. Made once per socket: a frame costs no allocation when off."""

    __slots__ = ("fields", "span")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.span: Any = None

    def __enter__(self) -> None:
        if _tracer is not None:
            self.span = _tracer.start_as_current_span(
                "ws frame", attributes={"poker.connection_id": self.fields.get("connection_id", "")}
            )
            self.span.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.fields.pop("command", None)
        self.fields.pop("command_id", None)
        if self.span is not None:
            span, self.span = self.span, None
            span.__exit__(*exc)

    def command(self, name: str, command_id: str | int | None) -> None:
        """Name the frame being handled: its command and the client's request_id."""
        self.fields["command"] = name
        self.fields["command_id"] = command_id
        if _tracer is not None:
            from opentelemetry import trace

            current_span = trace.get_current_span()
            current_span.update_name(f"ws {name}")
            current_span.set_attribute("poker.command", name)


def refused(code: str) -> None:
    """Mark the frame being handled as refused with ``code`` (an error frame went back)."""
    if _tracer is not None:
        from opentelemetry import trace

        trace.get_current_span().set_attribute("poker.error_code", code)
