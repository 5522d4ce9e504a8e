"""Programs on /ws against the real web server (daphne): the token header, a ticket from
``POST /api/ws-ticket/`` used once, the token refused in the URL, a foreign origin. The
cases one by one, through the ASGI application, are in test_ws_auth.py."""

from __future__ import annotations

import json

import httpx
import pytest
from rest_framework.authtoken.models import Token
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import session_cookie_header
from tests.factories import make_transcript, make_user
from tests.servers import running_web
from transcription.models import Transcript

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# No recording under the repository's var/: the web process is not the test's.
WEB_ENV = {"LIVE_KEEP_AUDIO": "false"}


def answers_ping(url: str, **options) -> bool:
    """Whether the socket at ``url`` is open to its user: a ping is answered before any
    session starts."""
    with connect(url, open_timeout=10, **options) as ws:
        ws.send(json.dumps({"type": "ping"}))
        return json.loads(ws.recv(timeout=10))["type"] == "pong"


def refusal(url: str, **options) -> dict:
    """The error event of a refused handshake, after which the server closes with 4401."""
    with connect(url, open_timeout=10, **options) as ws:
        event = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4401
    assert event["type"] == "error" and event["code"] == "unauthorized", event
    return event


def test_programs_authenticate_on_the_real_server(transactional_db):
    alice, bob = make_user("alice"), make_user("bob")
    token = Token.objects.create(user=alice).key
    theirs = make_transcript(bob)
    cookie = session_cookie_header(bob)[1].decode()
    with running_web(WEB_ENV) as url:
        ws = "ws" + url.removeprefix("http")
        for scheme in ("Token", "Bearer"):
            assert answers_ping(
                ws + "/ws", additional_headers={"Authorization": f"{scheme} {token}"}
            )
        # From a page of another origin too: a token is not ambient like the cookie.
        assert answers_ping(
            ws + "/ws",
            origin="http://evil.example",
            additional_headers={"Authorization": f"Token {token}"},
        )
        # ... which from there is refused before the socket opens.
        with pytest.raises(InvalidStatus) as denied:
            connect(ws + "/ws", origin="http://evil.example", additional_headers={"Cookie": cookie})
        assert denied.value.response.status_code == 403
        assert refusal(ws + "/ws", additional_headers={"Authorization": "Token nope"})
        assert refusal(ws + "/ws")["message"] == "sign in first"
        event = refusal(f"{ws}/ws?token={token}")
        assert "never accepted in the URL" in event["message"]

        answer = httpx.post(url + "/api/ws-ticket/", headers={"Authorization": f"Token {token}"})
        assert answer.status_code == 201, answer.text
        ticket = answer.json()
        assert ticket["url"] == f"{ws}/ws?ticket={ticket['ticket']}"
        assert ticket["expires_in"] == 60
        with connect(ticket["url"], open_timeout=10) as socket:
            socket.send(json.dumps({"type": "start", "language": "ko", "sample_rate": 16000}))
            ready = json.loads(socket.recv(timeout=10))
        assert ready["type"] == "ready", ready
        assert Transcript.objects.get(pk=ready["session"]).owner == alice
        refusal(ticket["url"])  # once only

        # A ticket is its user's: alice's does not open bob's transcript.
        ticket = httpx.post(url + "/api/ws-ticket/", headers={"Authorization": f"Bearer {token}"})
        progress = f"{ws}/ws/transcripts/{theirs.pk}/?ticket={ticket.json()['ticket']}"
        # Closed before it opens (the socket's 404 is 4404, a handshake answer of 403).
        with pytest.raises(InvalidStatus) as closed:
            connect(progress, open_timeout=10)
        assert closed.value.response.status_code == 403
