"""Outgoing HTTP safety: only http(s) URLs, and no private targets unless a setting allows them.

A webhook URL or a Jira site is chosen by a team member, and the server fetches it: without this
check anyone could make the server probe its own network (SSRF). Names are resolved and every
address checked when the URL is saved and before each request; and ``client()`` connects only
to an address it has just checked itself, so a name that resolves to a public address for the
check and to a private one for the connection (DNS rebinding) is refused too. Behind an egress
proxy from the environment (``HTTPS_PROXY``...), the proxy makes the connection and is the
deployment's guard; the checks before each request still apply.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from pokerproject.errors import DomainError, gettext_noop


class UnsafeUrl(DomainError):
    code = "unsafe_url"


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeUrl unless ``url`` is http(s) with a host that resolves to public addresses
    (any address when ``allow_private``)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl(gettext_noop("Only http:// and https:// URLs are allowed."))
    if parts.username or parts.password:
        raise UnsafeUrl(gettext_noop("Credentials in the URL are not allowed."))
    if not allow_private:
        _public_addresses(parts.hostname, parts.port or 443)


def _public_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, if all are public; else UnsafeUrl."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(gettext_noop("Cannot resolve %(host)s."), params={"host": host}) from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if any(_is_private(address) for address in addresses):
        raise UnsafeUrl(
            gettext_noop("%(host)s resolves to a private or local address."), params={"host": host}
        )
    return addresses


class _CheckedBackend(httpcore.SyncBackend):
    """Resolves the host itself, checks every address, and connects to those: the address
    checked is the address connected to. TLS still verifies the certificate for the host name
    (httpcore passes it to ``start_tls``)."""

    def connect_tcp(self, host: str, port: int, **kwargs: Any) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in _public_addresses(host, port):
            try:
                return super().connect_tcp(address, port, **kwargs)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"Cannot connect to {host}.")


def _proxied(url: str) -> bool:
    """Whether httpx would send ``url`` through a proxy from the environment."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    return bool(proxies.keys() & {parts.scheme, "all"}) and not urllib.request.proxy_bypass(
        parts.hostname or ""
    )


def client(url: str, *, allow_private: bool, **kwargs: Any) -> httpx.Client:
    """An httpx client for requests to ``url`` (and its site) that connects only to public
    addresses checked at connection time, unless ``allow_private`` or an egress proxy applies.
    Call ``check_url`` first: it refuses bad schemes and credentials with a clear message."""
    if allow_private or _proxied(url):
        return httpx.Client(**kwargs)
    transport = httpx.HTTPTransport()
    # httpx takes no network backend of its own; its pool is rebuilt here with ours
    # (httpx is pinned in requirements.txt; integrations/tests/test_netguard.py covers it).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=_CheckedBackend()
    )
    return httpx.Client(transport=transport, **kwargs)
