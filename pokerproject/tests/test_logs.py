"""Structured logs: the JSON and text formats, the fields bound per request, socket and command,
the socket's lifecycle, and what never reaches a log: a full round of real clients with login,
CSRF and an API key, logged at DEBUG with SQL logging on, holds none of the vote values before
reveal, the password, the session cookie, the CSRF token or the key."""

import io
import json
import logging
import logging.config
import re

import pytest
from celery.signals import task_success
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from conftest import facilitator_of
from integrations import services as integration_services
from pokerproject import logs, outbox
from pokerproject.asgi import application
from pokerproject.celery import app as celery_app
from rooms import protocol
from rooms.tests.test_consumers import ORIGIN, TIMEOUT, Player, connect


class Captured:
    """The process's logging as LOGGING configures it (``fmt`` at ``level``), written here."""

    def __init__(self, fmt: str, level: str) -> None:
        self.stream = io.StringIO()
        logging.config.dictConfig(logs.config(fmt=fmt, level=level))
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(self.stream)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]

    def where(self, **fields) -> list[dict]:
        return [r for r in self.records() if all(r.get(k) == v for k, v in fields.items())]


@pytest.fixture
def captured(settings):
    made: list[Captured] = []

    def capture(fmt: str = "json", level: str = "DEBUG") -> Captured:
        made.append(Captured(fmt, level))
        return made[-1]

    yield capture
    logging.config.dictConfig(settings.LOGGING)


# --- formats and fields -----------------------------------------------------------------------


def test_json_lines_carry_the_bound_fields(captured):
    """One object a line: time, level, logger, message, the bound fields and ``extra``."""
    log = captured("json", "INFO")
    with logs.scope(request_id="abc", user_id=7, team_id=3, shard="eu-2", region="eu"):
        logging.getLogger("poker.test").info("hello %s", "there", extra={"close_code": 1000})
    logging.getLogger("poker.test").debug("below the level")
    (record,) = log.records()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record.pop("time"))
    assert record == {
        "level": "INFO",
        "logger": "poker.test",
        "message": "hello there",
        "request_id": "abc",
        "user_id": 7,
        "team_id": 3,
        "shard": "eu-2",
        "region": "eu",
        "close_code": 1000,
    }


def test_text_lines_are_readable_with_the_fields_at_the_end(captured):
    log = captured("text", "INFO")
    with logs.scope(connection_id="ws.1", user_id=7):
        logging.getLogger("poker.test").warning("socket closed")
    assert re.fullmatch(
        r"\S+ \S+ WARNING poker\.test socket closed \[conn=ws\.1 user=7\]\n", log.text
    )


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT must be json or text"):
        logs.config(fmt="yaml")


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("key pk_live_AbC-12_x9 used", "key [redacted] used"),
        ("secret whsec_ZmFrZQ== rotated", "secret [redacted] rotated"),
        (
            "Cookie: sessionid=abc123; csrftoken=def456",
            "Cookie: sessionid=[redacted]; csrftoken=[redacted]",
        ),
        ("password=hunter2&username=bob", "password=[redacted]&username=bob"),
        ("{'password': 'hunter2'}", "{'password': '[redacted]'}"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer [redacted]"),
        ("team 3 on eu-2, round 5", "team 3 on eu-2, round 5"),
    ],
)
def test_secret_shaped_text_is_redacted(text, clean):
    assert logs.redact(text) == clean


def test_a_library_that_logs_a_secret_is_redacted(captured):
    """Whatever logger writes it, at any level, in the message or its traceback."""
    log = captured("json", "DEBUG")
    logging.getLogger("some.library").debug("sending Authorization: Bearer pk_live_s3cr3t")
    try:
        raise ValueError("bad password=hunter2")
    except ValueError:
        logging.getLogger("some.library").exception("failed")
    assert "s3cr3t" not in log.text
    assert "hunter2" not in log.text
    assert [r["message"] for r in log.records()] == [
        "sending Authorization: Bearer [redacted]",
        "failed",
    ]


