"""Worker side of live sessions: one utterance (or a partial of one) at a time.

The consumer cuts the stream into utterances and parks each one's audio in Redis;
these functions transcribe it, store the final as a segment whose index is the
utterance number (so a redelivered task rewrites the same row), and announce the
result through the session's notifier.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from django.db import transaction
from django.utils import timezone

from transcription.live import store as live_events
from transcription.models import Segment, Transcript
from transcription.notify import ProgressNotifier
from transcription.speech import engine
from transcription.speech.hallucination import filter_segments

log = logging.getLogger(__name__)
PARTIAL_BEAM_SIZE = (
    1  # interim text is replaced a second later: speed over the last bit of accuracy
)


def _audio(key: str) -> np.ndarray | None:
    data = live_events.take_audio(key)
    return None if data is None else np.frombuffer(data, dtype=np.float32)


def transcribe_utterance(
    transcript_id: str,
    index: int,
    start: float,
    end: float,
    audio_key: str,
    language: str,
    dispatched_at: float,
    early_key: str | None = None,
    early_wait_s: float = 0.0,
) -> Segment | None:
    """Transcribe, store and announce utterance ``index``.

    With ``early_key`` the utterance is only paused so far (an early final, see
    ``live_events.settle_early``): the text is computed at once, then the consumer's
    decision is awaited, up to ``early_wait_s`` after ``dispatched_at``. "final" stores
    and announces it as usual; otherwise the text goes out as a partial and the consumer
    sends the utterance again when it does end.
    """
    if early_key and live_events.early_decision(early_key) == live_events.VOID:
        # Speech resumed while this waited in the queue: the utterance will come again
        # whole, and a guess at it now would only hold up the work behind it.
        live_events.drop_audio(audio_key)
        return None
    notifier = ProgressNotifier(transcript_id, live=True)
    picked_at = time.time()
    audio = _audio(audio_key)
    if audio is None:
        if early_key and live_events.settle_early(early_key, live_events.ABANDONED) != (
            live_events.FINAL
        ):
            return None
        # Only after the audio's hour in Redis ran out; say so rather than hang the client.
        notifier.send(
            "error",
            code="audio_expired",
            message=f"utterance {index} expired before a worker took it",
        )
        return None
    if not early_key:
        live_events.supersede_partials(transcript_id, index)
    results, used_language = engine.transcribe_clip(audio, language, offset=start)
    kept = filter_segments(results, speech_spans=[(start, end)])
    text = " ".join(r.text for r in kept).strip()
    computed_at = time.time()
    waited = 0.0
    if early_key:
        remaining = early_wait_s - (computed_at - dispatched_at)
        decision = live_events.await_early(early_key, max(remaining, 0.05))
        if decision != live_events.FINAL:
            live_events.drop_audio(audio_key)
            if live_events.latest_partial(transcript_id) == f"early:{index}":
                # Still the newest request of the session: its text is the interim text.
                notifier.send("partial", utterance=index, text=text, start=start)
            return None
        live_events.supersede_partials(transcript_id, index)
        waited = time.time() - computed_at
    segment = None
    if text:
        first = kept[0]
        with transaction.atomic():
            segment, _ = Segment.objects.update_or_create(
                transcript_id=transcript_id,
                index=index,
                defaults={
                    "start": start,
                    "end": end,
                    "text": text,
                    "avg_logprob": first.avg_logprob,
                    "no_speech_prob": first.no_speech_prob,
                },
            )
            Transcript.objects.filter(pk=transcript_id, language="").update(language=used_language)
    finished_at = time.time()
    device, _compute = engine.runtime()
    confidence = math.exp(kept[0].avg_logprob) if kept and kept[0].avg_logprob is not None else None
    notifier.send(
        "final",
        utterance=index,
        segment=segment.pk if segment else None,
        start=start,
        end=end,
        text=text,
        language=used_language,
        confidence=round(confidence, 3) if confidence is not None else None,
        device=device,
        queue_wait_s=round(max(picked_at - dispatched_at, 0.0), 3),
        # Of an early final, the time spent waiting for the utterance to end is not compute.
        compute_s=round(finished_at - picked_at - waited, 3),
        early=bool(early_key),
        timestamp=timezone.now().isoformat(),
    )
    live_events.drop_audio(audio_key)
    if segment is not None:
        from keywords.tasks import extract_segment_keywords

        extract_segment_keywords.delay(segment.pk)
    return segment


def transcribe_partial(
    transcript_id: str, token: str, start: float, audio_key: str, language: str
) -> str | None:
    """Interim text for the utterance in progress, unless a newer request superseded it."""
    if live_events.latest_partial(transcript_id) != token:
        live_events.drop_audio(audio_key)
        return None  # stale: a newer partial or the final is already on its way
    audio = _audio(audio_key)
    live_events.drop_audio(audio_key)
    if audio is None:
        return None
    results, _language = engine.transcribe_clip(
        audio, language, offset=start, beam_size=PARTIAL_BEAM_SIZE
    )
    kept = filter_segments(results, speech_spans=[(start, start + len(audio) / engine.SAMPLE_RATE)])
    text = " ".join(r.text for r in kept).strip()
    if live_events.latest_partial(transcript_id) != token:
        return None  # the final overtook this partial while it ran
    ProgressNotifier(transcript_id, live=True).send(
        "partial", utterance=int(token.split(":")[0]), text=text, start=start
    )
    return text


def finish_live(transcript_id: str, duration: float) -> None:
    if live_events.session_owner(transcript_id):
        return  # resumed meanwhile: the connection streaming it now finishes it when it ends
    Transcript.objects.filter(pk=transcript_id, status=Transcript.Status.RUNNING).update(
        status=Transcript.Status.DONE, finished_at=timezone.now(), duration=duration, progress=1.0
    )
