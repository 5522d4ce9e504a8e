"""The Whisper engine: one model per worker process, loaded lazily and reused.

Audio is cut into utterances by Silero VAD (``speech_regions``), and the utterances
are transcribed in batches through faster-whisper's ``BatchedInferencePipeline``
with the utterances as clip timestamps. Compared with plain ``model.transcribe``
this is faster on long recordings (silence is never decoded and several utterances
share one encoder/decoder call) and it keeps timestamps honest: a segment can
never span a silence gap, because no clip contains one.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from workers.gpu import cuda_device_count, resolve_runtime

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000

_lock = threading.Lock()
_model = None
_pipeline = None
_runtime: tuple[str, str] | None = None


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5
    min_silence_ms: int = 500
    speech_pad_ms: int = 200
    min_speech_ms: int = 250
    max_utterance_s: float = 30.0

    @classmethod
    def from_settings(cls) -> VadConfig:
        return cls(
            threshold=settings.VAD_THRESHOLD,
            min_silence_ms=settings.VAD_MIN_SILENCE_MS,
            speech_pad_ms=settings.VAD_SPEECH_PAD_MS,
            min_speech_ms=settings.VAD_MIN_SPEECH_MS,
            max_utterance_s=settings.VAD_MAX_UTTERANCE_S,
        )


@dataclass
class SegmentResult:
    """A transcribed stretch on the recording's timeline, with Whisper's evidence."""

    start: float
    end: float
    text: str
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    words: list[dict] | None = None


@dataclass
class BatchResult:
    """The segments of one batch of utterances and how far into the audio they reach."""

    segments: list[SegmentResult]
    processed_until: float
    regions: list[tuple[float, float]] = field(default_factory=list)


def runtime() -> tuple[str, str]:
    """(device, compute_type) this process uses, from the settings and the visible GPUs."""
    global _runtime
    if _runtime is None:
        cuda = cuda_device_count() if settings.WHISPER_DEVICE != "cpu" else 0
        _runtime = resolve_runtime(settings.WHISPER_DEVICE, settings.WHISPER_COMPUTE_TYPE, cuda)
    return _runtime


def get_model():
    """The process's WhisperModel, loaded on first use."""
    global _model, _pipeline
    with _lock:
        if _model is None:
            from faster_whisper import BatchedInferencePipeline, WhisperModel

            device, compute_type = runtime()
            started = time.monotonic()
            _model = WhisperModel(
                settings.WHISPER_MODEL,
                device=device,
                compute_type=compute_type,
                cpu_threads=settings.WHISPER_CPU_THREADS,
            )
            _pipeline = BatchedInferencePipeline(_model)
            log.info(
                "loaded Whisper %s on %s (%s) in %.1f s",
                settings.WHISPER_MODEL,
                device,
                compute_type,
                time.monotonic() - started,
            )
    return _model


def batch_size() -> int:
    if settings.STT_BATCH_SIZE:
        return settings.STT_BATCH_SIZE
    return 8 if runtime()[0] == "cuda" else 4


def speech_regions(audio: np.ndarray, config: VadConfig | None = None) -> list[tuple[float, float]]:
    """Utterances in seconds: speech separated by at least ``min_silence_ms`` of silence,
    none longer than ``max_utterance_s`` (longer speech is cut at a pause inside it)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    config = config or VadConfig.from_settings()
    if audio.size == 0:
        return []
    options = VadOptions(
        threshold=config.threshold,
        min_speech_duration_ms=config.min_speech_ms,
        min_silence_duration_ms=config.min_silence_ms,
        speech_pad_ms=config.speech_pad_ms,
        max_speech_duration_s=config.max_utterance_s,
    )
    stamps = get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def detect_language(audio: np.ndarray, regions: Sequence[tuple[float, float]]) -> str:
    """Language of the first 30 s of speech (Whisper's detector sees speech, not silence)."""
    model = get_model()
    pieces, total = [], 0.0
    for start, end in regions:
        pieces.append(audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)])
        total += end - start
        if total >= 30:
            break
    sample = np.concatenate(pieces) if pieces else audio[: 30 * SAMPLE_RATE]
    language, _probability, _all = model.detect_language(sample)
    return language


@dataclass(frozen=True)
class Placement:
    """Where one utterance sits in a packed window: ``start``/``end`` in the window's audio."""

    region: tuple[float, float]
    start: float
    end: float


