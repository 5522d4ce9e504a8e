"""A WebSocket message over the transport's size limit (sttproject/websocket.py), without a
web server: daphne's protocol driven byte by byte, and the consumers' answer to the notice.
The real server end to end is in test_oversized_frames.py (slow)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from types import SimpleNamespace

import numpy as np
import pytest
from channels.testing import WebsocketCommunicator
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from sttproject.asgi import application
from sttproject.websocket import (
    ANSWER_WAIT_S,
    MESSAGE_TOO_BIG,
    OVERSIZED,
    SizeLimitedWebSocketFactory,
)
from tests.live.ws import RATE, connect, pcm16, receive_until, recording_of, start
from transcription.live import store
from transcription.live.protocol import MAX_BINARY_FRAME, MAX_TEXT_FRAME

LIMIT = 1000
NOTICE = {"type": OVERSIZED, "size": 2 * 1024 * 1024, "limit": 1024 * 1024}


# --- the server side: daphne's protocol over a fake transport --------------------------
class _Queue(list):
    def put_nowait(self, message: dict) -> None:
        self.append(message)


class _Server:
    """What daphne's WebSocketProtocol asks of daphne's Server."""

    root_path = ""
    proxy_forwarded_address_header = None

    def __init__(self) -> None:
        self.queue = _Queue()

    def protocol_connected(self, protocol) -> None:
        pass

    def protocol_disconnected(self, protocol) -> None:
        pass

    def log_action(self, *args) -> None:
        pass

    def create_application(self, protocol, scope) -> _Queue:
        return self.queue


def frame(opcode: int, payload: bytes = b"", *, declared: int | None = None, fin=True) -> bytes:
    """A client frame (masked with zeros), whose header may declare more than ``payload``."""
    size = len(payload) if declared is None else declared
    if size < 126:
        length = bytes([0x80 | size])
    elif size < 1 << 16:
        length = bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        length = bytes([0x80 | 127]) + struct.pack("!Q", size)
    return bytes([(0x80 if fin else 0) | opcode]) + length + b"\0\0\0\0" + payload


def sent_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The server's (unmasked) frames in ``data``."""
    frames = []
    while data:
        opcode, size, at = data[0] & 0x0F, data[1] & 0x7F, 2
        if size == 126:
            (size,), at = struct.unpack("!H", data[2:4]), 4
        frames.append((opcode, data[at : at + size]))
        data = data[at + size :]
    return frames


