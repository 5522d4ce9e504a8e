"""/ws without workers: bad input, refused and limited sockets (the fast lane)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from channels.testing import WebsocketCommunicator

from sttproject.asgi import application
from tests.conftest import session_cookie_header
from tests.live.ws import HEADERS, ORIGIN, RATE, connect, receive_until, start

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("signed_in", "media", "no_leftover_sessions"),
]


async def test_bad_input_gets_errors_and_the_socket_stays_usable():
    communicator = await connect()

    async def expect_error(code, **send):
        await communicator.send_to(**send)
        events = await receive_until(communicator, lambda e: e["type"] == "error", timeout=10)
        assert events[-1]["code"] == code, events[-1]

    await expect_error("not_started", bytes_data=b"\x00\x01" * 100)  # audio before start
    await expect_error("bad_json", text_data="{not json")
    await expect_error("bad_message", text_data="[1, 2, 3]")
    await expect_error("unknown_type", text_data=json.dumps({"type": "dance"}))
    await expect_error(
        "bad_sample_rate", text_data=json.dumps({"type": "start", "sample_rate": 44100})
    )
    await start(communicator)
    await expect_error("bad_frame", bytes_data=b"\x00\x01\x02")  # odd length
    await expect_error("frame_too_large", bytes_data=b"\x00" * (10 * RATE * 4 + 2))
    await expect_error(
        "bad_base64", text_data=json.dumps({"type": "audio", "data": "!!!not base64!!!"})
    )
    await expect_error("already_started", text_data=json.dumps({"type": "start"}))
    # Still usable: ping answers, and a stop is accepted.
    await communicator.send_json_to({"type": "ping"})
    assert (await receive_until(communicator, lambda e: e["type"] == "pong", timeout=5))[-1][
        "type"
    ] == "pong"
    await communicator.send_json_to({"type": "stop"})
    await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=10)
    await communicator.disconnect()


async def test_float_frames_with_nan_are_refused():
    communicator = await connect()
    await start(communicator, encoding="f32le")
    bad = np.array([0.1, np.nan, 0.2, 0.3], dtype="<f4").tobytes()
    await communicator.send_to(bytes_data=bad)
    events = await receive_until(communicator, lambda e: e["type"] == "error", timeout=10)
    assert events[-1]["code"] == "bad_frame"
    await communicator.disconnect()


async def test_concurrent_sessions_per_user_are_limited(settings):
    settings.LIVE_MAX_SESSIONS_PER_USER = 1
    first = await connect()
    await start(first)
    second = WebsocketCommunicator(application, "/ws", headers=HEADERS)
    await second.connect(timeout=10)
    event = json.loads(await second.receive_from(timeout=10))
    assert event["code"] == "too_many_sessions"
    await second.disconnect()
    await first.disconnect()


async def test_anonymous_sockets_are_refused():
    communicator = WebsocketCommunicator(application, "/ws", headers=ORIGIN)
    await communicator.connect(timeout=10)
    event = json.loads(await communicator.receive_from(timeout=10))
    assert event["code"] == "unauthorized"
    assert (await communicator.receive_output(timeout=5))["type"] == "websocket.close"


async def test_another_users_session_cannot_be_resumed(signed_in):
    communicator = await connect()
    ready = await start(communicator)
    await communicator.disconnect()
    from tests.factories import make_user

    intruder = await asyncio.to_thread(make_user, "intruder")
    other = WebsocketCommunicator(
        application,
        "/ws",
        headers=[*ORIGIN, await asyncio.to_thread(session_cookie_header, intruder)],
    )
    await other.connect(timeout=10)
    await other.send_json_to(
        {"type": "start", "resume": {"session": ready["session"], "last_seq": 0}}
    )
    event = json.loads(await other.receive_from(timeout=10))
    assert event["type"] == "error" and event["code"] == "unknown_session"
    await other.disconnect()
