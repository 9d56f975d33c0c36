"""The connection-time half of the SSRF guard (integrations.netguard.client): a name is
resolved again when the connection is made, and only an address checked then is connected to,
so DNS that answers differently for the check and for the connection gains nothing. Real
sockets; only name resolution is scripted."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations import netguard, webhooks

HOST = "hooks.example.test"
PUBLIC = "93.184.216.34"
REAL_GETADDRINFO = socket.getaddrinfo


class Recorder(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.path, self.headers.get("Host")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dns(monkeypatch):
    """``dns.answers``: what HOST resolves to, one answer per lookup (the last one repeats)."""

    class Dns:
        answers: list[str] = []
        lookups = 0

    def getaddrinfo(host, port, *args, **kwargs):
        if host != HOST:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        address = Dns.answers[min(Dns.lookups, len(Dns.answers) - 1)]
        Dns.lookups += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    return Dns


def test_a_name_that_turns_private_after_the_check_is_refused(server, dns, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    port = server.server_address[1]
    dns.answers = [PUBLIC, "127.0.0.1"]  # public for the check, local for the connection

    status, _, error = webhooks._post(f"http://{HOST}:{port}/hook", b"{}", {})

    assert status is None
    assert error.startswith("refused:")
    assert "private or local" in error
    assert dns.lookups == 2
    assert server.seen == []


def test_the_address_checked_is_the_address_connected_to(server, dns, monkeypatch):
    # Pretend loopback is public, so the checked connection can reach the local server.
    monkeypatch.setattr(netguard, "_is_private", lambda address: False)
    port = server.server_address[1]
    dns.answers = ["127.0.0.1"]
    url = f"http://{HOST}:{port}/hook"

    with netguard.client(url, allow_private=False, timeout=5) as client:
        response = client.post(url, content=b"{}")

    assert response.status_code == 204
    # The request still names the host (virtual hosting, and TLS would verify that name).
    assert server.seen == [("/hook", f"{HOST}:{port}")]
    assert dns.lookups == 1


def test_an_egress_proxy_from_the_environment_makes_the_connection(server, dns, monkeypatch):
    proxy = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "")
    dns.answers = ["10.0.0.1"]  # never looked up: the proxy resolves the name

    url = f"http://{HOST}/hook"
    with netguard.client(url, allow_private=False, timeout=5) as client:
        response = client.post(url, content=b"{}")

    assert response.status_code == 204
    assert server.seen == [(url, HOST)]  # a proxy request names the whole URL
    assert dns.lookups == 0


def test_a_jira_site_that_turns_private_is_a_jira_error(server, dns, settings):
    from integrations.jira import JiraClient, JiraError

    settings.JIRA_ALLOW_PRIVATE_TARGETS = False
    dns.answers = [PUBLIC, "127.0.0.1"]
    client = JiraClient(f"http://{HOST}:{server.server_address[1]}", "bot@example.com", "token")
    try:
        with pytest.raises(JiraError) as refused:
            client._request("GET", "/rest/api/3/myself")
    finally:
        client.close()
    assert refused.value.code == "unsafe_url"
    assert server.seen == []
