"""Queue names, in one place. Every task names its queue; workers start with ``-Q``."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Queue(StrEnum):
    STT = "stt"  # GPU-pinned: decode, VAD, Whisper
    # Interim text of live utterances still going on. A worker of its own (started at low
    # CPU priority), so a final never waits behind a partial; LIVE_PARTIAL_QUEUE=stt folds
    # them back onto the stt workers.
    STT_PARTIAL = "stt_partial"
    KEYWORDS = "keywords"  # vLLM client or the embedded Korean extractor


# Queues the platform cannot serve without (``/api/health`` checks each).
REQUIRED_QUEUES = (Queue.STT, Queue.KEYWORDS)
# Queues whose workers load Whisper (and report their GPUs).
SPEECH_QUEUES = frozenset({Queue.STT.value, Queue.STT_PARTIAL.value})


def runs_whisper(queues: Iterable[str]) -> bool:
    return not SPEECH_QUEUES.isdisjoint(queues)


def task_routes() -> dict[str, dict[str, str]]:
    # transcribe_partial is sent with an explicit queue (settings.LIVE_PARTIAL_QUEUE).
    return {
        "transcription.tasks.*": {"queue": Queue.STT.value},
        "keywords.tasks.*": {"queue": Queue.KEYWORDS.value},
    }