@pytest.fixture
def socket():
    """An open WebSocket (the application accepted it) with limits of 1000 bytes."""
    server, clock, transport = _Server(), Clock(), StringTransport()
    factory = SizeLimitedWebSocketFactory(server, server="daphne")
    factory.setProtocolOptions(maxMessagePayloadSize=LIMIT, maxFramePayloadSize=LIMIT)
    factory._batched_timer = SimpleNamespace(call_later=clock.callLater)
    protocol = factory.buildProtocol(("127.0.0.1", 40000))
    protocol._raw_query_string = b""  # daphne's HTTP protocol sets it before the upgrade
    transport.unregisterProducer = lambda: None  # autobahn unregisters one it never registered
    protocol.makeConnection(transport)
    key = base64.b64encode(os.urandom(16)).decode()
    protocol.dataReceived(
        (
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    protocol.serverAccept()
    assert b" 101 " in transport.value()
    transport.clear()
    return SimpleNamespace(
        protocol=protocol,
        transport=transport,
        clock=clock,
        app=server.queue,
        open=protocol.STATE_OPEN,
    )


def test_the_application_hears_of_an_oversized_frame_after_what_came_before(socket):
    socket.protocol.dataReceived(frame(1, b'{"type":"ping"}'))
    # The header declares 5000 bytes: nothing of it is buffered, the connection stays up.
    socket.protocol.dataReceived(frame(2, bytes(500), declared=5000))
    assert socket.app[1:] == [
        {"type": "websocket.receive", "text": '{"type":"ping"}'},
        {"type": OVERSIZED, "size": 5000, "limit": LIMIT},
    ]
    assert socket.protocol.state == socket.open and socket.transport.value() == b""
    # The rest of it, and what follows, is read and dropped.
    socket.protocol.dataReceived(bytes(4500) + frame(1, b'{"type":"stop"}'))
    assert len(socket.app) == 3

    # The application's answer: its error event, then 1009, which autobahn lets only the
    # protocol itself send.
    socket.protocol.handle_reply({"type": "websocket.send", "text": '{"type":"error"}'})
    socket.protocol.handle_reply({"type": "websocket.close", "code": MESSAGE_TOO_BIG})
    error, close = sent_frames(socket.transport.value())
    assert error == (1, b'{"type":"error"}')
    assert close[0] == 8 and struct.unpack("!H", close[1][:2])[0] == MESSAGE_TOO_BIG
    # The client still finishing its big frame gets time to answer the close.
    assert socket.protocol.closeHandshakeTimeout >= 10

    socket.protocol.dataReceived(frame(8, struct.pack("!H", MESSAGE_TOO_BIG)))
    assert socket.transport.disconnecting or socket.protocol.state == socket.protocol.STATE_CLOSED
    socket.protocol.connectionLost(Failure(ConnectionDone()))
    assert socket.app[-1] == {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}
    assert not socket.clock.getDelayedCalls()  # the fallback was called off


def test_a_message_over_the_limit_in_fragments_is_caught_too(socket):
    socket.protocol.dataReceived(frame(2, bytes(600), fin=False))
    socket.protocol.dataReceived(frame(0, bytes(600), fin=True))
    assert socket.app[-1] == {"type": OVERSIZED, "size": 1200, "limit": LIMIT}
    assert socket.protocol.state == socket.open


def test_without_an_answer_the_server_closes_on_its_own(socket):
    socket.protocol.dataReceived(frame(2, bytes(2000)))
    socket.clock.advance(ANSWER_WAIT_S)
    error, close = sent_frames(socket.transport.value())
    assert error[0] == 1 and json.loads(error[1])["code"] == "frame_too_large"
    assert str(LIMIT) in json.loads(error[1])["message"]
    assert struct.unpack("!H", close[1][:2])[0] == MESSAGE_TOO_BIG


def test_a_closing_socket_is_still_dropped_as_autobahn_does(socket):
    socket.protocol.handle_reply({"type": "websocket.close", "code": 1000})
    socket.protocol.dataReceived(frame(2, bytes(10), declared=5000))
    assert socket.app[-1]["type"] != OVERSIZED


# --- the limits ------------------------------------------------------------------------
def test_frames_the_protocol_refuses_still_fit_under_the_transport_limit():
    """Frames the consumer answers and keeps the socket for (test_live_ws_input.py) must
    reach it: daphne's default limit (the web command sets none) is above the protocol's."""
    from daphne.cli import CommandLineInterface

    args = CommandLineInterface().parser.parse_args(["sttproject.asgi:application"])
    transport = min(args.websocket_max_message_size, args.websocket_max_frame_size)
    assert max(MAX_BINARY_FRAME, MAX_TEXT_FRAME) < transport


def test_every_websocket_consumer_answers_the_notice():
    from sttproject.routing import websocket_urlpatterns

    handler = OVERSIZED.replace(".", "_")
    for route in websocket_urlpatterns:
        consumer = route.callback.consumer_class
        assert callable(getattr(consumer, handler, None)), consumer


# --- the consumers' answer -------------------------------------------------------------
async def closed_with_1009(communicator: WebsocketCommunicator) -> dict:
    """The error event the consumer sent, after checking that a 1009 close follows it."""
    event = json.loads(await communicator.receive_from(timeout=10))
    assert await communicator.receive_output(timeout=10) == {
        "type": "websocket.close",
        "code": MESSAGE_TOO_BIG,
    }
    return event


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("signed_in", "media", "no_leftover_sessions")
async def test_a_native_session_numbers_the_error_and_ends_as_on_a_disconnect():
    communicator = await connect()
    ready = await start(communicator)
    await communicator.send_to(bytes_data=pcm16(np.zeros(RATE, np.float32)))
    await communicator.send_input(NOTICE)
    events = await receive_until(communicator, lambda e: e["type"] == "error", timeout=10)
    error = events[-1]
    assert error["code"] == "frame_too_large" and error["seq"] > ready["seq"]
    assert await communicator.receive_output(timeout=10) == {
        "type": "websocket.close",
        "code": MESSAGE_TOO_BIG,
    }
    await communicator.send_input({"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG})
    await communicator.wait(timeout=10)
    session = ready["session"]
    # Everything before the big frame is kept; the session was let go with its position.
    assert (await asyncio.to_thread(recording_of, session)).size == RATE
    state = await asyncio.to_thread(store.saved_state, session)
    assert state is not None and state.position_s == pytest.approx(1.0)
    assert await asyncio.to_thread(store.session_owner, session) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("signed_in", "media", "no_leftover_sessions")
async def test_the_original_client_gets_the_error_too():
    communicator = await connect()
    await communicator.send_json_to({"type": "config", "language": "ko"})
    await communicator.send_input(NOTICE)
    event = await closed_with_1009(communicator)
    assert event["type"] == "error" and event["code"] == "frame_too_large"
    assert "seq" not in event  # the original protocol has no numbers
    await communicator.disconnect()


@pytest.fixture
def watched(transactional_db) -> tuple[str, list[tuple[bytes, bytes]]]:
    """A transcript's progress path and its owner's headers."""
    from tests.conftest import session_cookie_header
    from tests.factories import make_transcript, make_user

    owner = make_user("watcher")
    path = f"/ws/transcripts/{make_transcript(owner).pk}/"
    return path, [(b"host", b"localhost"), session_cookie_header(owner)]


async def test_a_progress_watcher_gets_the_error_too(watched):
    communicator = WebsocketCommunicator(application, *watched)
    assert (await communicator.connect(timeout=10))[0]
    await communicator.send_input(NOTICE)
    assert (await closed_with_1009(communicator))["code"] == "frame_too_large"
    await communicator.disconnect()
