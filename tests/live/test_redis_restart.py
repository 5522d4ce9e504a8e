"""A live session across a Redis that is killed and comes back empty (issue 12, item 5).

Everything a live session keeps in Redis (its event log and numbering, the utterance audio
handed to workers, the queued jobs) is gone after such a restart; PostgreSQL and the
recording are not. Runs the real thing: daphne, an stt worker and a Redis of the test's
own (tests/live/redis_server.py), which the test kills with SIGKILL mid-session.
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings

from bench.cer import cer
from bench.common import free_port
from bench.wsclient import WsClient
from tests import celery_workers
from tests.celery_workers import log_text, process_group, running_worker
from tests.conftest import session_cookie_header
from tests.live.redis_server import OwnRedis
from tests.live.ws import RATE, chunks, clip, pcm16
from tests.polling import wait_for
from transcription.models import Segment, Transcript
from workers.launch import web_command

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Six sentences of the evaluation set, one utterance each.
CLIPS = [
    "ko_zeroth_104_003_0294",
    "ko_picovoice_leopard_test_ko",
    "ko_zeroth_104_003_0193",
    "ko_zeroth_104_003_0253",
    "ko_zeroth_104_003_0280",
    "ko_zeroth_104_003_0019",
]


@pytest.fixture(scope="module")
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_stack(own_redis, django_db_blocker, django_db_setup, tmp_path_factory):
    """daphne and an stt worker on the test's own Redis, with recordings in a folder of
    the module's own."""
    data = tmp_path_factory.mktemp("data")
    env = {
        "DATA_DIR": str(data),
        "SECRET_KEY": settings.SECRET_KEY,
        "WHISPER_MODEL": settings.WHISPER_MODEL,
        "LIVE_PARTIAL_QUEUE": "stt",
    }
    with (
        django_db_blocker.unblock(),
        override_settings(REDIS_URL=own_redis.url),
        running_worker("stt", extra_env=env),
        web(extra_env={**env, "REDIS_URL": own_redis.url}) as (port, log),
    ):
        yield {"port": port, "media": data / "media", "web_log": log}


