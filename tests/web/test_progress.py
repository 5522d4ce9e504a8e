"""``/ws/transcripts/<id>/``: who may watch a transcript's progress, through the real ASGI
application and the real (Redis) channel layer.

The rule is the pages' and the API's (transcription/access.py): a user watches their own
transcripts, staff watch everything, and anyone else is answered as if the id did not exist.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.testing import WebsocketCommunicator

from sttproject.asgi import application
from tests.conftest import session_cookie_header
from tests.factories import make_transcript
from transcription.notify import ProgressNotifier

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = 4404


@pytest.fixture
def transcripts(cast):
    return {
        "owned": make_transcript(cast.owner),
        # Made by an operator (the transcribe command) or before accounts existed.
        "ownerless": make_transcript(None),
    }


@pytest.fixture
def cookies(cast):
    return {
        name: session_cookie_header(getattr(cast, name)) for name in ("owner", "other", "staff")
    }


async def watch(transcript_id, cookie=None) -> tuple[WebsocketCommunicator, bool, object]:
    headers = [cookie] if cookie else []
    socket = WebsocketCommunicator(application, f"/ws/transcripts/{transcript_id}/", headers)
    connected, code = await socket.connect(timeout=10)
    return socket, connected, code


@pytest.mark.parametrize(
    ("who", "which"),
    [
        (None, "ownerless"),
        (None, "owned"),
        ("other", "owned"),
        ("other", "ownerless"),
        ("owner", "ownerless"),
        ("owner", "missing"),
    ],
)
async def test_others_are_refused_as_if_the_transcript_did_not_exist(
    transcripts, cookies, who, which
):
    pk = transcripts[which].pk if which in transcripts else uuid.uuid4()
    socket, connected, code = await watch(pk, cookies.get(who))
    assert (connected, code) == (False, REFUSED)
    await socket.disconnect()


@pytest.mark.parametrize(
    ("who", "which"), [("owner", "owned"), ("staff", "owned"), ("staff", "ownerless")]
)
async def test_the_owner_and_staff_watch_the_events_the_notifier_sends(
    transcripts, cookies, who, which
):
    transcript = transcripts[which]
    socket, connected, _ = await watch(transcript.pk, cookies[who])
    assert connected
    try:
        # The worker's side: the one notifier, synchronous, from another thread.
        notifier = ProgressNotifier(transcript.pk)
        await asyncio.to_thread(notifier.progress, 0.5, 3.0, 6.0)
        event = await socket.receive_json_from(timeout=10)
        assert event == {
            "type": "progress",
            "transcript": str(transcript.pk),
            "progress": 0.5,
            "processed_s": 3.0,
            "duration": 6.0,
        }
    finally:
        await socket.disconnect()
