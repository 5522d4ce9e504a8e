"""The Whisper engine: one model per worker process, loaded lazily and reused.

Audio is cut into utterances by Silero VAD (``speech_regions``). Utterances apart by short
pauses are joined into spans and decoded together, real audio between them included, so a
sentence keeps its context (case, punctuation) across a pause; each span is framed with the
audio around its speech and spans are packed into shared windows (``speech/spans.py``), then
transcribed in batches through faster-whisper's ``BatchedInferencePipeline``.
Every word comes back with its timing (``word_timestamps``): words are put back on the span
they were spoken in, so no segment spans a long silence; speech left without words is
decoded again; segments are cut from the words at sentence ends (``speech/words.py``).
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from transcription.speech import loader
from transcription.speech.spans import (
    JOIN_MAX_S,
    SAMPLE_RATE,
    Placement,
    Span,
    frame_spans,
    join_regions,
    pack_spans,
    window_audio,
)
from transcription.speech.words import (
    Evidence,
    Word,
    evidence_of,
    join,
    letters,
    sentences,
    speech_without_words,
    splice,
)
from workers.gpu import cuda_device_count, resolve_runtime

log = logging.getLogger(__name__)

_lock = threading.Lock()
_model = None
_pipeline = None
_runtime: tuple[str, str] | None = None
# Why this process runs Whisper on the CPU although CUDA was asked for (loader.py), or None.
_cuda_error: str | None = None
_listeners: list[Callable[[dict], None]] = []


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
    """(device, compute_type) this process uses, from the settings and the visible GPUs; once
    the model is loaded, where it really runs (the CPU when CUDA could not, loader.py)."""
    global _runtime
    if _runtime is None:
        cuda = cuda_device_count() if settings.WHISPER_DEVICE != "cpu" else 0
        _runtime = resolve_runtime(settings.WHISPER_DEVICE, settings.WHISPER_COMPUTE_TYPE, cuda)
    return _runtime


def runtime_report() -> dict:
    """Where this process runs Whisper, for its worker's heartbeat and the status page."""
    device, compute_type = runtime()
    return {"device": device, "compute_type": compute_type, "cuda_error": _cuda_error}


def on_model_loaded(callback: Callable[[dict], None]) -> None:
    """Call ``callback(runtime_report())`` once the model is loaded (at once if it is)."""
    _listeners.append(callback)
    if _model is not None:
        _tell(callback)


def _tell(callback: Callable[[dict], None]) -> None:
    try:
        callback(runtime_report())
    except Exception:  # noqa: BLE001 - a report that fails (Redis away) must not fail the load
        log.exception("could not report where Whisper runs")


def _create(device: str, compute_type: str):
    from faster_whisper import WhisperModel

    return WhisperModel(
        settings.WHISPER_MODEL,
        device=device,
        compute_type=compute_type,
        cpu_threads=settings.WHISPER_CPU_THREADS,
    )


def get_model():
    """The process's WhisperModel, loaded on first use: on CUDA when asked for and it runs
    there, else on the CPU, a decision kept for the life of the process (loader.py)."""
    global _model, _pipeline, _runtime, _cuda_error
    loaded_now = False
    with _lock:
        if _model is None:
            from faster_whisper import BatchedInferencePipeline

            started = time.monotonic()
            loaded = loader.load(_create, *runtime())
            _runtime, _cuda_error = (loaded.device, loaded.compute_type), loaded.cuda_error
            _model, loaded_now = loaded.model, True
            _pipeline = BatchedInferencePipeline(_model)
            log.info(
                "loaded Whisper %s on %s (%s) in %.1f s",
                settings.WHISPER_MODEL,
                loaded.device,
                loaded.compute_type,
                time.monotonic() - started,
            )
    if loaded_now:
        for callback in list(_listeners):
            _tell(callback)
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


def _decode(audio: np.ndarray, clips: list[dict], language: str, size: int) -> list:
    segments, _info = _pipeline.transcribe(
        audio,
        language=language,
        clip_timestamps=clips,
        vad_filter=False,
        batch_size=size,
        beam_size=settings.WHISPER_BEAM_SIZE,
        # Timestamps tell which span of a packed window a word belongs to; word timings
        # show speech left without words, and sentences are cut from them.
        without_timestamps=False,
        word_timestamps=True,
    )
    return list(segments)


