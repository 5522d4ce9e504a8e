"""/ws: ``stopped`` is the last event of a native session. After a stop sent right after the
last audio, every final stored for the session and its keywords come before ``stopped``;
when the workers do not answer within LIVE_STOP_WAIT_S, an ``unfinished`` error says what
is missing, then ``stopped``. (The decisions themselves: test_session_stop.py.)"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import redis
from django.conf import settings

from tests.celery_workers import running_worker
from tests.live.ws import RATE, clip, connect, receive_until, start, stream
from tests.polling import wait_for
from transcription.models import Segment, Transcript
from workers.queues import Queue

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("signed_in", "media", "no_leftover_sessions"),
]

# Three sentences a second of silence apart: three utterances, the last one still in the
# endpointer when the stop comes (no silence after it).
CLIPS = ("ko_zeroth_104_003_0294", "ko_picovoice_leopard_test_ko", "ko_zeroth_104_003_0253")


def speech(eval_clip) -> np.ndarray:
    parts = [clip(eval_clip, clip_id, trailing_silence=1.0)[0] for clip_id in CLIPS]
    return np.concatenate(parts)[:-RATE]


@pytest.fixture
def empty_queues():
    """Jobs no worker took in a test are dropped after it, not left for the next test's."""
    yield
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(*[queue.value for queue in Queue])


@pytest.fixture(scope="module")
def stt_workers(django_db_blocker, django_db_setup):
    with (
        django_db_blocker.unblock(),
        running_worker("stt"),
        running_worker("stt_partial"),
    ):
        yield


@pytest.fixture(scope="module")
def keyword_worker(django_db_blocker, django_db_setup, stt_workers):
    with (
        django_db_blocker.unblock(),
        running_worker("keywords", extra_env={"KEYWORD_BACKEND": "embedded"}),
    ):
        yield


def wait_done(session: str, timeout: float = 30) -> None:
    wait_for(
        lambda: Transcript.objects.get(pk=session).status == Transcript.Status.DONE,
        timeout,
        f"transcript {session} done",
        interval=0.2,
    )


async def test_without_a_worker_stopped_comes_after_the_bound_naming_the_utterances(
    settings, eval_clip, empty_queues
):
    settings.LIVE_STOP_WAIT_S = 1.5
    communicator = await connect()
    ready = await start(communicator)
    await stream(communicator, speech(eval_clip))
    await communicator.send_json_to({"type": "stop"})
    asked = time.monotonic()
    events = await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=20)
    waited = time.monotonic() - asked
    error, last = events[-2:]
    assert last["session"] == ready["session"] and waited >= 1.5, (waited, events)
    assert error["type"] == "error" and error["code"] == "unfinished", events
    assert error["seq"] < last["seq"]
    # Each utterance the endpointer cut went to a worker and is named, the last one too.
    numbers = error["utterances"]
    assert len(numbers) >= 3 and numbers == list(range(len(numbers))), error
    assert error["message"].startswith(f"utterances {', '.join(map(str, numbers))} not")
    assert "background" in error["message"], error
    assert not [e for e in events if e["type"] == "final"]
    # Nothing of the stream follows ``stopped``; the socket goes on serving.
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.send_json_to({"type": "ping"})
    assert (await receive_until(communicator, lambda e: e["type"] == "pong", timeout=5))[-1]
    await communicator.disconnect()


async def test_a_socket_closed_while_stopping_leaves_the_work_queued(
    settings, eval_clip, empty_queues
):
    settings.LIVE_STOP_WAIT_S = 0.5
    communicator = await connect()
    ready = await start(communicator)
    await stream(communicator, speech(eval_clip))
    await communicator.send_json_to({"type": "stop"})
    await communicator.disconnect()  # before ``stopped``
    await asyncio.sleep(1.0)  # the bound passes with nobody to tell

    def queued() -> list[str]:
        client = redis.Redis.from_url(settings.REDIS_URL)
        return [m.decode() for m in client.lrange(Queue.STT_LIVE.value, 0, -1)]

    jobs = await asyncio.to_thread(queued)
    # Every utterance and the session's end wait for a worker, as after any disconnect.
    assert sum("transcribe_utterance" in job for job in jobs) >= 3, jobs
    assert any("finish_live" in job and ready["session"] in job for job in jobs), jobs


@pytest.mark.slow
async def test_stopped_waits_for_keywords_until_the_bound(
    settings, eval_clip, stt_workers, empty_queues
):
    """No keyword worker: the final comes, its keywords never do."""
    settings.LIVE_STOP_WAIT_S = 3.0
    audio, _entry = clip(eval_clip, CLIPS[0])
    communicator = await connect()
    await start(communicator)
    await stream(communicator, audio)
    events = await receive_until(
        communicator, lambda e: e["type"] == "final" and e["text"], timeout=90
    )
    final = events[-1]
    await communicator.send_json_to({"type": "stop"})
    asked = time.monotonic()
    events = await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=30)
    assert time.monotonic() - asked >= 3.0
    error = events[-2]
    assert error["code"] == "unfinished" and error["utterances"] == [], events
    assert error["keywords"] == [final["utterance"]], error
    assert f"keywords of {final['utterance']} not extracted yet" in error["message"]
    await communicator.disconnect()
    await asyncio.to_thread(wait_done, final["transcript"])


@pytest.mark.slow
async def test_every_stored_final_and_its_keywords_come_before_stopped(
    eval_clip, keyword_worker, empty_queues
):
    communicator = await connect()
    ready = await start(communicator)
    session = ready["session"]
    await stream(communicator, speech(eval_clip))
    await communicator.send_json_to({"type": "stop"})  # at once: the finals are all to come
    events = await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=120)
    assert not [e for e in events if e["type"] == "error"], events
    finals = {e["segment"]: e for e in events if e["type"] == "final" and e["segment"]}
    keyworded = {e["segment"] for e in events if e["type"] == "keywords"}
    assert len(finals) >= 3, [e["type"] for e in events]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # Nothing follows ``stopped`` on the socket, and the work is all done by then: once
    # the session is marked done, what the database holds is what the client was shown.
    assert await communicator.receive_nothing(timeout=2)
    await communicator.disconnect()
    await asyncio.to_thread(wait_done, session)

    def stored():
        return dict(Segment.objects.filter(transcript_id=session).values_list("pk", "text"))

    rows = await asyncio.to_thread(stored)
    assert rows and set(rows) == set(finals), (rows, finals)
    assert all(finals[pk]["text"] == text for pk, text in rows.items())
    assert set(rows) <= keyworded, (rows, keyworded)
