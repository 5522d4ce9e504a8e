"""The Whisper engine: one model per worker process, loaded lazily and reused.

Audio is cut into utterances by Silero VAD (``speech_regions``), and the utterances
are transcribed in batches through faster-whisper's ``BatchedInferencePipeline``
with the utterances as clip timestamps. Compared with plain ``model.transcribe``
this is faster on long recordings (silence is never decoded and several utterances
share one encoder/decoder call) and it keeps timestamps honest: a segment can
never span a silence gap, because no clip contains one.
"""

from __future__ import annotations

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


def transcribe_regions(
    audio: np.ndarray,
    regions: Sequence[tuple[float, float]],
    language: str,
    *,
    word_timestamps: bool = False,
) -> Iterator[BatchResult]:
    """Transcribe utterances in batches; yield each batch's segments as soon as it is done."""
    get_model()
    size = batch_size()
    for first in range(0, len(regions), size):
        group = list(regions[first : first + size])
        clips = [{"start": start, "end": end} for start, end in group]
        segments, _info = _pipeline.transcribe(
            audio,
            language=language,
            clip_timestamps=clips,
            vad_filter=False,
            batch_size=size,
            beam_size=settings.WHISPER_BEAM_SIZE,
            # Sub-segments inside an utterance make subtitle-sized lines; they stay inside
            # the utterance, so they cannot cross a pause either.
            without_timestamps=False,
            word_timestamps=word_timestamps,
        )
        results = []
        for segment in segments:
            start, end = _clamp(segment.start, segment.end, group)
            results.append(
                SegmentResult(
                    start=start,
                    end=end,
                    text=segment.text.strip(),
                    avg_logprob=segment.avg_logprob,
                    no_speech_prob=segment.no_speech_prob,
                    compression_ratio=segment.compression_ratio,
                    words=[
                        {
                            "word": w.word,
                            "start": w.start,
                            "end": w.end,
                            "probability": w.probability,
                        }
                        for w in segment.words
                    ]
                    if segment.words
                    else None,
                )
            )
        yield BatchResult(results, processed_until=group[-1][1], regions=group)


def _clamp(start: float, end: float, group: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Keep a segment inside the utterance it came from: Whisper's last timestamp in a clip
    can overshoot the clip's end by a few hundred milliseconds."""
    for region_start, region_end in group:
        if region_start - 0.05 <= start <= region_end:
            start = max(start, region_start)
            end = min(max(end, start), region_end)
            return round(start, 3), round(end, 3)
    return round(start, 3), round(max(end, start), 3)


def transcribe_clip(
    audio: np.ndarray,
    language: str | None,
    *,
    offset: float = 0.0,
    beam_size: int | None = None,
) -> tuple[list[SegmentResult], str]:
    """One live utterance (at most ``VAD_MAX_UTTERANCE_S``) as a single segment.

    Returns the segments on the stream's timeline (``offset`` added) and the language
    used; ``language`` None or "auto" detects it on this utterance.
    """
    get_model()
    duration = len(audio) / SAMPLE_RATE
    if duration <= 0:
        return [], language or ""
    if not language or language == "auto":
        language, _probability, _all = _model.detect_language(audio)
    segments, _info = _pipeline.transcribe(
        audio,
        language=language,
        clip_timestamps=[{"start": 0.0, "end": duration}],
        vad_filter=False,
        batch_size=1,
        beam_size=beam_size or settings.WHISPER_BEAM_SIZE,
        # The endpointer already cut the utterance at pauses: one line per utterance.
        without_timestamps=True,
    )
    results = [
        SegmentResult(
            start=round(offset, 3),
            end=round(offset + duration, 3),
            text=segment.text.strip(),
            avg_logprob=segment.avg_logprob,
            no_speech_prob=segment.no_speech_prob,
            compression_ratio=segment.compression_ratio,
        )
        for segment in segments
    ]
    return results, language
