"""The deployment check of the notifications: links in messages sent without a request (session
summaries, unsubscribe links) are built from SITE_URL, so a deployment must set it to itself."""

import pytest
from django.core import checks


def site_url_messages() -> list[checks.CheckMessage]:
    found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    return [m for m in found if m.id and m.id.startswith("notifications.")]


@pytest.mark.parametrize(
    "site_url",
    ["http://127.0.0.1:8000", "http://localhost:8000", "not a url", "https://elsewhere.example"],
)
def test_a_deployment_whose_site_url_is_not_one_of_its_hosts_is_warned(settings, site_url):
    settings.ALLOWED_HOSTS = ["poker.example.com"]
    settings.SITE_URL = site_url
    [message] = site_url_messages()
    assert message.id == "notifications.W001"
    assert message.level == checks.WARNING
    assert "SITE_URL" in message.msg


def test_a_site_url_on_an_allowed_host_passes(settings):
    settings.ALLOWED_HOSTS = [".example.com"]
    settings.SITE_URL = "https://poker.example.com/"
    assert site_url_messages() == []


def test_plain_http_in_a_deployment_is_warned(settings):
    settings.ALLOWED_HOSTS = ["poker.example.com"]
    settings.SITE_URL = "http://poker.example.com"
    [message] = site_url_messages()
    assert message.id == "notifications.W002"


def test_the_embedded_mode_is_not_asked():
    assert [
        m for m in checks.run_checks(tags=[checks.Tags.security]) if m.id.startswith("notif")
    ] == []