def _word(word, shift: float, bounds: tuple[float, float], evidence: Evidence) -> Word:
    """A faster-whisper word moved by ``shift`` onto the recording, kept inside ``bounds``."""
    start = min(max(float(word.start) + shift, bounds[0]), bounds[1])
    end = min(max(float(word.end) + shift, start), bounds[1])
    return Word(word.word, start, end, float(word.probability), evidence)


def _place_words(segments: Sequence, layout: Sequence[Placement]) -> dict:
    """A packed window's words, each on the span it was spoken in (the one holding its
    middle, or the nearest), shifted onto the recording's timeline."""
    placed: dict[tuple[float, float], list[Word]] = {p.bounds: [] for p in layout}
    for segment in segments:
        evidence = evidence_of(segment)
        for word in segment.words or ():
            middle = (word.start + word.end) / 2
            owner = min(
                layout,
                key=lambda p: (
                    0.0
                    if p.start <= middle <= p.end
                    else min(abs(middle - p.start), abs(middle - p.end))
                ),
            )
            shift = owner.region[0] - owner.start
            placed[owner.bounds].append(_word(word, shift, owner.bounds, evidence))
    for words in placed.values():
        words.sort(key=lambda word: (word.start, word.end))
    return placed


def _decode_alone(
    audio: np.ndarray,
    stretches: Sequence[tuple[float, float]],
    language: str,
    size: int,
    frames: dict | None = None,
) -> list[list[Word]]:
    """Each stretch of the recording decoded as a clip of its own (``frames[stretch]``, the
    stretch with the audio around it, when given; clips do not overlap): its words, kept
    inside the stretch."""
    if not stretches:
        return []
    frames = frames or {}
    order = sorted(range(len(stretches)), key=lambda i: stretches[i])
    framed = [frames.get(stretches[i], stretches[i]) for i in order]
    clips = [{"start": start, "end": end} for start, end in framed]
    found: list[list[Word]] = [[] for _ in stretches]
    for index, segments in zip(
        order, _by_clip(_decode(audio, clips, language, size), clips), strict=True
    ):
        bounds = stretches[index]
        found[index] = [
            _word(word, 0.0, bounds, evidence_of(segment))
            for segment in segments
            for word in segment.words or ()
        ]
    return found


def _short(words: dict, spans: Sequence[Span]) -> set:
    """Spans of a packed batch whose text is missing or much shorter than the rest of the
    batch speaks: Whisper sometimes ends a packed window early and drops what follows."""
    rates = {s.bounds: letters(join(words[s.bounds])) / (s.end - s.start) for s in spans}
    spoken = sorted(rate for rate in rates.values() if rate > 0)
    if not spoken:
        return set()
    reference = float(np.median(spoken)) if len(spoken) >= 3 else spoken[-1]
    short = set()
    for span in spans:
        duration = span.end - span.start
        missing = not words[span.bounds] and duration >= 0.5
        if missing or (duration >= 1.5 and rates[span.bounds] < TRUNCATED_RATE_SHARE * reference):
            short.add(span.bounds)
    return short


def _speech(span: Span, pad_s: float) -> list[tuple[float, float]]:
    return [(s + pad_s, e - pad_s) for s, e in span.regions if e - pad_s > s + pad_s]


def _segment(words: Sequence[Word]) -> SegmentResult:
    # The line most of the words came from speaks for the sentence.
    counts: dict[Evidence, int] = {}
    for word in words:
        counts[word.evidence] = counts.get(word.evidence, 0) + 1
    evidence = max(counts, key=counts.get)
    stored = [word.as_dict() for word in words]
    # The segment's bounds are its words' as stored, so no word lies outside its segment.
    start = stored[0]["start"]
    return SegmentResult(
        start=start,
        end=max(stored[-1]["end"], start),
        text=join(words),
        avg_logprob=evidence.avg_logprob,
        no_speech_prob=evidence.no_speech_prob,
        compression_ratio=evidence.compression_ratio,
        words=stored,
    )