def pack_regions(
    regions: Sequence[tuple[float, float]], window_s: float, gap_s: float
) -> list[list[tuple[float, float]]]:
    """Group consecutive utterances into windows of at most ``window_s`` seconds of audio,
    ``gap_s`` of silence between two utterances. An utterance longer than a window gets
    one of its own; ``window_s`` 0 puts every utterance in its own window."""
    windows: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    length = 0.0
    for region in regions:
        duration = region[1] - region[0]
        if current and (window_s <= 0 or length + gap_s + duration > window_s):
            windows.append(current)
            current, length = [], 0.0
        length += (gap_s if current else 0.0) + duration
        current.append(region)
    if current:
        windows.append(current)
    return windows


def _window_audio(
    audio: np.ndarray, window: Sequence[tuple[float, float]], gap_s: float
) -> tuple[np.ndarray, list[Placement]]:
    gap = np.zeros(int(round(gap_s * SAMPLE_RATE)), dtype=np.float32)
    pieces, placements, position = [], [], 0
    for start, end in window:
        if pieces:
            pieces.append(gap)
            position += gap.size
        piece = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        pieces.append(piece)
        placements.append(
            Placement((start, end), position / SAMPLE_RATE, (position + piece.size) / SAMPLE_RATE)
        )
        position += piece.size
    return np.concatenate(pieces).astype(np.float32, copy=False), placements


def _result(segment, start: float, end: float) -> SegmentResult:
    return SegmentResult(
        start=round(start, 3),
        end=round(max(end, start), 3),
        text=segment.text.strip(),
        avg_logprob=segment.avg_logprob,
        no_speech_prob=segment.no_speech_prob,
        compression_ratio=segment.compression_ratio,
    )


def _decode(audio: np.ndarray, clips: list[dict], language: str, size: int) -> list:
    segments, _info = _pipeline.transcribe(
        audio,
        language=language,
        clip_timestamps=clips,
        vad_filter=False,
        batch_size=size,
        beam_size=settings.WHISPER_BEAM_SIZE,
        # Sub-segments inside an utterance make subtitle-sized lines, and their
        # timestamps tell which utterance of a packed window a line belongs to.
        without_timestamps=False,
    )
    return list(segments)


def _letters(text: str) -> int:
    return sum(1 for char in text if char.isalnum())


def _assign(segments, placements: Sequence[Placement]) -> tuple[dict, set]:
    """Sort a window's segments to the utterances they cover. Returns the segments per
    utterance and the utterances that cannot be trusted: a segment straddling two of them
    (its line would span the silence between them)."""
    by_region: dict[tuple[float, float], list] = {p.region: [] for p in placements}
    suspect: set[tuple[float, float]] = set()
    for segment in segments:
        overlaps = sorted(
            ((min(p.end, segment.end) - max(p.start, segment.start), p) for p in placements),
            key=lambda item: item[0],
            reverse=True,
        )
        best_overlap, best = overlaps[0]
        if best_overlap <= 0:
            # A line in the silence between utterances: the nearest one owns it.
            best = min(
                placements,
                key=lambda p: min(abs(segment.start - p.end), abs(segment.end - p.start)),
            )
        elif len(overlaps) > 1 and overlaps[1][0] > STRADDLE_S:
            suspect.update(p.region for _overlap, p in overlaps if _overlap > STRADDLE_S)
        by_region[best.region].append(segment)
    return by_region, suspect


def _truncated(by_region: dict, placements: Sequence[Placement], pad_s: float = 0.0) -> set:
    """Utterances whose text is missing, much shorter than the rest of the batch speaks, or
    ends (begins) well before (after) the utterance's speech does: Whisper sometimes ends a
    packed window early and drops what follows, and a batched window is decoded once, with
    no second pass from where it stopped. ``pad_s`` is the VAD pad around the speech."""
    rates = {
        p.region: _letters("".join(s.text for s in by_region[p.region])) / (p.end - p.start)
        for p in placements
    }
    spoken = sorted(rate for rate in rates.values() if rate > 0)
    if not spoken:
        return set()
    reference = float(np.median(spoken)) if len(spoken) >= 3 else spoken[-1]
    suspect = set()
    for p in placements:
        duration = p.end - p.start
        missing = not by_region[p.region] and duration >= 0.5
        short = duration >= 1.5 and rates[p.region] < TRUNCATED_RATE_SHARE * reference
        lines = by_region[p.region]
        uncovered = bool(lines) and (
            (p.end - pad_s) - lines[-1].end > UNCOVERED_S
            or lines[0].start - (p.start + pad_s) > UNCOVERED_S
        )
        if missing or short or uncovered:
            suspect.add(p.region)
    return suspect


# Packing: utterances share 30 s encoder windows (the encoder is most of the CPU cost),
# separated by enough silence for Whisper to start a new line at each.
PACK_GAP_S = 2.0
# A segment may start this much before its clip (float rounding of the clip bounds).
CLIP_SLACK_S = 0.05
# A line overlapping a second utterance by more than this straddles the gap between them.
STRADDLE_S = 0.3
# An utterance whose letters per second fall under this share of the batch's is redone.
TRUNCATED_RATE_SHARE = 0.6
# ... and one whose lines leave this much of its speech uncovered at either end.
UNCOVERED_S = 1.2


