"""Handing a live session's work to the workers: utterances and interim text to the stt
queues (the audio parked in Redis), and the end of a stream to ``finish_live``."""

from __future__ import annotations

import time
import uuid

import redis
from django.conf import settings

from transcription.live import store
from transcription.live.jobs import PartialJob, UtteranceJob
from transcription.live.session import SendPartial, SendUtterance
from transcription.live.store import Request, StreamState
from workers.queues import Queue

# Slack on top of the silence an early final waits for: frames arrive in bursts.
EARLY_MARGIN_S = 1.5
# How long the answer of partial_queue() is kept.
PARTIAL_ROUTE_TTL_S = 10
# A partial nobody picked up within a few seconds is stale; the broker drops it.
PARTIAL_EXPIRES_S = 5


def _park(audio) -> str:
    key = f"live:audio:{uuid.uuid4().hex}"
    store.put_audio(key, audio.astype("<f4").tobytes())
    return key


def send_utterance(session: str, language: str, action: SendUtterance) -> UtteranceJob:
    from transcription.tasks import transcribe_utterance

    early_wait_s = 0.0
    if action.early_key:
        # The worker waits this long (from now) for the silence rule to end the utterance.
        silence_s = (settings.VAD_MIN_SILENCE_MS - settings.LIVE_PAUSE_MS) / 1000
        early_wait_s = max(silence_s, 0.0) + EARLY_MARGIN_S
    job = UtteranceJob(
        session=session,
        index=action.index,
        start=action.start,
        end=action.end,
        audio_key=_park(action.audio),
        language=language,
        dispatched_at=time.time(),
        early_key=action.early_key,
        early_wait_s=early_wait_s,
    )
    # A partial still queued is older than this: the worker skips it.
    store.mark_request(session, Request("early" if action.early_key else "final", action.index))
    transcribe_utterance.apply_async(args=[job.to_dict()])
    return job


def partial_queue() -> str:
    """Where partial requests go: ``LIVE_PARTIAL_QUEUE``, unless no worker consumes
    ``stt_partial`` (a deployment that runs only stt workers): then the stt workers do them,
    as with ``LIVE_PARTIAL_QUEUE=stt``, rather than leaving them in a queue nobody reads.
    Looked up in the worker heartbeats at most every ``PARTIAL_ROUTE_TTL_S`` seconds."""
    if settings.LIVE_PARTIAL_QUEUE == Queue.STT:
        return Queue.STT.value
    from django.core.cache import cache

    from workers.heartbeat import online_workers

    queue = cache.get("live:partial-queue")
    if queue is None:
        try:
            records = online_workers(store.client())
        except redis.RedisError:
            return Queue.STT_PARTIAL.value
        served = any(Queue.STT_PARTIAL.value in r.get("queues", []) for r in records)
        queue = Queue.STT_PARTIAL.value if served else Queue.STT.value
        cache.set("live:partial-queue", queue, PARTIAL_ROUTE_TTL_S)
    return queue


def partials_on_stt() -> bool:
    """Whether the stt workers answer interim-text requests (see ``partial_queue``)."""
    return partial_queue() == Queue.STT


def send_partial(session: str, language: str, action: SendPartial) -> PartialJob:
    from transcription.tasks import transcribe_partial

    job = PartialJob(
        session=session,
        index=action.index,
        n=action.n,
        start=action.start,
        audio_key=_park(action.audio),
        language=language,
    )
    store.mark_request(session, Request("partial", action.index, action.n))
    transcribe_partial.apply_async(
        args=[job.to_dict()], queue=partial_queue(), expires=PARTIAL_EXPIRES_S
    )
    return job


def send(session: str, language: str, action: SendUtterance | SendPartial) -> None:
    if isinstance(action, SendUtterance):
        send_utterance(session, language, action)
    else:
        send_partial(session, language, action)


def finish(session: str, channel: str, state: StreamState) -> None:
    """The stream of ``channel`` ended: save where it stopped, let the session go and have
    a worker mark it done once the finals before it are stored."""
    from transcription.tasks import finish_live

    store.save_state(session, state)
    # Released before finish_live is queued: the task marks the session done only while no
    # connection holds it, and a resume that claims it after this point keeps it running.
    store.release_session(session, channel)
    finish_live.apply_async(args=[session, round(state.position_s, 3)])
