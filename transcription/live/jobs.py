"""What the consumer hands a worker: one value per job, sent as a dict through Celery."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Job:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class UtteranceJob(_Job):
    """Transcribe utterance ``index`` of ``session`` (its audio parked in Redis under
    ``audio_key``), store it as segment ``index`` and announce the final.

    With ``early_key`` the utterance is only paused so far (an early final): the worker
    computes the text at once, then waits for the consumer's decision up to
    ``early_wait_s`` after ``dispatched_at``."""

    session: str
    index: int
    start: float
    end: float
    audio_key: str
    language: str
    dispatched_at: float
    early_key: str | None = None
    early_wait_s: float = 0.0

    @classmethod
    def from_positional(cls, *args, **kwargs) -> dict[str, Any]:
        """The job of a message queued before jobs were values: ``(session, index, start,
        end, audio_key, language, dispatched_at)`` and the early final's keywords."""
        names = [f.name for f in dataclasses.fields(cls)]
        return {**dict(zip(names, args, strict=False)), **kwargs}


@dataclass(frozen=True)
class PartialJob(_Job):
    """Interim text ``n`` of utterance ``index``, from ``start`` on the timeline."""

    session: str
    index: int
    n: int
    start: float
    audio_key: str
    language: str
