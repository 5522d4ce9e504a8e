"""Talking to /ws as a client in tests: signed-in headers, audio frames, waiting for events."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
from channels.testing import WebsocketCommunicator

from sttproject.asgi import application
from tests.conftest import session_cookie_header
from transcription.models import Transcript
from transcription.speech.audio import decode_audio

RATE = 16000
# A browser on the site's own page: the Origin names the host the socket is opened on.
ORIGIN = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
# The headers of every socket a test opens: set by the signed_in fixture (conftest.py).
HEADERS: list[tuple[bytes, bytes]] = []


def recording_of(session: str) -> np.ndarray:
    transcript = Transcript.objects.get(pk=session)
    assert transcript.audio.name.startswith("live/"), transcript.audio.name
    return decode_audio(transcript.audio.path)


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def chunks(samples: np.ndarray, seconds: float = 0.25):
    step = int(seconds * RATE)
    for i in range(0, len(samples), step):
        yield samples[i : i + step]


async def connect(user=None) -> WebsocketCommunicator:
    """A socket signed in as the signed_in fixture's user, or as ``user`` when given (tests
    outside tests/live)."""
    headers = HEADERS
    if user is not None:
        headers = [*ORIGIN, await asyncio.to_thread(session_cookie_header, user)]
    communicator = WebsocketCommunicator(application, "/ws", headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


async def receive_until(communicator, predicate, timeout=60.0) -> list[dict]:
    """Collect events until one satisfies ``predicate``; returns all of them."""
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = json.loads(
                await communicator.receive_from(timeout=max(0.1, deadline - time.monotonic()))
            )
        except TimeoutError:
            break
        events.append(event)
        if predicate(event):
            return events
    raise AssertionError(f"no matching event within {timeout} s; got {events}")


async def start_events(communicator, timeout: float = 10, **extra) -> list[dict]:
    """Send ``start`` (with ``extra``, e.g. ``resume``); the events up to ``ready``."""
    await communicator.send_json_to(
        {"type": "start", "language": "ko", "sample_rate": RATE, "encoding": "pcm_s16le", **extra}
    )
    events = await receive_until(
        communicator, lambda e: e["type"] in ("ready", "error"), timeout=timeout
    )
    assert events[-1]["type"] == "ready", events
    return events


async def start(communicator, **extra) -> dict:
    return (await start_events(communicator, **extra))[-1]


async def resume(communicator, session: str, last_seq: int, timeout: float = 15) -> list[dict]:
    """Resume ``session``: the replayed events, then ``ready``."""
    events = await start_events(
        communicator, timeout=timeout, resume={"session": session, "last_seq": last_seq}
    )
    assert events[-1]["resumed"] is True, events
    return events


async def stream(communicator, samples, *, encoding="pcm_s16le"):
    for piece in chunks(samples):
        await communicator.send_to(
            bytes_data=pcm16(piece) if encoding == "pcm_s16le" else piece.astype("<f4").tobytes()
        )


def clip(eval_clip, clip_id, trailing_silence=1.5):
    path, entry = eval_clip(clip_id)
    audio = decode_audio(path)
    return np.concatenate([audio, np.zeros(int(trailing_silence * RATE), np.float32)]), entry
