"""The security headers on real responses: a Content-Security-Policy without inline script or
style, Permissions-Policy, no-store on whatever a signed-in user sees (static files keep their
caching), HSTS for a year once DEBUG is off; and no template needs an inline script."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from conftest import facilitator_of

pytestmark = pytest.mark.django_db(databases="__all__")

ROOT = Path(settings.BASE_DIR)
ONE_YEAR = 365 * 24 * 3600


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parts}


@pytest.fixture
def lead(team_factory):
    return facilitator_of(team_factory("Alpha"))


@pytest.fixture
def signed_in(lead) -> Client:
    client = Client()
    client.force_login(lead.user)
    return client


def signed_in_pages(lead) -> list[str]:
    slug = lead.team.slug
    return [
        "/teams/",
        f"/teams/{slug}/",
        f"/teams/{slug}/table/",
        f"/teams/{slug}/history/",
    ]


def test_every_page_has_a_policy_without_inline_script_or_style(signed_in, lead):
    for path in [*signed_in_pages(lead), "/api/docs/"]:
        response = signed_in.get(path)
        assert response.status_code == 200, path
        policy = directives(response)
        assert policy["script-src"] == ["'self'"], path
        assert policy["style-src"] == ["'self'"], path
        assert policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert "'self'" in policy["connect-src"]  # the live table's socket, same origin
        assert "camera=()" in response["Permissions-Policy"]
        assert "geolocation=()" in response["Permissions-Policy"]


def test_the_login_page_has_the_headers_too():
    response = Client().get("/accounts/login/")
    assert directives(response)["script-src"] == ["'self'"]
    assert "microphone=()" in response["Permissions-Policy"]


def test_signed_in_pages_are_not_stored(signed_in, lead):
    for path in ["/", *signed_in_pages(lead)]:
        cache_control = signed_in.get(path)["Cache-Control"]  # the redirect of "/" too
        assert "no-store" in cache_control, path
        assert "private" in cache_control, path


def test_api_answers_are_not_stored(signed_in, lead):
    response = signed_in.get("/api/v1/teams/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_static_files_keep_their_caching(signed_in):
    response = signed_in.get("/static/js/app.js")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
    assert "Content-Security-Policy" not in response


def test_the_table_page_loads_its_behaviour_from_static_files(signed_in, lead):
    page = signed_in.get(f"/teams/{lead.team.slug}/table/").content.decode()
    assert 'src="/static/js/app.js"' in page
    assert 'src="/static/rooms/table.js"' in page


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
STYLE = re.compile(r"\sstyle\s*=|<style", re.IGNORECASE)
JS_URL = re.compile(r"javascript:", re.IGNORECASE)


# E-mail bodies are no pages of the site (no CSP applies): mail clients need inline styles.
EMAIL_TEMPLATES = ROOT / "templates" / "notifications" / "email"


def test_no_template_has_an_inline_script_handler_or_style():
    offenders = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        if template.is_relative_to(EMAIL_TEMPLATES):
            continue
        text = template.read_text()
        for name, pattern in [
            ("inline script", INLINE_SCRIPT),
            ("event handler", EVENT_HANDLER),
            ("style", STYLE),
            ("javascript: URL", JS_URL),
        ]:
            if pattern.search(text):
                offenders.append(f"{template.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_hsts_lasts_a_year_when_debug_is_off():
    """A real response of a deployment-like process (settings are read at start-up)."""
    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/healthz', secure=True);"
        "print(r.status_code, r['Strict-Transport-Security'])"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pokerproject.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "testserver",
    }
    env.pop("DJANGO_HSTS_SECONDS", None)
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    status, header = result.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "200"
    max_age = int(re.search(r"max-age=(\d+)", header).group(1))
    assert max_age >= ONE_YEAR
    assert "includeSubDomains" in header
