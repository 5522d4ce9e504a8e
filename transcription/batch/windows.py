"""A recording in windows of bounded length, cut in pauses.

Decoding a whole upload into memory made the stt worker's memory grow with the file's length
(10 h of Opus held it at 7.8 GB; a lying header took it past 16 GB). The pipeline now reads
the file as a stream and works on one window at a time (``STT_WINDOW_S`` of audio, ten
minutes by default): VAD finds the utterances in the window, the window is cut in the last
long pause, everything before the cut is transcribed, and the next window starts at the cut.
Memory stays flat in the file's length, and a window's cut is a safe place to resume.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
# A pause this long separates utterances that are never decoded together (the engine joins
# across pauses up to STT_JOIN_PAUSE_S, at most 1.5 s), so cutting in it loses no context.
CUT_GAP_S = 2.0
# Silence kept before the cut when speech may start right after the window's end.
TAIL_S = 1.0


@dataclass(frozen=True)
class Window:
    start: float  # seconds from the start of the recording
    audio: np.ndarray
    last: bool  # nothing of the recording comes after it

    @property
    def duration(self) -> float:
        return self.audio.size / SAMPLE_RATE


def cut_point(
    regions: Sequence[tuple[float, float]], length_s: float, last: bool
) -> tuple[list[tuple[float, float]], float]:
    """Where to cut a window (seconds in it) and the utterances before the cut.

    The last window is taken whole. Otherwise the cut goes in the latest pause of at least
    ``CUT_GAP_S``: one between utterances, or the silence after the last utterance when the
    window ends in it. Without such a pause (speech all along), the latest pause of any
    length, leaving out the utterance that runs into the window's end.
    """
    regions = sorted(regions)
    if last:
        return list(regions), length_s
    # Pauses as (begin, end, utterances before it): before the first utterance, between
    # utterances, and after the last one up to the window's edge.
    ends = [0.0] + [end for _start, end in regions]
    starts = [start for start, _end in regions] + [length_s]
    pauses = [(ends[i], starts[i], i) for i in range(len(starts))]

    def place(pause: tuple[float, float, int]) -> float:
        begin, end, before = pause
        if before in (0, len(regions)):
            # At an edge, close to the speech: the far side may be cut mid-word.
            return max(begin + TAIL_S, end - TAIL_S)
        return (begin + end) / 2

    long = [p for p in pauses if p[1] - p[0] >= CUT_GAP_S]
    if long:
        return list(regions[: long[-1][2]]), place(long[-1])
    inner = pauses[1:-1]
    if inner:
        widest = max(inner, key=lambda p: (p[1] - p[0], p[0]))
        return list(regions[: widest[2]]), place(widest)
    # One utterance running into the window's end: nothing safe to cut at but the end.
    return list(regions), length_s


class AudioWindows:
    """Windows over decoded chunks: ``next()`` gives a window of at least ``window_s`` (less
    at the end), ``consume(seconds)`` drops its start; what follows the cut stays buffered
    and begins the next window."""

    def __init__(self, chunks: Iterator[np.ndarray], start_s: float, window_s: float) -> None:
        self._chunks = chunks
        self._size = max(1, round(window_s * SAMPLE_RATE))
        self._buffer = np.empty(0, dtype=np.float32)
        self._start = start_s
        self._ended = False

    @property
    def position(self) -> float:
        return self._start

    def next(self) -> Window | None:
        pieces = [self._buffer]
        held = self._buffer.size
        while held < self._size and not self._ended:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._ended = True
                break
            pieces.append(chunk)
            held += chunk.size
        if len(pieces) > 1:
            self._buffer = np.concatenate(pieces)
        if not self._buffer.size and self._ended:
            return None
        return Window(self._start, self._buffer, last=self._ended)

    def consume(self, seconds: float) -> None:
        drop = min(self._buffer.size, round(seconds * SAMPLE_RATE))
        # A copy, so the dropped start does not stay alive under a view.
        self._buffer = self._buffer[drop:].copy()
        self._start += drop / SAMPLE_RATE
