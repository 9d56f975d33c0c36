"""Deployment checks of the notifications (``manage.py check --deploy``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.http.request import validate_host


@checks.register(checks.Tags.security, deploy=True)
def check_site_url(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Messages sent by Celery (session summaries, unsubscribe links) have no request to take
    the site's address from: they use SITE_URL, whose default points at a laptop."""
    url = urlsplit(str(settings.SITE_URL))
    host = url.hostname or ""
    if url.scheme not in {"http", "https"} or not validate_host(host, settings.ALLOWED_HOSTS):
        return [
            checks.Warning(
                f"SITE_URL ({settings.SITE_URL!r}) is not an address of this site: links in "
                "e-mails and chat summaries would lead elsewhere.",
                hint="Set SITE_URL to the public address, e.g. https://poker.example.com, on a "
                "host in DJANGO_ALLOWED_HOSTS.",
                id="notifications.W001",
            )
        ]
    if url.scheme != "https":
        return [
            checks.Warning(
                "SITE_URL is plain http: links in e-mails would send sessions and reset tokens "
                "unencrypted.",
                hint="Serve the site over https and set SITE_URL to its https address.",
                id="notifications.W002",
            )
        ]
    return []
