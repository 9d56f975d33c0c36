"""Tracing with OpenTelemetry's in-memory exporter: a vote over a real socket is one connected
trace (command -> group commit -> broadcast); a reveal's replication and webhook tasks continue
the reveal's trace, inline and on the outbox's background threads; an HTTP request is a span
and the tasks it queues are its children. Off (the default), the helpers make no span."""

import pytest
from django.test import Client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from accounts.roles import Role
from conftest import facilitator_of
from integrations import services as integration_services
from integrations.tests.receivers import WebhookReceiver
from pokerproject import outbox, tracing
from pokerproject.celery import app as celery_app
from rooms.tests.test_consumers import connect

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def spans():
    """Tracing on, every finished span in ``spans.get_finished_spans()``."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert tracing.setup(provider=provider)
    yield exporter
    tracing.teardown()
    provider.shutdown()


@pytest.fixture
def table(team_factory, add_member):
    team = team_factory("Tracers", region="eu")
    return {"team": team, "lead": facilitator_of(team), "bob": add_member(team, "bob", Role.VOTER)}


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


def _named(exporter, name):
    return [s for s in exporter.get_finished_spans() if s.name == name]


def _one(exporter, name):
    found = _named(exporter, name)
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def _ancestors(exporter, span):
    """The names of ``span``'s ancestors among the finished spans, nearest first."""
    by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_vote_is_one_connected_trace(spans, table):
    """The cast_vote command's span is the parent of its group commit, which is the parent of
    the broadcast of its vote_cast event: one trace id from the frame to the channel layer."""
    lead, bob = await connect(table["lead"]), await connect(table["bob"])
    try:
        assert (await lead.command("start_round", title="Login"))["type"] == "ack"
        await bob.event("round_started")
        spans.clear()

        ack = await bob.command("cast_vote", value="5")
        assert ack["type"] == "ack"
        await lead.event("vote_cast")
    finally:
        await lead.close()
        await bob.close()

    command = _one(spans, "ws cast_vote")
    batch = _one(spans, "vote batch")
    assert batch.parent.span_id == command.context.span_id
    assert [link.context.span_id for link in batch.links] == [command.context.span_id]
    assert batch.attributes["poker.shard"] == table["team"].shard
    broadcast = [
        s
        for s in _named(spans, "broadcast")
        if s.parent and s.parent.span_id == batch.context.span_id
    ]
    assert len(broadcast) == 1
    assert broadcast[0].attributes["poker.events"] == 1
    trace_ids = {command.context.trace_id, batch.context.trace_id, broadcast[0].context.trace_id}
    assert trace_ids == {command.context.trace_id}
    assert command.attributes["poker.command"] == "cast_vote"


async def test_a_refused_command_carries_its_code(spans, table):
    """A refused command's span carries the error code the client received."""
    bob = await connect(table["bob"])
    try:
        error = await bob.command("cast_vote", value="5")  # no round yet
        assert error["type"] == "error"
    finally:
        await bob.close()
    assert _one(spans, "ws cast_vote").attributes["poker.error_code"] == error["code"]


@pytest.mark.parametrize("background", [False, True], ids=["inline", "background-threads"])
async def test_a_reveals_tasks_continue_its_trace(spans, table, receiver, settings, background):
    """Revealing queues the copy for the other regions and the webhook delivery; their task
    spans are descendants of the reveal command's span, whether the eager task runs inside the
    commit or on the outbox's background threads."""
    settings.OUTBOX_EAGER_IN_BACKGROUND = background
    await _endpoint(table["lead"], receiver.url)
    lead, bob = await connect(table["lead"]), await connect(table["bob"])
    try:
        await lead.command("start_round", title="Login")
        await bob.command("cast_vote", value="5")
        spans.clear()
        ack = await lead.command("reveal_cards")
        assert ack["type"] == "ack"
        await bob.event("cards_revealed")
    finally:
        await lead.close()
        await bob.close()
    assert outbox.wait_background(timeout=10)

    reveal = _one(spans, "ws reveal_cards")
    for task in ("run/replication.replicate_round", "run/integrations.deliver_webhook"):
        found = _named(spans, task)
        assert found, [s.name for s in spans.get_finished_spans()]
        for span in found:
            assert span.context.trace_id == reveal.context.trace_id
            assert _ancestors(spans, span)[-2:] == ["reveal batch", "ws reveal_cards"]