@contextmanager
def web(extra_env: dict[str, str]):
    """daphne, as tests/servers.py starts it, with its log at hand."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": celery_workers.test_database_url(), **extra_env}
    with process_group(web_command("127.0.0.1", port), env, stop_timeout=15) as (process, log):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{log_text(log)}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/config", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("daphne did not answer")
        yield port, log


async def events_until(client: WsClient, predicate, timeout: float) -> list[dict]:
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _at, event = await client.receive(max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        events.append(event)
        if predicate(event):
            return events
    raise AssertionError(f"no matching event within {timeout} s; got {events}")


def send_audio(client: WsClient, samples: np.ndarray) -> None:
    for piece in chunks(samples):
        client.send_bytes(pcm16(piece))


def rows(session: str) -> list[tuple[int, int, float, float, str]]:
    return list(
        Segment.objects.filter(transcript_id=session)
        .order_by("index")
        .values_list("pk", "index", "start", "end", "text")
    )


def wait_done(session: str, timeout: float = 120.0) -> None:
    wait_for(
        lambda: Transcript.objects.get(pk=session).status == Transcript.Status.DONE,
        timeout,
        f"transcript {session} done",
    )


async def until_ready(client: WsClient, log) -> list[dict]:
    events = await events_until(client, lambda e: e["type"] in ("ready", "error", "_closed"), 30)
    assert events[-1]["type"] == "ready", (events, log_text(log))
    return events


def finals(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "final"]


@pytest.mark.parametrize("reconnect", [True, False], ids=["resumed", "same-socket"])
async def test_a_redis_restart_loses_no_utterance_and_overwrites_no_final(
    live_stack, own_redis, eval_clip, reconnect
):
    """Six utterances; Redis is killed while the third and fourth wait for a worker (their
    jobs and audio die with it) and comes back empty. Every utterance is stored once, the
    numbers go on rising with the timeline, and no final the client saw is overwritten.

    ``resumed``: Redis stays down long enough that the socket drops, and the client
    resumes the session. ``same-socket``: Redis is back at once and the socket lives on."""
    from tests.factories import make_user

    user = await asyncio.to_thread(make_user, "speaker")
    _name, value = await asyncio.to_thread(session_cookie_header, user)
    cookie = value.decode()
    audio = [clip(eval_clip, clip_id, trailing_silence=1.5) for clip_id in CLIPS]
    log = live_stack["web_log"]
    seen: list[dict] = []  # every final the client was shown

    client = await WsClient.connect("127.0.0.1", live_stack["port"], cookie=cookie)
    client.send_json({"type": "start", "language": "ko", "sample_rate": RATE})
    ready = (await until_ready(client, log))[-1]
    session, last_seq = ready["session"], ready["seq"]
    for samples, _entry in audio[:2]:
        send_audio(client, samples)
        events = await events_until(client, lambda e: e["type"] == "final" and e["text"], 90)
        seen += finals(events)
        last_seq = max([last_seq, *(e.get("seq", 0) for e in events)])
    # The third and fourth are cut and handed to the worker, which takes the third...
    send_audio(client, audio[2][0])
    send_audio(client, audio[3][0])
    await asyncio.sleep(0.5)
    own_redis.kill()  # ... and Redis dies with the fourth's job and audio, and the state.
    if reconnect:
        await asyncio.sleep(3)
    own_redis.start()
    await asyncio.sleep(1)
    while not client.inbox.empty():
        _at, event = await client.receive(1)
        seen += finals([event])
        last_seq = max(last_seq, event.get("seq", 0))

    if reconnect:
        await client.close()  # the network dropped (or the server did)
        client = await WsClient.connect("127.0.0.1", live_stack["port"], cookie=cookie)
        resume = {"session": session, "last_seq": last_seq}
        client.send_json({"type": "start", "language": "ko", "sample_rate": RATE, "resume": resume})
        events = await until_ready(client, log)
        seen += finals(events)
        assert all(e["seq"] > last_seq for e in events), events
    else:
        assert not client.closed, log_text(log)
    for samples, _entry in audio[4:]:
        send_audio(client, samples)
    client.send_json({"type": "stop"})
    events = await events_until(client, lambda e: e["type"] in ("stopped", "_closed"), 180)
    assert events[-1]["type"] == "stopped", (events, log_text(log))
    seen += finals(events)
    await client.close()
    await asyncio.to_thread(wait_done, session)

    def found(texts: list[str]) -> list[int]:
        return [
            len([t for t in texts if cer(entry["reference"], t, numerals=True) < 0.4])
            for _samples, entry in audio
        ]

    # Finals of the recovered stretches may still be on their way (the worker decodes them
    # after the stream's own): wait for every utterance, or the time-out, then judge.
    deadline = time.monotonic() + 120
    while True:
        stored = await asyncio.to_thread(rows, session)
        counts = found([r[4] for r in stored])
        if all(counts) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    summary = [(r[1], round(r[2], 2), round(r[3], 2), r[4][:24]) for r in stored]
    assert counts == [1] * len(audio), (counts, summary, log_text(log))
    assert len(stored) == len(audio), summary
    # One timeline, numbered in its order across the restart.
    assert [r[2] for r in stored] == sorted(r[2] for r in stored), summary
    # No final the client saw was overwritten by another utterance.
    by_pk = {r[0]: r for r in stored}
    for final in seen:
        if final.get("segment"):
            row = by_pk.get(final["segment"])
            assert row is not None, (final, summary)
            assert row[1] == final["utterance"], (final, summary)
            assert min(row[3], final["end"]) - max(row[2], final["start"]) > 0, (final, summary)
    numbers = [f["utterance"] for f in seen if f["text"]]
    assert len(numbers) == len(set(numbers)), seen
