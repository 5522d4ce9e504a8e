"""Transcribing a stored recording: the plain domain function behind the stt task.

A transcript is claimed once (``queued`` -> ``running``), decoded, cut into
utterances by VAD and transcribed batch by batch. Each batch's segments are
written in one transaction together with how far the audio is done, so a crash
loses nothing already written and a redelivered task resumes where the last one
stopped; segment indexes are unique per transcript, so a retry never duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from transcription.models import Segment, Transcript
from transcription.notify import NullNotifier, ProgressNotifier, segment_payload
from transcription.speech import engine
from transcription.speech.audio import AudioDecodeError, NotAudioError, decode_audio
from transcription.speech.hallucination import filter_segments

log = logging.getLogger(__name__)


def claim(transcript_id, task_id: str = "") -> bool:
    """Take the job. A redelivery of the same task (same id) may take back its own job."""
    mine = Q(status=Transcript.Status.QUEUED)
    if task_id:
        mine |= Q(status=Transcript.Status.RUNNING, task_id=task_id)
    now = timezone.now()
    claimed = (
        Transcript.objects.filter(pk=transcript_id)
        .filter(mine)
        .update(
            status=Transcript.Status.RUNNING,
            task_id=task_id,
            started_at=now,
            error="",
            error_code="",
        )
    )
    return claimed == 1


def fail(
    transcript: Transcript,
    message: str,
    notifier: ProgressNotifier | None = None,
    *,
    code: Transcript.ErrorCode,
) -> None:
    """Mark the transcript failed: ``message`` for people, ``code`` for programs (the OpenAI
    endpoint answers 400 or 500 by it, so every failure must say whose fault it is)."""
    Transcript.objects.filter(pk=transcript.pk).update(
        status=Transcript.Status.FAILED,
        error=message[:2000],
        error_code=code,
        finished_at=timezone.now(),
    )
    transcript.status, transcript.error = Transcript.Status.FAILED, message
    transcript.error_code = code
    (notifier or NullNotifier()).status(Transcript.Status.FAILED, message)


def _reading_failure(exc: AudioDecodeError | OSError) -> Transcript.ErrorCode:
    if isinstance(exc, NotAudioError):
        return Transcript.ErrorCode.NOT_AUDIO
    if isinstance(exc, AudioDecodeError):
        return Transcript.ErrorCode.DECODE_FAILED
    # The stored file is gone or unreadable: ours to put right, not the uploader's.
    return Transcript.ErrorCode.NO_AUDIO


def transcribe_transcript(
    transcript_id,
    *,
    task_id: str = "",
    notifier: ProgressNotifier | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Transcript | None:
    """Transcribe one claimed transcript. Returns it, or None when someone else has it."""
    notifier = notifier or NullNotifier()
    if not claim(transcript_id, task_id):
        log.info("transcript %s is not queued (or owned by another task); skipping", transcript_id)
        return None
    transcript = Transcript.objects.get(pk=transcript_id)
    notifier.status(Transcript.Status.RUNNING)
    if not transcript.audio:
        message = "the transcript has no stored audio file"
        fail(transcript, message, notifier, code=Transcript.ErrorCode.NO_AUDIO)
        return transcript
    try:
        with transcript.audio.open("rb") as handle:
            audio = decode_audio(handle)
    except (AudioDecodeError, OSError) as exc:
        fail(transcript, str(exc), notifier, code=_reading_failure(exc))
        return transcript

    duration = round(len(audio) / engine.SAMPLE_RATE, 3)
    regions = engine.speech_regions(audio)
    language = transcript.language or "ko"
    if language == "auto":
        language = engine.detect_language(audio, regions) if regions else ""
    Transcript.objects.filter(pk=transcript.pk).update(duration=duration, language=language)

    # Resume after what a previous attempt stored.
    already = transcript.processed_s
    next_index = (
        (transcript.segments.aggregate(m=Max("index"))["m"] + 1)
        if transcript.segments.exists()
        else 0
    )
    pending = [region for region in regions if region[1] > already + 1e-3]

    for batch in engine.transcribe_regions(audio, pending, language or "ko"):
        kept = filter_segments(batch.segments, speech_spans=regions)
        stored = []
        progress = min(batch.processed_until / duration, 1.0) if duration else 1.0
        with transaction.atomic():
            for result in kept:
                segment, _ = Segment.objects.update_or_create(
                    transcript=transcript,
                    index=next_index,
                    defaults={
                        "start": result.start,
                        "end": result.end,
                        "text": result.text,
                        "avg_logprob": result.avg_logprob,
                        "no_speech_prob": result.no_speech_prob,
                        "words": result.words,
                    },
                )
                stored.append(segment)
                next_index += 1
            Transcript.objects.filter(pk=transcript.pk).update(
                processed_s=batch.processed_until, progress=progress
            )
        notifier.segments([segment_payload(s) for s in stored])
        notifier.progress(progress, batch.processed_until, duration)
        if on_progress:
            on_progress(progress)

    Transcript.objects.filter(pk=transcript.pk).update(
        status=Transcript.Status.DONE,
        progress=1.0,
        processed_s=duration,
        finished_at=timezone.now(),
    )
    notifier.progress(1.0, duration, duration)
    notifier.status(Transcript.Status.DONE)
    if on_progress:
        on_progress(1.0)
    transcript.refresh_from_db()
    return transcript
