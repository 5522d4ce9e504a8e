"""Queue names, in one place. Every task names its queue; workers start with ``-Q``."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Queue(StrEnum):
    STT = "stt"  # GPU-pinned: decode, VAD, Whisper
    # Live finals (and the end of a live session). Every stt worker consumes it before
    # ``stt``: the broker is polled in the order a worker names its queues
    # (``queue_order_strategy: priority``), so a final never waits behind queued uploads.
    STT_LIVE = "stt_live"
    # Interim text of live utterances still going on. A worker of its own (started at low
    # CPU priority), so a final never waits behind a partial; LIVE_PARTIAL_QUEUE=stt folds
    # them back onto the stt workers.
    STT_PARTIAL = "stt_partial"
    KEYWORDS = "keywords"  # vLLM client or the embedded Korean extractor


# Queues the platform cannot serve without (``/api/health`` checks each).
REQUIRED_QUEUES = (Queue.STT, Queue.KEYWORDS)
# Queues whose workers load Whisper (and report their GPUs).
SPEECH_QUEUES = frozenset({Queue.STT.value, Queue.STT_LIVE.value, Queue.STT_PARTIAL.value})


def runs_whisper(queues: Iterable[str]) -> bool:
    return not SPEECH_QUEUES.isdisjoint(queues)


def consumed_queues(queue: str) -> list[str]:
    """The queues a worker started for ``queue`` consumes, in the order it polls them."""
    if queue == Queue.STT:
        return [Queue.STT_LIVE.value, Queue.STT.value]
    return [str(queue)]


def task_routes() -> dict[str, dict[str, str]]:
    # transcribe_partial is sent with an explicit queue (settings.LIVE_PARTIAL_QUEUE).
    # Exact names are matched before patterns.
    return {
        "transcription.tasks.transcribe_utterance": {"queue": Queue.STT_LIVE.value},
        "transcription.tasks.finish_live": {"queue": Queue.STT_LIVE.value},
        "transcription.tasks.*": {"queue": Queue.STT.value},
        "keywords.tasks.*": {"queue": Queue.KEYWORDS.value},
    }


_broker = None


def waiting(queue: str) -> int:
    """Messages waiting in ``queue`` on the broker (Redis: a list named after the queue);
    0 when the broker cannot be asked."""
    global _broker
    import redis
    from django.conf import settings

    try:
        if _broker is None:
            _broker = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
        return int(_broker.llen(queue))
    except redis.RedisError:
        return 0
