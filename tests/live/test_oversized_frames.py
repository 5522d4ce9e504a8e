"""Frames over daphne's 1 MiB limit, against the real web server (issue 12, item 8).

Reproduced on a running instance: a 2 MiB frame dropped the socket (1006) with no word to
the client. Now the server reads no more of such a frame, says why in an ``error`` event
(numbered in a native session, like every event there) and closes with 1009 (message too
big); the session ends as on a disconnect, so what was said before the frame is stored.
Frames over the protocol's own limit but under the transport's still reach the consumer and
leave the socket usable (test_live_ws_input.py).
"""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from bench.wsclient import WsClient
from tests.celery_workers import running_worker
from tests.conftest import session_cookie_header
from tests.live.ws import RATE, chunks, clip, pcm16
from tests.servers import running_web
from transcription.live.protocol import MAX_BINARY_FRAME
from transcription.models import Segment

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MIB = 1024 * 1024
# No recording under the repository's var/: the web process is not the test's.
WEB_ENV = {"LIVE_KEEP_AUDIO": "false"}


async def events_until_closed(client: WsClient, timeout: float = 20.0) -> list[dict]:
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while not events or events[-1]["type"] != "_closed":
        _arrived, event = await client.receive(max(0.1, deadline - time.monotonic()))
        events.append(event)
    return events


async def next_event(client: WsClient, kind: str, timeout: float = 10.0) -> dict:
    while True:
        _arrived, event = await client.receive(timeout)
        if event["type"] in (kind, "_closed"):
            return event


@pytest.fixture
def cookie(transactional_db) -> str:
    from tests.factories import make_user

    return session_cookie_header(make_user("big-frames"))[1].decode()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_oversized_frames_get_an_error_event_then_close_1009(cookie):
    with running_web(WEB_ENV) as url:

        async def native() -> tuple[dict, dict, list[dict]]:
            client = await WsClient.connect("127.0.0.1", port_of(url), cookie=cookie)
            client.send_json({"type": "start", "language": "ko", "encoding": "pcm_s16le"})
            ready = await next_event(client, "ready")
            # Just over the protocol's limit, under the transport's: refused, socket usable.
            client.send_bytes(bytes(MAX_BINARY_FRAME + 2))
            refused = await next_event(client, "error")
            client.send_bytes(bytes(2 * MIB))
            await client.writer.drain()
            return ready, refused, await events_until_closed(client)

        async def legacy() -> list[dict]:
            # The original browser client: base64 float32 in JSON, 2 MiB of text.
            client = await WsClient.connect("127.0.0.1", port_of(url), cookie=cookie)
            client.send_json({"type": "config", "language": "ko"})
            client.send_json(
                {"type": "audio", "data": base64.b64encode(bytes(1536 * 1024)).decode()}
            )
            await client.writer.drain()
            return await events_until_closed(client)

        ready, refused, events = asyncio.run(native())
        assert refused["code"] == "frame_too_large" and refused["seq"] == ready["seq"] + 1
        error, closed = events[-2:]
        assert error["type"] == "error" and error["code"] == "frame_too_large", events
        assert error["seq"] == refused["seq"] + 1  # numbered like every native event
        assert str(1024 * 1024) in error["message"]
        assert closed == {"type": "_closed", "code": 1009}

        events = asyncio.run(legacy())
        assert [e["type"] for e in events] == ["error", "_closed"], events
        assert events[0]["code"] == "frame_too_large" and "seq" not in events[0]
        assert events[1]["code"] == 1009


def test_what_came_before_an_oversized_frame_is_stored(cookie, eval_clip):
    audio, _ = clip(eval_clip, "ko_zeroth_104_003_0019", trailing_silence=0)
    with running_worker("stt"), running_web(WEB_ENV) as url:

        async def session() -> tuple[dict, list[dict]]:
            client = await WsClient.connect("127.0.0.1", port_of(url), cookie=cookie)
            client.send_json({"type": "start", "language": "ko", "encoding": "pcm_s16le"})
            ready = await next_event(client, "ready")
            # Mid-sentence: nothing has ended the utterance when the big frame comes.
            for piece in chunks(audio[: int(6.5 * RATE)]):
                client.send_bytes(pcm16(piece))
            client.send_bytes(bytes(2 * MIB))
            await client.writer.drain()
            return ready, await events_until_closed(client)

        ready, events = asyncio.run(session())
        assert events[-1] == {"type": "_closed", "code": 1009}, events
        assert events[-2]["code"] == "frame_too_large", events

        deadline = time.monotonic() + 90
        segments: list[Segment] = []
        while not segments and time.monotonic() < deadline:
            segments = list(Segment.objects.filter(transcript_id=ready["session"]))
            time.sleep(0.3)
    assert segments and "장관" in "".join(s.text for s in segments), segments
