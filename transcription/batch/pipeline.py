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

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from transcription.models import Segment, Transcript
from transcription.notify import NullNotifier, ProgressNotifier, segment_payload
from transcription.speech import engine
from transcription.speech.audio import (
    AudioDecodeError,
    AudioTooLongError,
    NotAudioError,
    decode_audio,
    format_duration,
)
from transcription.speech.hallucination import filter_segments

log = logging.getLogger(__name__)


# Starts of one job. A task is acknowledged after its work and redelivered when its worker
# dies, so a file that kills the worker (out of memory, a crash in native code) would come
# back forever; the start after this many is refused and the transcript failed instead.
MAX_ATTEMPTS = 2


def claim(transcript_id, task_id: str = "") -> bool:
    """Take the job. A redelivery of the same task (same id) may take back its own job,
    unless the job has already been started ``MAX_ATTEMPTS`` times."""
    mine = Q(status=Transcript.Status.QUEUED)
    if task_id:
        mine |= Q(status=Transcript.Status.RUNNING, task_id=task_id)
    now = timezone.now()
    job = Transcript.objects.filter(pk=transcript_id).filter(mine)
    claimed = job.filter(attempts__lt=MAX_ATTEMPTS).update(
        status=Transcript.Status.RUNNING,
        task_id=task_id,
        started_at=now,
        error="",
        error_code="",
        attempts=F("attempts") + 1,
    )
    if claimed:
        return True
    given_up = job.update(
        status=Transcript.Status.FAILED,
        error_code=Transcript.ErrorCode.WORKER_LOST,
        finished_at=now,
        error=(
            f"transcription stopped {MAX_ATTEMPTS} times on this file without finishing "
            "(the worker was killed: out of memory or a crash); it is not tried again"
        ),
    )
    if given_up:
        log.error(
            "transcript %s: started %d times, not finished; failed", transcript_id, MAX_ATTEMPTS
        )
    return False


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
    if isinstance(exc, AudioTooLongError):
        return Transcript.ErrorCode.TOO_LONG
    if isinstance(exc, NotAudioError):
        return Transcript.ErrorCode.NOT_AUDIO
    if isinstance(exc, AudioDecodeError):
        return Transcript.ErrorCode.DECODE_FAILED
    # The stored file is gone or unreadable: ours to put right, not the uploader's.
    return Transcript.ErrorCode.NO_AUDIO


# The decoded audio may run a little past the length the header gave at upload.
_LENGTH_SLACK = 1.01


def _longest_s(transcript: Transcript) -> float | None:
    """How much audio the worker decodes before giving up: the upload limit, checked again
    on the samples because a header can lie. A live session's recording is as long as its
    speaker talked."""
    if transcript.source != Transcript.Source.UPLOAD:
        return None
    return settings.UPLOAD_MAX_DURATION_S * _LENGTH_SLACK + 1.0


# A file is called truncated when its samples end this much before its header says.
TRUNCATED_SHARE = 0.9
TRUNCATED_MIN_S = 5.0


def truncation_warning(declared_s: float | None, decoded_s: float) -> str:
    """A sentence for the transcript when the audio ends well before its declared length
    (an upload cut off in transfer), else ''."""
    if not declared_s or declared_s - decoded_s < TRUNCATED_MIN_S:
        return ""
    if decoded_s >= declared_s * TRUNCATED_SHARE:
        return ""
    return (
        f"the file holds {format_duration(decoded_s)} of audio but says it is "
        f"{format_duration(declared_s)} long: it may be truncated (cut off in transfer); "
        "only what it holds was transcribed"
    )


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
            audio = decode_audio(handle, max_duration_s=_longest_s(transcript))
    except (AudioDecodeError, OSError) as exc:
        fail(transcript, str(exc), notifier, code=_reading_failure(exc))
        return transcript

    duration = round(len(audio) / engine.SAMPLE_RATE, 3)
    warning = truncation_warning(transcript.duration, duration)
    if warning:
        log.warning("transcript %s: %s", transcript.pk, warning)
        Transcript.objects.filter(pk=transcript.pk).update(warning=warning)
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
