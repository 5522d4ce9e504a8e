"""What the endpointer reports of a stream (endpointing.py's docstring says when): plain
values that the live session turns into work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Reason = Literal["silence", "max_length", "flush"]


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """An utterance began at ``at`` seconds (speech pad included)."""

    at: float
    utterance_id: int


@dataclass(frozen=True, slots=True)
class Partial:
    """The audio of utterance ``utterance_id`` from ``start`` to ``end`` (still going on).

    ``audio`` is a fresh copy owned by the receiver; it is at most ``max_utterance_s`` long.
    Equality ignores ``audio`` (numpy arrays have no truth value); compare it explicitly.
    """

    utterance_id: int
    audio: np.ndarray = field(compare=False, repr=False)
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Pause:
    """Utterance ``utterance_id`` would end at ``end`` if the silence that began lasts
    ``min_silence_ms``. ``audio`` is the stream's samples from ``start``, as far as
    ``pause_ms`` after the speech (at most to ``end``). Equality ignores ``audio``."""

    utterance_id: int
    audio: np.ndarray = field(compare=False, repr=False)
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Resumed:
    """Speech came back after the ``Pause`` of ``utterance_id``: that end will not be it."""

    utterance_id: int


@dataclass(frozen=True, slots=True)
class Utterance:
    """A finished utterance: ``audio`` is exactly the stream's samples from ``start`` to ``end``."""

    utterance_id: int
    audio: np.ndarray = field(compare=False, repr=False)
    start: float
    end: float
    reason: Reason

    @property
    def duration(self) -> float:
        return self.end - self.start


Event = SpeechStarted | Partial | Pause | Resumed | Utterance
