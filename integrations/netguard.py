"""Outgoing HTTP safety: only http(s) URLs, and no private targets unless a setting allows them.

A webhook URL or a Jira site is chosen by a team member, and the server fetches it: without this
check anyone could make the server probe its own network (SSRF). Names are resolved and every
address checked just before each request as well as when the URL is saved. (A name that resolves
differently between the check and the connection is not covered; deployments that need that
should send webhooks through an egress proxy.)
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from rooms import game


class UnsafeUrl(game.GameError):
    code = "unsafe_url"


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeUrl unless ``url`` is http(s) with a host that resolves to public addresses
    (any address when ``allow_private``)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("Only http:// and https:// URLs are allowed.")
    if parts.username or parts.password:
        raise UnsafeUrl("Credentials in the URL are not allowed.")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"Cannot resolve {parts.hostname}.") from exc
    if any(_is_private(info[4][0]) for info in infos):
        raise UnsafeUrl(f"{parts.hostname} resolves to a private or local address.")
