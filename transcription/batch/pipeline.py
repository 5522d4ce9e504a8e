"""Transcribing a stored recording: the plain domain function behind the stt task.

A transcript is claimed once (``queued`` -> ``running``), decoded as a stream in
windows cut in pauses (batch/windows.py: memory stays flat in the file's length),
cut into utterances by VAD and transcribed batch by batch. Each batch's segments
are written in one transaction together with how far the audio is done, so a crash
loses nothing already written and a redelivered task resumes where the last one
stopped; segment indexes are unique per transcript, so a retry never duplicates.
A task works for ``STT_SLICE_S`` at most and then queues the rest of the file
behind other people's work.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from transcription import storage
from transcription.batch.windows import AudioWindows, cut_point
from transcription.editing import machine_fields
from transcription.models import Segment, Transcript
from transcription.notify import NullNotifier, ProgressNotifier, segment_payload
from transcription.speakers import apply_labels
from transcription.speech import diarization, engine
from transcription.speech.audio import (
    AudioDecodeError,
    AudioTooLongError,
    NotAudioError,
    format_duration,
    iter_decode,
)
from transcription.speech.hallucination import filter_segments
from transcription.storage import StorageUnavailable

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
            "(the worker was killed: out of memory or a crash); it is not tried again: "
            "cut it into shorter parts or save it as wav, then upload it again"
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


# Decoded audio comes in pieces this long (the window grows from them).
CHUNK_S = 30.0
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
    slice_s: float = 0.0,
    yield_while: Callable[[], bool] | None = None,
) -> Transcript | None:
    """Transcribe one claimed transcript. Returns it, or None when someone else has it.

    With ``slice_s``, the work stops at the first batch boundary after that many seconds and
    the transcript goes back to ``queued`` under a new task id (returned with it), so that
    the caller can queue the rest behind other people's files; 0 works to the end. Between
    batches, while ``yield_while()`` is true (live finals waiting), the work pauses, for at
    most ``YIELD_MAX_S`` at a time.
    """
    notifier = notifier or NullNotifier()
    if not claim(transcript_id, task_id):
        log.info("transcript %s is not queued (or owned by another task); skipping", transcript_id)
        return None
    transcript = Transcript.objects.get(pk=transcript_id)
    notifier.status(Transcript.Status.RUNNING)
    if not transcript.audio:
        message = "the transcript has no stored audio file; upload the recording again"
        fail(transcript, message, notifier, code=Transcript.ErrorCode.NO_AUDIO)
        return transcript
    deadline = time.monotonic() + slice_s if slice_s else None
    try:
        # From object storage, a local copy in this worker's cache, deleted however this ends.
        with storage.decodable(transcript.audio.name) as source:
            finished = _transcribe_file(
                transcript, source, notifier, on_progress, deadline, yield_while
            )
            if finished:
                _diarize(transcript, source)
    except StorageUnavailable:
        # The store is down, not the file bad: the job goes back to the queue as it was, and
        # the task tries again later (tasks.py).
        _release(transcript)
        raise
    except (AudioDecodeError, OSError) as exc:
        message = str(exc)
        if not isinstance(exc, AudioDecodeError):
            # The operating system's words name a path on the server: they go to the log, and
            # the person reading the transcript is told what to do.
            log.warning("transcript %s: the stored audio could not be read: %s", transcript.pk, exc)
            message = "the stored audio could not be read; upload the recording again"
        fail(transcript, message, notifier, code=_reading_failure(exc))
        return transcript
    if not finished:
        _requeue(transcript)
        return transcript

    duration = transcript.duration
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


def _diarize(transcript: Transcript, source) -> None:
    """Speaker labels from DIARIZATION_BACKEND (speech/diarization.py), once every segment
    is stored: the one place a backend is called. One that fails costs the labels, never the
    transcript."""
    if diarization.backend() is None:
        return
    rows = list(transcript.segments.order_by("index").values_list("pk", "start", "end"))
    if hasattr(source, "seek"):
        source.seek(0)  # an open file the decoder has read to its end
    try:
        labels = diarization.label_spans(source, [(start, end) for _pk, start, end in rows])
    except Exception:  # noqa: BLE001 - a third-party backend; see the docstring
        log.exception("transcript %s: diarization failed; no speaker labels", transcript.pk)
        return
    if labels:
        count = apply_labels(
            transcript, dict(zip([pk for pk, _s, _e in rows], labels, strict=True))
        )
        log.info("transcript %s: %d segments labelled by speaker", transcript.pk, count)


def _release(transcript: Transcript) -> None:
    """Back to ``queued`` under the same task id, this start not counted: the task is
    retried because of something that was not this file's fault."""
    Transcript.objects.filter(pk=transcript.pk, status=Transcript.Status.RUNNING).update(
        status=Transcript.Status.QUEUED, attempts=Greatest(F("attempts") - 1, 0)
    )


