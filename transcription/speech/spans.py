"""Spans: what the batch engine gives Whisper, and where.

Utterances apart by short pauses are joined into spans (``join_regions``); each span is
framed with the real audio around its speech (``frame_spans``); spans are packed into
shared 30 s windows (``pack_regions``, ``window_audio``), and ``Placement`` says where each
one sits in its window so its words can be put back on the recording. Plain functions over
plain data; the engine (``speech/engine.py``) runs Whisper on what they lay out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000

# Packing: spans share 30 s encoder windows (the encoder is most of the CPU cost),
# separated by enough silence for Whisper to start a new line at each: the real audio
# around their speech (frame_spans), then zeros up to this much.
PACK_GAP_S = 2.0
# Joined spans stay inside one Whisper window.
JOIN_MAX_S = 28.0
WHISPER_WINDOW_S = 30.0
# A span is decoded with this much audio before and after its speech, and with a silence
# after it shorter than CONTEXT_SILENCE_S whole: faster-whisper's VAD filter defaults
# (speech_pad_ms, min_silence_duration_ms), so Whisper hears what it hears under plain use.
CONTEXT_PAD_S = 0.4
CONTEXT_SILENCE_S = 2.0


@dataclass(frozen=True)
class Placement:
    """Where one stretch of the recording (``region``) sits in a packed window: ``start``/
    ``end`` in the window's audio. ``keep``: the span its words belong to and are kept inside
    (the region itself unless it is a span's clip, its speech with the audio around it)."""

    region: tuple[float, float]
    start: float
    end: float
    keep: tuple[float, float] | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        return self.keep or self.region


Gap = float | Callable[[tuple[float, float], tuple[float, float]], float]


def _gap_s(gap: Gap, before: tuple[float, float], after: tuple[float, float]) -> float:
    return gap(before, after) if callable(gap) else gap


def pack_regions(
    regions: Sequence[tuple[float, float]], window_s: float, gap_s: Gap
) -> list[list[tuple[float, float]]]:
    """Group consecutive utterances into windows of at most ``window_s`` seconds of audio,
    ``gap_s`` of silence between two utterances (a number, or a function of the two). An
    utterance longer than a window gets one of its own; ``window_s`` 0 puts every
    utterance in its own window."""
    windows: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    length = 0.0
    for region in regions:
        duration = region[1] - region[0]
        gap = _gap_s(gap_s, current[-1], region) if current else 0.0
        if current and (window_s <= 0 or length + gap + duration > window_s):
            windows.append(current)
            current, length, gap = [], 0.0, 0.0
        length += gap + duration
        current.append(region)
    if current:
        windows.append(current)
    return windows


def window_audio(
    audio: np.ndarray, window: Sequence[tuple[float, float]], gap_s: Gap
) -> tuple[np.ndarray, list[Placement]]:
    pieces, placements, position = [], [], 0
    for index, (start, end) in enumerate(window):
        if pieces:
            gap = int(round(_gap_s(gap_s, window[index - 1], (start, end)) * SAMPLE_RATE))
            pieces.append(np.zeros(gap, dtype=np.float32))
            position += gap
        piece = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        pieces.append(piece)
        placements.append(
            Placement((start, end), position / SAMPLE_RATE, (position + piece.size) / SAMPLE_RATE)
        )
        position += piece.size
    return np.concatenate(pieces).astype(np.float32, copy=False), placements


@dataclass(frozen=True)
class Span:
    """Utterances separated by short pauses, decoded together as they were spoken (the real
    audio between them included), so Whisper sees a sentence whole across a pause."""

    start: float
    end: float
    regions: tuple[tuple[float, float], ...]

    @property
    def bounds(self) -> tuple[float, float]:
        return (self.start, self.end)


def join_regions(
    regions: Sequence[tuple[float, float]], pause_s: float, max_s: float
) -> list[Span]:
    """Consecutive utterances whose pause is at most ``pause_s`` joined into spans of at most
    ``max_s`` seconds (a single longer utterance stays a span of its own). ``pause_s`` 0
    keeps every utterance apart."""
    spans: list[Span] = []
    current: list[tuple[float, float]] = []
    for region in regions:
        if (
            current
            and pause_s > 0
            and region[0] - current[-1][1] <= pause_s
            and region[1] - current[0][0] <= max_s
        ):
            current.append(region)
            continue
        if current:
            spans.append(Span(current[0][0], current[-1][1], tuple(current)))
        current = [region]
    if current:
        spans.append(Span(current[0][0], current[-1][1], tuple(current)))
    return spans


def frame_spans(
    spans: Sequence[Span], pad_s: float, until_s: float
) -> dict[tuple[float, float], tuple[float, float]]:
    """The clip each span is decoded from: its speech with the real audio around it, as
    faster-whisper's own VAD filter frames speech for Whisper (``CONTEXT_PAD_S`` of audio
    before and after the speech; a silence after it shorter than ``CONTEXT_SILENCE_S`` kept
    whole, up to the next span or ``until_s``). With whisper-base a word can turn on where
    the audio given to it begins and ends by a tenth of a second; framed this way a file
    of one sentence is decoded from the very audio plain faster-whisper decodes. Clips never
    reach into another span and do not overlap; a clip stays within one Whisper window.
    ``pad_s``: the VAD padding already inside the spans' bounds."""
    extra = max(CONTEXT_PAD_S - pad_s, 0.0)
    starts = []
    for i, span in enumerate(spans):
        floor = spans[i - 1].end if i else 0.0
        floor = max(floor, span.end - WHISPER_WINDOW_S)
        starts.append(min(max(span.start - extra, floor, 0.0), span.start))
    frames = {}
    for i, span in enumerate(spans):
        limit = starts[i + 1] if i + 1 < len(spans) else max(until_s, span.end)
        next_speech = spans[i + 1].start + pad_s if i + 1 < len(spans) else until_s
        end = limit if next_speech - (span.end - pad_s) < CONTEXT_SILENCE_S else span.end + extra
        end = min(end, limit, starts[i] + WHISPER_WINDOW_S)
        frames[span.bounds] = (starts[i], max(end, span.end))
    return frames


def pack_spans(
    spans: Sequence[Span], frames: dict, pad_s: float, window_s: float
) -> tuple[list[list[tuple[float, float]]], Callable[[tuple, tuple], float]]:
    """Framed spans packed into windows: their clips (``frames``), and the zeros to put
    between two of them (for ``window_audio``). The real audio around two spans' speech
    counts toward the ``PACK_GAP_S`` between them, and ``window_s`` limits speech with its
    VAD padding (the first and last clip of a window bring their context with them, still
    well inside Whisper's 30 s), so spans pack as densely as they would unframed."""
    span_of = {frames[span.bounds]: span for span in spans}

    def gap(before: tuple[float, float], after: tuple[float, float]) -> float:
        context = (before[1] - span_of[before].end) + (span_of[after].start - after[0])
        return max(PACK_GAP_S - context, 0.0)

    if window_s > 0:
        window_s = min(window_s + 2 * max(CONTEXT_PAD_S - pad_s, 0.0), WHISPER_WINDOW_S)
    return pack_regions([frames[span.bounds] for span in spans], window_s, gap), gap