def transcribe_regions(
    audio: np.ndarray, regions: Sequence[tuple[float, float]], language: str
) -> Iterator[BatchResult]:
    """Transcribe utterances in batches; yield each batch's segments as soon as it is done.

    Consecutive utterances are packed into shared windows (``STT_PACK_WINDOW_S``), which
    saves most of the encoder work on recordings of many short utterances. Every line
    Whisper returns is placed back into the utterance it covers, so no line spans a pause.
    An utterance whose lines cannot be placed, or whose text looks cut short, is decoded
    again on its own, as it would be without packing.
    """
    get_model()
    size = batch_size()
    windows = pack_regions(regions, settings.STT_PACK_WINDOW_S, PACK_GAP_S)
    for first in range(0, len(windows), size):
        group = windows[first : first + size]
        pieces, clips, layouts, position = [], [], [], 0.0
        for window in group:
            window_audio, placements = _window_audio(audio, window, PACK_GAP_S)
            duration = window_audio.size / SAMPLE_RATE
            pieces.append(window_audio)
            clips.append({"start": position, "end": position + duration})
            layouts.append(
                [Placement(p.region, p.start + position, p.end + position) for p in placements]
            )
            position += duration
        decoded = _decode(np.concatenate(pieces), clips, language, size)

        by_region: dict[tuple[float, float], list] = {}
        redo: set[tuple[float, float]] = set()
        all_placements = [p for layout in layouts for p in layout]
        for inside, layout in zip(_by_clip(decoded, clips), layouts, strict=True):
            assigned, straddling = _assign(inside, layout)
            by_region.update(assigned)
            redo |= straddling  # empty unless the window holds two utterances or more
        # Judged against the whole batch, redone only where packing could have cut the text.
        pad_s = settings.VAD_SPEECH_PAD_MS / 1000
        redo |= _truncated(by_region, all_placements, pad_s) & {
            p.region for layout in layouts if len(layout) > 1 for p in layout
        }

        results: list[SegmentResult] = []
        for layout in layouts:
            for p in layout:
                if p.region in redo:
                    continue
                results.extend(_place(by_region[p.region], p))
        redo_regions = sorted(redo)
        for start in range(0, len(redo_regions), size):
            alone = redo_regions[start : start + size]
            clips = [{"start": s, "end": e} for s, e in alone]
            for segments, region in zip(
                _by_clip(_decode(audio, clips, language, size), clips), alone, strict=True
            ):
                for segment in segments:
                    start_s, end_s = _clamp(segment.start, segment.end, region)
                    results.append(_result(segment, start_s, end_s))
        results.sort(key=lambda r: (r.start, r.end))
        log.info(
            "decoded %d utterances in %d windows; %d decoded again alone",
            len(all_placements),
            len(group),
            len(redo_regions),
        )
        yield BatchResult(
            results,
            processed_until=group[-1][-1][1],
            regions=list(region for window in group for region in window),
        )


def _by_clip(segments: Sequence, clips: Sequence[dict]) -> list[list]:
    """The decoded segments of each clip, every segment in exactly one: the last clip that
    begins (less a little slack for rounding) at or before the segment does. Clips are in
    order and do not overlap, but they may touch (packed windows always do), so a segment
    whose start is a rounding error below its clip's start must not land in the one before."""
    starts = [clip["start"] - CLIP_SLACK_S for clip in clips]
    out: list[list] = [[] for _ in clips]
    for segment in segments:
        index = bisect.bisect_right(starts, segment.start) - 1
        out[max(index, 0)].append(segment)
    return out


def _clamp(start: float, end: float, region: tuple[float, float]) -> tuple[float, float]:
    """Keep a segment inside the utterance it came from: Whisper's last timestamp in a clip
    can overshoot the clip's end by a few hundred milliseconds."""
    region_start, region_end = region
    start = min(max(start, region_start), region_end)
    return start, min(max(end, start), region_end)


def _place(segments: Sequence, placement: Placement) -> list[SegmentResult]:
    """A packed utterance's lines on the recording's timeline: shifted from the window,
    kept inside the utterance, the first starting and the last ending with it."""
    region_start, region_end = placement.region
    shift = region_start - placement.start
    placed = []
    for index, segment in enumerate(segments):
        start = min(max(segment.start + shift, region_start), region_end)
        end = min(max(segment.end + shift, start), region_end)
        if index == 0:
            start = region_start
        if index == len(segments) - 1:
            end = region_end
        placed.append(_result(segment, start, end))
    return placed