# A segment may start this much before its clip (float rounding of the clip bounds).
CLIP_SLACK_S = 0.05
# A packed span whose letters per second fall under this share of the batch's is redone.
TRUNCATED_RATE_SHARE = 0.6
# Speech (VAD's, pads off) this long with no word in it is decoded again on its own.
UNCOVERED_S = 1.0


def transcribe_regions(
    audio: np.ndarray,
    regions: Sequence[tuple[float, float]],
    language: str,
    until_s: float | None = None,
) -> Iterator[BatchResult]:
    """Transcribe utterances in batches; yield each batch's segments as soon as it is done.

    Utterances apart by short pauses (``STT_JOIN_PAUSE_S``) are joined into spans and decoded
    together, so sentences keep their context across pauses; spans are packed into shared
    windows (``STT_PACK_WINDOW_S``), which saves most of the encoder work on recordings of
    many short utterances. Every word comes back to the span it was spoken in, so nothing
    spans a long pause. A packed span whose text is missing or cut short is decoded again
    alone, and speech still left without words is decoded again by itself and its words
    put in place: nothing said is lost silently. Segments are the spans' sentences.

    Each span is decoded with the real audio around it (``frame_spans``), up to ``until_s``
    (the end of ``audio`` when None; the caller's cut when speech after it is not yet
    in ``regions``).
    """
    get_model()
    size = batch_size()
    pad_s = settings.VAD_SPEECH_PAD_MS / 1000
    spans = join_regions(regions, settings.STT_JOIN_PAUSE_S, JOIN_MAX_S)
    length_s = audio.size / SAMPLE_RATE
    until_s = length_s if until_s is None else min(until_s, length_s)
    frames = frame_spans(spans, pad_s, until_s)
    by_clip = {frames[span.bounds]: span for span in spans}
    windows, gap = pack_spans(spans, frames, pad_s, settings.STT_PACK_WINDOW_S)
    for first in range(0, len(windows), size):
        group = windows[first : first + size]
        pieces, clips, layouts, position = [], [], [], 0.0
        for window in group:
            laid_out, placements = window_audio(audio, window, gap)
            duration = laid_out.size / SAMPLE_RATE
            pieces.append(laid_out)
            clips.append({"start": position, "end": position + duration})
            layouts.append(
                [
                    Placement(
                        p.region, p.start + position, p.end + position, by_clip[p.region].bounds
                    )
                    for p in placements
                ]
            )
            position += duration
        decoded = _decode(np.concatenate(pieces), clips, language, size)

        words: dict[tuple[float, float], list[Word]] = {}
        for inside, layout in zip(_by_clip(decoded, clips), layouts, strict=True):
            words.update(_place_words(inside, layout))
        group_spans = [by_clip[clip] for window in group for clip in window]
        packed = [by_clip[p.region] for layout in layouts if len(layout) > 1 for p in layout]
        again = sorted(_short(words, group_spans) & {span.bounds for span in packed})
        redone = _decode_alone(audio, again, language, size, frames)
        for bounds, found in zip(again, redone, strict=True):
            words[bounds] = found

        holes = [
            (span.bounds, hole)
            for span in group_spans
            for hole in speech_without_words(
                words[span.bounds], span.bounds, _speech(span, pad_s), UNCOVERED_S
            )
        ]
        found = _decode_alone(audio, [hole for _bounds, hole in holes], language, size)
        for (bounds, hole), more in zip(holes, found, strict=True):
            log.debug("speech without words %.2f-%.2f s decoded again: %r", *hole, join(more))
            words[bounds] = splice(words[bounds], more)

        results = [
            _segment(sentence) for span in group_spans for sentence in sentences(words[span.bounds])
        ]
        results.sort(key=lambda r: (r.start, r.end))
        log.info(
            "decoded %d spans of %d utterances in %d windows; %d decoded again alone, "
            "%d stretches without words decoded again",
            len(group_spans),
            sum(len(span.regions) for span in group_spans),
            len(group),
            len(again),
            len(holes),
        )
        yield BatchResult(
            results,
            processed_until=group_spans[-1].end,
            regions=[region for span in group_spans for region in span.regions],
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
