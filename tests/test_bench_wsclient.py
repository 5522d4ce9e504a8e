"""The live benchmark's own WebSocket client (bench/wsclient.py) against the real daphne."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.wsclient import WsClient
from tests.conftest import session_cookie_header
from tests.servers import running_web

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def next_event(client: WsClient, kind: str, timeout: float = 10.0) -> tuple[float, dict]:
    while True:
        arrived, event = await client.receive(timeout)
        if event["type"] in (kind, "_closed"):
            return arrived, event


def test_the_bench_client_speaks_the_native_protocol_with_daphne():
    from tests.factories import make_user

    _name, cookie = session_cookie_header(make_user("bench-client"))
    with running_web() as url:
        port = int(url.rsplit(":", 1)[1])

        async def session() -> list[dict]:
            client = await WsClient.connect("127.0.0.1", port, cookie=cookie.decode())
            client.send_json({"type": "start", "language": "ko", "encoding": "pcm_s16le"})
            _t, ready = await next_event(client, "ready")
            # A 70 000-byte frame needs the 64-bit length form on the way out.
            client.send_bytes(bytes(70_000))
            client.send_json({"type": "stop"})
            arrived, stopped = await next_event(client, "stopped")
            await client.close()
            _t, closed = await client.receive(5)
            return [ready, stopped, closed, {"arrived": arrived}]

        ready, stopped, closed, stamp = asyncio.run(session())
    assert ready["session"] and stopped["session"] == ready["session"]
    # 35 000 samples of 16-bit silence at 16 kHz, as the server counted them.
    assert stopped["duration"] == pytest.approx(35_000 / 16_000, abs=0.01)
    assert closed == {"type": "_closed", "code": 1000}
    # Arrival is stamped on the wall clock when the frame is read, for latency figures.
    assert abs(stamp["arrived"] - time.time()) < 60
    # Without the session cookie the server says why, then closes the socket.
    with running_web() as url:
        port = int(url.rsplit(":", 1)[1])

        async def anonymous() -> list[dict]:
            client = await WsClient.connect("127.0.0.1", port)
            events = [(await client.receive(10))[1], (await client.receive(10))[1]]
            await client.close()
            return events

        error, closed = asyncio.run(anonymous())
    assert error["type"] == "error" and error["code"] == "unauthorized"
    assert closed == {"type": "_closed", "code": 4401}


def test_the_bench_client_follows_a_transcript_with_an_api_token():
    """bench-batch learns that an upload is done from its event stream, as a program would."""
    from rest_framework.authtoken.models import Token

    from tests.factories import make_user
    from transcription.models import Transcript
    from transcription.notify import ProgressNotifier

    user = make_user("bench-token")
    token = Token.objects.create(user=user)
    transcript = Transcript.objects.create(owner=user, source=Transcript.Source.UPLOAD, title="t")
    other = Transcript.objects.create(
        owner=make_user("someone-else"), source=Transcript.Source.UPLOAD, title="o"
    )
    headers = {"Authorization": f"Token {token.key}"}
    with running_web() as url:
        port = int(url.rsplit(":", 1)[1])

        async def follow(transcript_id) -> dict:
            client = await WsClient.connect(
                "127.0.0.1", port, path=f"/ws/transcripts/{transcript_id}/", headers=headers
            )
            await asyncio.to_thread(ProgressNotifier(transcript_id).status, "done")
            _t, event = await next_event(client, "status")
            await client.close()
            return event

        event = asyncio.run(follow(transcript.pk))
        # Another user's transcript: the handshake is refused, as for one that does not exist.
        with pytest.raises(ConnectionError, match="403"):
            asyncio.run(follow(other.pk))
    assert event["status"] == "done" and event["transcript"] == str(transcript.pk)
