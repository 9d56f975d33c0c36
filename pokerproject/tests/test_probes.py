"""/readyz and /metrics answer only the metrics token; /healthz stays public for liveness."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(databases="__all__")

TOKEN = "s3cret-token-for-tests"
GUARDED = ["/readyz", "/metrics"]


@pytest.fixture
def deployed(settings):
    """A deployment: DEBUG off (no open probes without a token) and a token set."""
    settings.METRICS_OPEN_WITHOUT_TOKEN = False
    settings.METRICS_TOKEN = TOKEN
    return settings


@pytest.mark.parametrize("path", GUARDED)
def test_without_the_token_a_deployment_answers_401(deployed, path):
    response = Client().get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"python_info" not in response.content
    assert b"db:default" not in response.content


@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize("header", ["Bearer wrong", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"])
def test_a_wrong_token_or_scheme_is_refused(deployed, path, header):
    assert Client().get(path, headers={"Authorization": header}).status_code == 401


def test_the_bearer_token_opens_metrics_as_prometheus_sends_it(deployed):
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert b"django_http_requests" in response.content


def test_the_bearer_token_opens_readyz(deployed):
    response = Client().get("/readyz", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200
    assert "db:default" in response.json()["components"]


@pytest.mark.parametrize("path", GUARDED)
def test_a_deployment_without_a_token_has_no_such_pages(settings, path):
    settings.METRICS_OPEN_WITHOUT_TOKEN = False
    settings.METRICS_TOKEN = ""
    assert Client().get(path, headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.parametrize("path", GUARDED)
def test_the_embedded_mode_without_a_token_stays_open(settings, path):
    settings.METRICS_OPEN_WITHOUT_TOKEN = True
    settings.METRICS_TOKEN = ""
    assert Client().get(path).status_code == 200


def test_healthz_stays_public(deployed):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