@pytest.mark.django_db
def test_a_request_gets_an_id_and_one_access_line(captured, make_user):
    """The load balancer's X-Request-ID is kept (a fresh one replaces a missing or odd one),
    answered, and on every record of the request; the access line names the route, not the
    path, and the signed-in user."""
    log = captured("json", "INFO")
    client = Client()
    user = make_user("ann")
    client.force_login(user)
    response = client.get("/", headers={"X-Request-ID": "lb-42"})
    assert response.headers["X-Request-ID"] == "lb-42"
    odd = client.get("/", headers={"X-Request-ID": "no spaces allowed"})
    fresh = odd.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", fresh)
    client.get(reverse("invite_accept", args=["not-a-real-token-xyz"]))

    lines = log.where(logger="pokerproject.http")
    assert [(r["request_id"], r["status"]) for r in lines[:2]] == [
        ("lb-42", response.status_code),
        (fresh, odd.status_code),
    ]
    assert {r["user_id"] for r in lines} == {user.pk}
    assert lines[0]["message"] == f"GET / {response.status_code}"
    assert lines[2]["message"] == "GET /invite/<str:token>/ 404"
    # Django's own "Not Found" line names the route too, and no request object.
    (not_found,) = log.where(logger="django.request")
    assert not_found["message"] == "Not Found: /invite/<str:token>/"
    assert not_found["request_id"] == lines[2]["request_id"]
    assert "not-a-real-token-xyz" not in log.text
    assert "duration_ms" in lines[0]


@pytest.mark.django_db(databases="__all__")
def test_a_task_run_names_the_task_and_its_shard():
    """Celery's task_prerun binds the task, its id and its shard (the first argument of every
    outbox task) for the run; task_postrun drops them."""
    seen = []

    def record(**kwargs):
        seen.append(dict(logs.bound()))

    task_success.connect(record)
    try:
        celery_app.tasks["replication.replicate_round"].apply(
            args=["eu-2", "5d7e1c8e-0000-4000-8000-000000000001"], task_id="t-1"
        )
    finally:
        task_success.disconnect(record)
    assert seen == [{"task": "replication.replicate_round", "task_id": "t-1", "shard": "eu-2"}]
    assert "task" not in logs.bound()


# --- the socket's lifecycle -------------------------------------------------------------------


@pytest.fixture
def table(team_factory, add_member):
    team = team_factory("Loggers")
    return {
        "team": team,
        "lead": facilitator_of(team),
        "bob": add_member(team, "bob", Role.VOTER),
        "carol": add_member(team, "carol", Role.OBSERVER),
    }


@pytest.mark.django_db(databases="__all__", transaction=True)
async def test_the_socket_lifecycle_is_logged_with_its_fields(captured, table, make_user):
    """Connect, a refused command (named, with the client's request_id), close with its code;
    a refused socket with its reason and code."""
    log = captured("json", "INFO")
    carol = await connect(table["carol"])
    error = await carol.command("cast_vote", value="5")
    assert error["type"] == "error"
    await carol.close()

    anonymous = WebsocketCommunicator(
        application, f"/ws/teams/{table['team'].slug}/", headers=[ORIGIN]
    )
    await anonymous.connect(timeout=TIMEOUT)
    assert (await anonymous.receive_output(TIMEOUT))["code"] == protocol.CLOSE_UNAUTHENTICATED
    stranger = await database_sync_to_async(make_user)("stranger")
    cookie = await database_sync_to_async(_login_cookie)(stranger)
    outsider = WebsocketCommunicator(
        application,
        f"/ws/teams/{table['team'].slug}/",
        headers=[ORIGIN, (b"cookie", cookie)],
    )
    await outsider.connect(timeout=TIMEOUT)
    assert (await outsider.receive_output(TIMEOUT))["code"] == protocol.CLOSE_FORBIDDEN

    team = table["team"]
    where = {"team_id": team.pk, "shard": team.shard, "region": team.region}
    (connected,) = log.where(message="socket connected", **where)
    socket = {"connection_id": connected["connection_id"], "user_id": table["carol"].user_id}
    assert connected["connection_id"].startswith("ws.")
    (refused,) = log.where(logger="rooms.realtime.consumers", **socket, **where, level="INFO")[1:2]
    assert refused["command"] == "cast_vote"
    assert refused["command_id"] == "r1"
    (closed,) = log.where(message="socket closed", **socket)
    assert "command" not in closed  # the command's fields end with its frame
    assert closed["close_code"] == 1000
    assert log.where(
        message="socket refused: not signed in", close_code=protocol.CLOSE_UNAUTHENTICATED
    )
    (forbidden,) = log.where(close_code=protocol.CLOSE_FORBIDDEN, user_id=stranger.pk)
    assert forbidden["message"] == f"socket refused: not a member of {team.slug}"


