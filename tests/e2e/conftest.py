"""A real server and a real Chromium for the browser tests.

One Daphne process for the whole session, on the Redis channel layer (the pub/sub layer the
cluster runs) and Redis cache, as deployed: ``REDIS_URL`` from the environment, the local Redis
otherwise, under a key prefix of this session's own so that parallel runs on one Redis never hear
each other's tables. Its databases are SQLite files in a temporary directory, migrated and seeded
with the demo team, so these tests never use pytest-django's ``db`` fixture. Without a Redis the
browser tests are skipped, except in CI where they must run.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
# The password `make run` gives the demo users, so the login page in the screenshots says what a
# fresh install says.
DEMO_PASSWORD = "poker-demo"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 60.0
_server_log = pytest.StashKey[Path]()
_server_env_key = pytest.StashKey[dict]()


def _skip_or_fail(reason: str) -> None:
    # CI must run the browser tests: a missing browser there is a broken build, not a skip.
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 80) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _reachable_redis() -> str:
    """The Redis the live server uses: ``REDIS_URL``, or the local one; skipped (failed in CI)
    when it does not answer."""
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        _skip_or_fail(f"no Redis at {url} for the browser tests' live server: {exc}")
    return url


def _server_env(tmp: Path, redis_url: str) -> dict[str, str]:
    env = os.environ.copy()
    # Celery stays eager (outbox tasks on the server's background threads): no worker here.
    env.pop("CELERY_BROKER_URL", None)
    env.pop("REDIS_CACHE_URL", None)
    run_prefix = os.environ.get("CHANNEL_LAYER_PREFIX") or "poker"
    env.update(
        REDIS_URL=redis_url,
        CHANNEL_LAYER_BACKEND="pubsub",
        # The run's prefix (CI sets one per run) plus one per session: two sessions of one run
        # (`make test`, then a file by hand) and runs on other checkouts stay apart.
        CHANNEL_LAYER_PREFIX=f"{run_prefix}-e2e-{uuid.uuid4().hex[:8]}",
        DEMO_PASSWORD=DEMO_PASSWORD,
        DATABASE_URL=f"sqlite:///{tmp}/default.sqlite3",
        SHARD_URLS=f"eu-1@eu=sqlite:///{tmp}/shard-eu-1.sqlite3",
        DJANGO_DEBUG="true",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="pokerproject.settings",
        PYTHONUNBUFFERED="1",
        # A quick heartbeat, so a silent network drop shows within seconds (test_network.py).
        ROOM_HEARTBEAT_SECONDS="1",
        ROOM_HEARTBEAT_TIMEOUT_SECONDS="1.5",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    command = [sys.executable, str(ROOT / "manage.py"), *args]
    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )


def _daphne() -> list[str]:
    script = Path(sys.executable).parent / "daphne"
    return [str(script)] if script.exists() else [sys.executable, "-m", "daphne"]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited ({process.returncode}):\n{_tail(log)}", pytrace=False)
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(
        f"the server did not answer /healthz in {START_TIMEOUT:.0f}s:\n{_tail(log)}", pytrace=False
    )


@pytest.fixture(scope="session")
def mail_server():
    """A real SMTP server (aiosmtpd) that receives every e-mail the live server sends."""
    from notifications.tests.servers import SmtpServer

    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def live_server_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mail_server
) -> Iterator[str]:
    """Start a migrated, seeded Daphne on the Redis channel layer on a free port; yield its base
    URL."""
    redis_url = _reachable_redis()
    tmp = tmp_path_factory.mktemp("e2e-server")
    env = _server_env(tmp, redis_url)
    env["EMAIL_URL"] = mail_server.url
    _manage(env, "migrate_all")
    _manage(env, "seed_demo", "--password", DEMO_PASSWORD)
    port = _free_port()
    env["SITE_URL"] = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    request.config.stash[_server_log] = log
    request.config.stash[_server_env_key] = env
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own daphne
            [*_daphne(), "-b", "127.0.0.1", "-p", str(port), "pokerproject.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def live_manage(request: pytest.FixtureRequest, live_server_url: str):
    """``live_manage("shell", "-c", code)``: a management command on the live server's
    databases (to set up a team of a test's own)."""
    env = request.config.stash[_server_env_key]
    return lambda *args: _manage(env, *args)


TEAM_SETUP = """
from accounts import services
from accounts.models import Membership, User
from accounts.roles import Role
from stories import services as stories
users = {{}}
for name in ("lead", "bob", "carol", "olga"):
    user, _ = User.objects.get_or_create(username="{prefix}-" + name)
    user.first_name = name.capitalize()
    user.set_password("{password}")
    user.save()
    users[name] = user
team = services.team_create(name="{prefix}", creator=users["lead"])
assert team.slug == "{prefix}", team.slug
services.membership_add(team=team, user=users["bob"], role=Role.VOTER)
services.membership_add(team=team, user=users["carol"], role=Role.VOTER)
services.membership_add(team=team, user=users["olga"], role=Role.OBSERVER)
lead = Membership.objects.select_related("team").get(team=team, user=users["lead"])
for key, title in (("T-1", "Pay by card"), ("T-2", "Pay by invoice")):
    stories.story_create(membership=lead, title=title, external_key=key)
"""


@pytest.fixture
def team(live_manage, request: pytest.FixtureRequest) -> str:
    """A team of this test's own on the live server, so that what the test changes (decks,
    guests, auto-reveal, roles, members) touches no other test's table. Its slug is also the
    prefix of its members' user names: ``<slug>-lead`` (facilitator), ``-bob`` and ``-carol``
    (voters), ``-olga`` (observer), each with the demo password; two stories in its backlog."""
    prefix = re.sub(r"[^a-z]", "", request.node.name.lower())[-20:]
    live_manage("shell", "-c", TEAM_SETUP.format(prefix=prefix, password=DEMO_PASSWORD))
    return prefix


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the tail of the server's log to a failing browser test's report."""
    outcome = yield
    report = outcome.get_result()
    log = item.config.stash.get(_server_log, None)
    if report.failed and log is not None:
        report.sections.append(("live server log (tail)", _tail(log)))


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        _skip_or_fail(
            f"no Chromium executable at {path} (install the distribution's chromium or set "
            "CHROMIUM_PATH; browsers are never downloaded by these tests)"
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed (requirements-dev.txt)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()
