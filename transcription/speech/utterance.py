"""One live utterance through Whisper: the live path's decode, apart from the batch one.

The endpointer has already cut the stream at pauses, so an utterance is decoded whole as
one line, on the model the batch engine loads (``engine.get_model``).
"""

from __future__ import annotations

import numpy as np
from django.conf import settings

from transcription.speech import engine
from transcription.speech.engine import SAMPLE_RATE, SegmentResult


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
    engine.get_model()
    duration = len(audio) / SAMPLE_RATE
    if duration <= 0:
        return [], language or ""
    if not language or language == "auto":
        language, _probability, _all = engine._model.detect_language(audio)
    segments, _info = engine._pipeline.transcribe(
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