def _login_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


# --- what never reaches a log -----------------------------------------------------------------

# Vote values no id, time or duration in a log can contain: the modified Fibonacci deck's
# half, and a break.
SECRET_VOTES = {"bob": "½", "lead": "☕"}


def _login(user) -> Client:
    """A real login through the login form, CSRF checks on."""
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    response = client.post(
        "/accounts/login/",
        {
            "username": user.username,
            "password": user.raw_password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302, response.content
    return client


@pytest.mark.django_db(databases="__all__", transaction=True)
async def test_a_full_round_logs_no_vote_before_reveal_and_no_secret(captured, table, settings):
    """Everything logged at DEBUG, SQL logging on (settings.DEBUG), while members log in, use the
    API with a key, connect, vote and reveal: the values and the secrets are nowhere."""
    settings.DEBUG = True  # Django then logs every SQL statement with its parameters
    settings.OUTBOX_EAGER_IN_BACKGROUND = True
    log = captured("json", "DEBUG")

    names = ("lead", "bob", "carol")
    users = {n: table[n].user for n in names}
    for name, user in users.items():
        user.raw_password = f"Pw-{name}-7q!x"  # one no id or time can contain
        await database_sync_to_async(user.set_password)(user.raw_password)
        await database_sync_to_async(user.save)()
    clients = {n: await database_sync_to_async(_login)(users[n]) for n in names}
    secrets = [user.raw_password for user in users.values()]
    for client in clients.values():
        secrets += [client.cookies["sessionid"].value, client.cookies["csrftoken"].value]

    _, key = await database_sync_to_async(integration_services.api_key_create)(
        actor=table["lead"], name="ci", scopes=["read", "write"]
    )
    secrets.append(key)
    api = Client()
    slug = table["team"].slug
    created = await database_sync_to_async(api.post)(
        f"/api/v1/teams/{slug}/stories/",
        {"title": "Logged story"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert created.status_code == 201
    wrong = await database_sync_to_async(api.get)(
        f"/api/v1/teams/{slug}/stories/", headers={"Authorization": f"Bearer {key}x"}
    )
    assert wrong.status_code == 401

    players: dict[str, Player] = {}
    try:
        for name in names:
            cookie = f"sessionid={clients[name].cookies['sessionid'].value}".encode()
            players[name] = await connect(table[name], cookie=cookie)
        lead, carol = players["lead"], players["carol"]
        assert (await lead.command("set_deck", deck="modified_fibonacci"))["type"] == "ack"
        assert (await lead.command("start_round", title="Secret ballot"))["type"] == "ack"
        for name, value in SECRET_VOTES.items():
            ack = await players[name].command("cast_vote", value=value)
            assert ack["data"] == {"value": value}
        await carol.event("vote_cast")
        assert (await carol.command("cast_vote", value="½"))["type"] == "error"  # an observer
        before_reveal = log.text

        assert (await lead.command("reveal_cards"))["type"] == "ack"
        revealed = await carol.event("cards_revealed")
        assert sorted(v["value"] for v in revealed["data"]["round"]["votes"]) == sorted(
            SECRET_VOTES.values()
        )
    finally:
        for player in players.values():
            await player.close()
    assert outbox.wait_background(timeout=10)

    records = log.records()
    # The capture saw the round: SQL at DEBUG was offered, the sockets, the API, the tasks.
    assert len(records) > 20
    assert log.where(message="socket connected", user_id=table["bob"].user_id)
    assert log.where(logger="pokerproject.http", api_key=key[:16], status=201)
    for value in SECRET_VOTES.values():
        assert value not in before_reveal
    for secret in secrets:
        assert secret not in log.text
