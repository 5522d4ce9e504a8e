"""X-Forwarded-For believed only from TRUSTED_PROXIES (issue 12, item 8).

daphne ran with --proxy-headers, so any client could write the address that the sign-in
throttle counts. The requests here go through the platform's real ASGI application with the
peer address the server would see, and the throttle's rows in PostgreSQL say which address
was counted.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from channels.testing import ApplicationCommunicator
from django.core.exceptions import ImproperlyConfigured

from sttproject.asgi import application
from sttproject.env import envnetworks
from sttproject.proxies import forwarded_scope

ATTACKER = "198.51.100.7"
SPOOFED = "203.0.113.9"


async def asgi_request(
    method: str, path: str, peer: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, dict[bytes, list[bytes]], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost:5000"), *headers],
        "client": (peer, 40000),
        "server": ("127.0.0.1", 5000),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout=20)
    response_headers: dict[bytes, list[bytes]] = {}
    for key, value in start.get("headers", []):
        response_headers.setdefault(key.lower(), []).append(value)
    content = b""
    while True:
        message = await communicator.receive_output(timeout=20)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait()
    return start["status"], response_headers, content


async def failed_sign_in_counted_as(peer: str, forwarded_for: str) -> str:
    """Sign in with a wrong password from ``peer`` claiming ``forwarded_for``; the address
    the throttle counted the failure against."""
    from asgiref.sync import sync_to_async
    from axes.models import AccessAttempt

    forwarded = [(b"x-forwarded-for", forwarded_for.encode())]
    status, headers, _ = await asgi_request("GET", "/accounts/login/", peer, forwarded)
    assert status == 200
    cookie = next(c for c in headers[b"set-cookie"] if c.startswith(b"csrftoken="))
    token = re.match(rb"csrftoken=([^;]+)", cookie).group(1)
    form = urlencode(
        {"username": "owner", "password": "wrong", "csrfmiddlewaretoken": token.decode()}
    ).encode()
    status, _, _ = await asgi_request(
        "POST",
        "/accounts/login/",
        peer,
        [
            *forwarded,
            (b"cookie", b"csrftoken=" + token),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(form)).encode()),
        ],
        form,
    )
    assert status == 200
    attempts = await sync_to_async(list)(AccessAttempt.objects.values_list("ip_address", flat=True))
    assert len(attempts) == 1, attempts
    return attempts[0]


@pytest.mark.django_db(transaction=True)
async def test_an_untrusted_peer_cannot_choose_the_address_the_throttle_counts(settings):
    settings.TRUSTED_PROXIES = []
    assert await failed_sign_in_counted_as(ATTACKER, SPOOFED) == ATTACKER


@pytest.mark.django_db(transaction=True)
async def test_a_trusted_proxy_forwards_the_clients_address(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    assert await failed_sign_in_counted_as("127.0.0.1", f"{SPOOFED}, 10.9.9.9") == "10.9.9.9"


@pytest.mark.django_db(transaction=True)
async def test_behind_a_trusted_proxy_a_spoofed_hop_is_not_believed(settings):
    # The client wrote "127.0.0.1" itself; our proxy appended the address it saw.
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    assert await failed_sign_in_counted_as("127.0.0.1", f"127.0.0.1, {ATTACKER}") == ATTACKER


def _scope(peer: str, *headers: tuple[bytes, bytes], kind: str = "http") -> dict:
    scheme = "ws" if kind == "websocket" else "http"
    return {"type": kind, "scheme": scheme, "client": (peer, 1234), "headers": list(headers)}


def test_forwarded_scope_rules():
    trusted = ["10.0.0.0/8", "::1/128"]
    xff = (b"x-forwarded-for", b"203.0.113.9, 10.1.1.1")
    https = (b"x-forwarded-proto", b"https")
    # Untrusted peer: nothing changes.
    assert forwarded_scope(_scope(ATTACKER, xff, https), trusted)["client"] == (ATTACKER, 1234)
    assert forwarded_scope(_scope(ATTACKER, https), trusted)["scheme"] == "http"
    # Trusted peer: the first untrusted hop from the right, and the forwarded scheme.
    forwarded = forwarded_scope(_scope("10.0.0.2", xff, https), trusted)
    assert forwarded["client"] == ("203.0.113.9", 0) and forwarded["scheme"] == "https"
    socket = forwarded_scope(_scope("::1", xff, https, kind="websocket"), trusted)
    assert socket["scheme"] == "wss"
    # Every hop trusted: the leftmost; garbage stops the walk at what was believed.
    assert forwarded_scope(_scope("10.0.0.2", (b"x-forwarded-for", b"10.3.3.3")), trusted)[
        "client"
    ] == ("10.3.3.3", 0)
    garbage = (b"x-forwarded-for", b"203.0.113.9, not-an-ip, 10.1.1.1")
    assert forwarded_scope(_scope("10.0.0.2", garbage), trusted)["client"] == ("10.1.1.1", 0)
    # IPv4 through a dual-stack socket, and ports on hops.
    mapped = forwarded_scope(
        _scope("::ffff:10.0.0.2", (b"x-forwarded-for", b"[2001:db8::5]:443")), trusted
    )
    assert mapped["client"] == ("2001:db8::5", 0)
    # Nobody trusted by default.
    assert forwarded_scope(_scope("127.0.0.1", xff), [])["client"] == ("127.0.0.1", 1234)


def test_trusted_proxies_are_parsed_strictly():
    assert envnetworks("TRUSTED_PROXIES", [], environ={}) == []
    parsed = envnetworks("TRUSTED_PROXIES", [], environ={"TRUSTED_PROXIES": "10.0.0.5, ::1"})
    assert parsed == ["10.0.0.5/32", "::1/128"]
    assert envnetworks("TRUSTED_PROXIES", ["x"], environ={"TRUSTED_PROXIES": "none"}) == []
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES.*'proxy.local'"):
        envnetworks("TRUSTED_PROXIES", [], environ={"TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"})


def test_no_server_believes_forwarded_headers_on_its_own():
    # daphne's --proxy-headers believes X-Forwarded-For from every peer, before the
    # application can check who sent it.
    from tests.conftest import REPO_ROOT
    from workers.launch import procfile_lines

    web = next(line for line in procfile_lines(environ={}) if line.startswith("web:"))
    assert "--proxy-headers" not in web
    assert "--proxy-headers" not in (REPO_ROOT / "docker" / "entrypoint.sh").read_text()