def _requeue(transcript: Transcript) -> None:
    """Back to ``queued`` under a new task id: the slice ended, the file did not."""
    transcript.task_id = str(uuid.uuid4())
    transcript.status = Transcript.Status.QUEUED
    # This start finished its slice: the poison guard counts starts of one slice.
    Transcript.objects.filter(pk=transcript.pk).update(
        status=Transcript.Status.QUEUED, task_id=transcript.task_id, attempts=0
    )


def _shifted(result: engine.SegmentResult, offset: float) -> engine.SegmentResult:
    words = [
        {**word, "start": round(word["start"] + offset, 2), "end": round(word["end"] + offset, 2)}
        for word in result.words or []
    ]
    return replace(
        result, start=result.start + offset, end=result.end + offset, words=words or result.words
    )


def _transcribe_file(transcript, source, notifier, on_progress, deadline, yield_while) -> bool:
    """Window by window from where the last attempt stopped; False when the deadline came
    first (what was done is stored and ``processed_s`` says where to go on)."""
    declared = transcript.duration
    language = transcript.language or "ko"
    position = transcript.processed_s
    last = transcript.segments.aggregate(m=Max("index"))["m"]
    next_index = 0 if last is None else last + 1
    chunks = iter_decode(source, CHUNK_S, start_s=position, max_duration_s=_longest_s(transcript))
    reader = AudioWindows(chunks, position, settings.STT_WINDOW_S)

    def advance(processed: float) -> None:
        progress = min(processed / declared, 1.0) if declared else 0.0
        Transcript.objects.filter(pk=transcript.pk).update(processed_s=processed, progress=progress)
        notifier.progress(progress, processed, declared or processed)
        if on_progress:
            on_progress(progress)

    while (window := reader.next()) is not None:
        regions = engine.speech_regions(window.audio)
        keep, cut = cut_point(regions, window.duration, window.last)
        if language == "auto" and keep:
            language = engine.detect_language(window.audio, keep)
            Transcript.objects.filter(pk=transcript.pk).update(language=language)
        # Audio after the cut is the next window's: no span is decoded with any of it.
        batches = engine.transcribe_regions(window.audio, keep, language, cut) if keep else []
        for batch in batches:
            kept = filter_segments(batch.segments, speech_spans=regions)
            stored = []
            processed = window.start + batch.processed_until
            with transaction.atomic():
                for result in kept:
                    stored.append(_store(transcript, next_index, _shifted(result, window.start)))
                    next_index += 1
                advance(processed)
            notifier.segments([segment_payload(s) for s in stored])
            if yield_while is not None:
                _give_way(yield_while)
            if deadline is not None and time.monotonic() > deadline:
                log.info(
                    "transcript %s: slice over at %.1f s; queued again", transcript.pk, processed
                )
                return False
        reader.consume(cut)
        advance(reader.position)

    duration = round(reader.position, 3)
    updates = {"duration": duration}
    if language == "auto":
        updates["language"] = ""  # no speech anywhere to tell it by
    warning = truncation_warning(declared, duration)
    if warning:
        log.warning("transcript %s: %s", transcript.pk, warning)
        updates["warning"] = warning
    Transcript.objects.filter(pk=transcript.pk).update(**updates)
    transcript.duration = duration
    return True


# A pause for live work lasts at most this long, so uploads move on under a steady stream.
YIELD_MAX_S = 10.0


def _give_way(yield_while: Callable[[], bool]) -> None:
    """Wait while live work waits: the live workers get the device (GPU or CPU) to
    themselves for it, with this upload's state kept in memory (no decoding again)."""
    until = time.monotonic() + YIELD_MAX_S
    while yield_while() and time.monotonic() < until:
        time.sleep(0.05)


def _store(transcript: Transcript, index: int, result: engine.SegmentResult) -> Segment:
    fields = {
        "start": result.start,
        "end": result.end,
        "text": result.text,
        "avg_logprob": result.avg_logprob,
        "no_speech_prob": result.no_speech_prob,
        "words": result.words,
    }
    # A retry rewrites its segments by index; a person's correction of one stays (edits wait
    # for the end of a transcription, editing.py, so this is only a guard).
    existing = (
        Segment.objects.filter(transcript=transcript, index=index).only("pk", "edited_at").first()
    )
    segment, _ = Segment.objects.update_or_create(
        transcript=transcript, index=index, defaults=machine_fields(existing, fields)
    )
    return segment
