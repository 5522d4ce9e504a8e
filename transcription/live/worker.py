"""Worker side of live sessions: one utterance (or a partial of one) at a time.

The consumer cuts the stream into utterances and parks each one's audio in Redis (when
Redis lost it, the session's recording still has it); these functions transcribe it,
store the final as a segment whose index is the utterance number (a redelivered task
rewrites the same row, and no final ever overwrites another utterance's: finals.py), and
announce the result through the session's notifier.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from django.utils import timezone

from transcription import storage
from transcription.live import store
from transcription.live.finals import store_final
from transcription.live.jobs import PartialJob, UtteranceJob
from transcription.live.recording import read_span
from transcription.live.store import Decision, Request
from transcription.models import Segment, Transcript
from transcription.notify import ProgressNotifier
from transcription.speech import engine, utterance
from transcription.speech.hallucination import filter_segments
from workers import metrics

log = logging.getLogger(__name__)
# Interim text is replaced a second later: speed over the last bit of accuracy.
PARTIAL_BEAM_SIZE = 1
# Earlier finals read for a final's prompt; the prompt keeps the last sentences that fit
# (utterance.PROMPT_MAX_TOKENS), which a few finals always fill.
CONTEXT_FINALS = 6


def _audio(key: str) -> np.ndarray | None:
    data = store.take_audio(key)
    return None if data is None else np.frombuffer(data, dtype=np.float32)


def _recorded(session: str, start: float, end: float) -> np.ndarray | None:
    """The utterance from the session's recording: its audio in Redis is gone (Redis lost
    its data, or the hour ran out) but the recording holds every second the consumer got.

    Read from storage by byte ranges (the header, then the span): on the file system the
    recording is written in place, so every second so far is there; in object storage it
    arrives when its stream ends, so until then (or while the store cannot be reached) a
    worker on another host finds no span: None, and the utterance is reported expired, as
    without a recording. (Redis losing its data loses the queued job with the audio; that
    speech is sent again by the web process from its spool: recovery.py.)"""
    name = Transcript.objects.filter(pk=session).values_list("audio", flat=True).first()
    if not name:
        return None
    audio = read_span(storage.reader(name), start, end)
    if audio is None:
        log.warning("live session %s: %.2f-%.2f s is not in its recording", session, start, end)
    return audio


def _previous_finals(session: str, index: int) -> list[str]:
    """The texts of the session's latest stored finals before utterance ``index``, most
    recent last: the context a final is decoded with."""
    texts = (
        Segment.objects.filter(transcript_id=session, index__lt=index)
        .order_by("-index")
        .values_list("text", flat=True)[:CONTEXT_FINALS]
    )
    return list(reversed(texts))


def _words(kept: list) -> list[dict] | None:
    # Only a full word list joins back into the text; a segment whose loop the filter
    # collapsed has none.
    if not kept or any(result.words is None for result in kept):
        return None
    return [word for result in kept for word in result.words]


def transcribe_utterance(job: UtteranceJob) -> Segment | None:
    """Transcribe, store and announce utterance ``job.index``.

    With ``job.early_key`` the utterance is only paused so far (an early final, see
    ``store.settle_early``): the text is computed at once, then the consumer's decision
    is awaited, up to ``early_wait_s`` after ``dispatched_at``. FINAL stores and announces
    it as usual; otherwise the text goes out as a partial and the consumer sends the
    utterance again when it does end.
    """
    session, index, start, end = job.session, job.index, job.start, job.end
    early_key = job.early_key
    if early_key and store.early_decision(early_key) == Decision.VOID:
        # Speech resumed while this waited in the queue: the utterance will come again
        # whole, and a guess at it now would only hold up the work behind it.
        store.drop_audio(job.audio_key)
        return None
    notifier = ProgressNotifier(session, live=True)
    picked_at = time.time()
    audio = _audio(job.audio_key)
    if audio is None:
        audio = _recorded(session, start, end)
    if audio is None:
        if early_key and store.settle_early(early_key, Decision.ABANDONED) != Decision.FINAL:
            return None
        # Only after the audio's hour in Redis ran out; say so rather than hang the client.
        notifier.send(
            "error",
            code="audio_expired",
            message=f"utterance {index} expired before a worker took it",
            utterance=index,  # no final comes for it: a stop need not wait for one
        )
        return None
    if not early_key:
        store.supersede_partials(session, index)
    results, used_language = utterance.transcribe_clip(
        audio,
        job.language,
        offset=start,
        end=end,
        context=_previous_finals(session, index),
        word_timestamps=True,
    )
    kept = filter_segments(results, speech_spans=[(start, end)])
    text = " ".join(r.text for r in kept).strip()
    words = _words(kept) if text else None
    computed_at = time.time()
    metrics.observe_transcription("live_final", end - start, computed_at - picked_at)
    waited = 0.0
    if early_key:
        remaining = job.early_wait_s - (computed_at - job.dispatched_at)
        decision = store.await_early(early_key, max(remaining, 0.05))
        if decision != Decision.FINAL:
            store.drop_audio(job.audio_key)
            if store.latest_request(session) == Request("early", index):
                # Still the newest request of the session: its text is the interim text.
                notifier.send("partial", utterance=index, text=text, start=start)
            return None
        store.supersede_partials(session, index)
        waited = time.time() - computed_at
    segment, written = None, False
    if text:
        first = kept[0]
        fields = {
            "text": text,
            "avg_logprob": first.avg_logprob,
            "no_speech_prob": first.no_speech_prob,
            "words": words,
        }
        segment, written = store_final(session, index, start, end, fields)
        if written:
            Transcript.objects.filter(pk=session, language="").update(language=used_language)
        else:
            # Its speech is stored already (a final on its way when Redis lost the session,
            # and the same stretch recovered from the recording): said once, not twice.
            text, words, segment = "", None, None
    finished_at = time.time()
    device, _compute = engine.runtime()
    confidence = math.exp(kept[0].avg_logprob) if kept and kept[0].avg_logprob is not None else None
    notifier.send(
        "final",
        # Moved to a free number when another utterance held its own (finals.py).
        utterance=segment.index if segment else index,
        segment=segment.pk if segment else None,
        start=start,
        end=end,
        text=text,
        words=words,
        language=used_language,
        confidence=round(confidence, 3) if confidence is not None else None,
        device=device,
        queue_wait_s=round(max(picked_at - job.dispatched_at, 0.0), 3),
        # Of an early final, the time spent waiting for the utterance to end is not compute.
        compute_s=round(finished_at - picked_at - waited, 3),
        early=bool(early_key),
        timestamp=timezone.now().isoformat(),
    )
    store.drop_audio(job.audio_key)
    if segment is not None:
        from keywords.tasks import extract_segment_keywords

        extract_segment_keywords.delay(segment.pk)
    return segment


def transcribe_partial(job: PartialJob) -> str | None:
    """Interim text for the utterance in progress, unless a newer request superseded it."""
    wanted = Request("partial", job.index, job.n)
    if store.latest_request(job.session) != wanted:
        store.drop_audio(job.audio_key)
        return None  # stale: a newer partial or the final is already on its way
    audio = _audio(job.audio_key)
    store.drop_audio(job.audio_key)
    if audio is None:
        return None
    # Without the session's context or word timings: see speech/utterance.py.
    began = time.monotonic()
    results, _language = utterance.transcribe_clip(
        audio, job.language, offset=job.start, beam_size=PARTIAL_BEAM_SIZE
    )
    end = job.start + len(audio) / engine.SAMPLE_RATE
    metrics.observe_transcription("live_partial", end - job.start, time.monotonic() - began)
    kept = filter_segments(results, speech_spans=[(job.start, end)])
    text = " ".join(r.text for r in kept).strip()
    if store.latest_request(job.session) != wanted:
        return None  # the final overtook this partial while it ran
    ProgressNotifier(job.session, live=True).send(
        "partial", utterance=job.index, text=text, start=job.start
    )
    return text


def finish_live(transcript_id: str, duration: float) -> None:
    if store.session_owner(transcript_id):
        return  # resumed meanwhile: the connection streaming it now finishes it when it ends
    # Done already when the sweeper took it for orphaned: the stream's end is still truer.
    ended = (Transcript.Status.RUNNING, Transcript.Status.DONE)
    finished = Transcript.objects.filter(pk=transcript_id, status__in=ended).update(
        status=Transcript.Status.DONE, finished_at=timezone.now(), duration=duration, progress=1.0
    )
    transcript = Transcript.objects.filter(pk=transcript_id).first() if finished else None
    if transcript is not None and transcript.segments.exists():
        from keywords.services import request_summary

        # The session's summary, on the keywords queue (its finals are all stored by now).
        request_summary(transcript)
