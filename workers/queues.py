"""Queue names, in one place. Every task names its queue; workers start with ``-Q``."""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    STT = "stt"  # GPU-pinned: decode, VAD, Whisper
    KEYWORDS = "keywords"  # vLLM client or the embedded Korean extractor


# Queues the platform cannot serve without (``/api/health`` checks each).
REQUIRED_QUEUES = (Queue.STT, Queue.KEYWORDS)


def task_routes() -> dict[str, dict[str, str]]:
    return {
        "transcription.tasks.*": {"queue": Queue.STT.value},
        "keywords.tasks.*": {"queue": Queue.KEYWORDS.value},
    }