def test_an_http_request_is_a_span_and_the_tasks_it_queues_are_its_children(spans, table, receiver):
    """Django's instrumentation traces the request; a webhook queued by the story it created
    runs in the same trace."""
    from asgiref.sync import async_to_sync

    async_to_sync(_endpoint)(table["lead"], receiver.url)
    _, raw = integration_services.api_key_create(
        actor=table["lead"], name="bot", scopes=["read", "write"]
    )
    spans.clear()
    response = Client().post(
        f"/api/v1/teams/{table['team'].slug}/stories/",
        {"title": "From the API"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 201, response.content
    server = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert len(server) == 1
    attributes = server[0].attributes
    assert attributes["http.status_code"] == 201
    # The route, never the path (a path or query string may carry a token).
    assert attributes["http.route"] == "api/v1/teams/<slug:slug>/stories/"
    assert attributes["http.url"] == "/api/v1/teams/<slug:slug>/stories/"
    assert not [v for v in attributes.values() if table["team"].slug in str(v)]
    delivery = _one(spans, "run/integrations.deliver_webhook")
    assert delivery.context.trace_id == server[0].context.trace_id


async def _endpoint(lead, url):
    from channels.db import database_sync_to_async

    await database_sync_to_async(integration_services.webhook_endpoint_create)(
        actor=lead, url=url, events=[]
    )


def test_off_by_default_the_helpers_make_no_span():
    """No OTEL_* in the test environment: tracing is off and every helper is the shared no-op,
    so the vote path creates no span object."""
    assert not tracing.wanted({})
    assert not tracing.enabled()
    assert tracing.span("broadcast") is tracing.NULL
    assert tracing.batch("vote", "eu-1", [None]) is tracing.NULL
    frames = tracing.Frames({"connection_id": "ws.x"})
    with frames:
        frames.command("cast_vote", "r1")
        assert frames.span is None
    assert tracing.current() is None


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_the_standard_variables_turn_it_on(environ, on):
    assert tracing.wanted(environ) is on


def test_an_exporter_this_server_cannot_send_with_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(RuntimeError, match="otlp, console or none"):
        tracing.setup()
    assert not tracing.enabled()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(RuntimeError, match="http/protobuf"):
        tracing.setup()
    assert not tracing.enabled()


@pytest.fixture
def memory_broker():
    """Celery with a broker (kombu's in-memory transport) instead of eager tasks."""
    conf = celery_app.conf
    outbox.wait_background(timeout=10)  # nothing of an earlier test may run under this broker
    saved = conf.task_always_eager, conf.broker_url
    conf.task_always_eager, conf.broker_url = False, "memory://"
    _forget_connections()
    yield celery_app
    conf.task_always_eager, conf.broker_url = saved
    _forget_connections()


def _forget_connections():
    """Drop the app's connection and producer pools: they keep the broker they were made for.
    Dropped, not closed: a producer of a pool may still be held elsewhere (the outbox's
    background threads of an earlier test), and a closed pool refuses every later publish."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_a_queued_task_carries_the_trace_in_its_headers(spans, memory_broker):
    """Through a broker, the outbox's task message carries the W3C traceparent of the span that
    queued it, and the worker's span for it continues that trace."""
    with tracing.span("reveal batch") as cause:
        replication_outbox = next(o for o in outbox.outboxes() if o.name == "replication")
        replication_outbox.enqueue("eu-1", "5d7e1c8e-0000-4000-8000-000000000001")
    with memory_broker.connection_for_write() as connection:
        queue = connection.SimpleQueue("replication")
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    trace_id = format(cause.get_span_context().trace_id, "032x")
    _, header_trace, parent, _ = message.headers["traceparent"].split("-")
    assert header_trace == trace_id
    publish = _one(spans, "apply_async/replication.replicate_round")
    assert format(publish.context.span_id, "016x") == parent
    assert publish.parent.span_id == cause.get_span_context().span_id
