"""What /ws records in the metrics (workers/metrics.py): the sockets signed in now and since
start, and the latency of each final (from the end of its utterance to its arrival)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from channels.testing import WebsocketCommunicator
from prometheus_client import REGISTRY

from sttproject.asgi import application
from tests.live.ws import HEADERS, ORIGIN, connect, start
from transcription.live.session import LiveSession
from transcription.speech.endpointing import Utterance


def value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def opened() -> WebsocketCommunicator:
    """A signed-in socket whose connect handler has finished (it answers in order)."""
    communicator = await connect()
    await communicator.send_json_to({"type": "ping"})
    assert json.loads(await communicator.receive_from(timeout=10))["type"] == "pong"
    return communicator


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("signed_in", "media", "no_leftover_sessions")
async def test_signed_in_sockets_are_counted_while_open(settings):
    active, total = value("stt_live_sessions_active"), value("stt_live_sessions_total")
    first = await opened()
    await start(first)
    second = await opened()
    assert value("stt_live_sessions_active") == active + 2
    assert value("stt_live_sessions_total") == total + 2
    await second.disconnect()
    assert value("stt_live_sessions_active") == active + 1
    # Refused sockets are not sessions.
    anonymous = WebsocketCommunicator(application, "/ws", headers=ORIGIN)
    await anonymous.connect(timeout=10)
    assert json.loads(await anonymous.receive_from(timeout=10))["code"] == "unauthorized"
    settings.LIVE_MAX_SESSIONS_PER_USER = 1
    third = WebsocketCommunicator(application, "/ws", headers=HEADERS)
    await third.connect(timeout=10)
    assert json.loads(await third.receive_from(timeout=10))["code"] == "too_many_sessions"
    assert value("stt_live_sessions_active") == active + 1
    await third.disconnect()
    await anonymous.disconnect()
    await first.disconnect()
    assert value("stt_live_sessions_active") == active
    assert value("stt_live_sessions_total") == total + 2


def test_a_session_counts_the_finals_it_timed():
    now = [1000.0]
    session = LiveSession("7a1c6a0e-0000-4000-8000-000000000002", clock=lambda: now[0])
    silence = np.zeros(16000, np.float32)
    session.on_audio_events([Utterance(1, silence, 0.0, 1.0, "silence")])
    now[0] += 0.8
    session.on_worker_event({"type": "final", "utterance": 0, "segment": 5, "text": "네"})
    assert (session.timed_finals, session.last_latency) == (1, 0.8)
    # A final nothing was waiting for (already answered) is not timed again.
    session.on_worker_event({"type": "final", "utterance": 0, "segment": 5, "text": "네"})
    assert session.timed_finals == 1
