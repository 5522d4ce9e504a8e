"""Thin Celery tasks on queue ``stt`` (``transcribe_partial`` is sent to
``LIVE_PARTIAL_QUEUE``): load ids, call the domain function."""

from __future__ import annotations

import logging

from celery import shared_task, signals
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from transcription.batch import turns
from transcription.batch.meter import UploadMeter
from transcription.batch.pipeline import fail, transcribe_transcript
from transcription.models import Transcript
from transcription.notify import ProgressNotifier
from transcription.speech import diarization
from transcription.storage import StorageUnavailable, claim_cache
from workers.queues import Queue, waiting

log = logging.getLogger(__name__)


@signals.worker_init.connect
def _claim_audio_cache(sender=None, **_kwargs) -> None:
    """A worker's folder of local audio copies, emptied of what a killed run left there
    (before its pool starts: the pool's processes inherit the folder)."""
    claim_cache(getattr(sender, "hostname", "") or "worker")


@signals.worker_init.connect
def _load_diarization(sender=None, **_kwargs) -> None:
    """A wrong DIARIZATION_BACKEND stops the worker at start, naming the variable, instead of
    failing every upload it would take."""
    diarization.check()


@shared_task(
    bind=True,
    name="transcription.tasks.transcribe",
    # Acknowledge after the work: a worker killed mid-file gets the message redelivered,
    # and the pipeline resumes after the segments it already stored.
    acks_late=True,
    reject_on_worker_lost=True,
    # Soft limit: raises inside the task so it can mark the transcript failed.
    soft_time_limit=settings.STT_TASK_TIME_LIMIT_S,
    # Hard limit: kills a task stuck in native code; the sweeper then fails the row.
    time_limit=settings.STT_TASK_TIME_LIMIT_S + 60,
    # Only a lost database connection or an unreachable object store is worth retrying (the
    # job was put back as it was); bad audio never is.
    autoretry_for=(OperationalError, InterfaceError, StorageUnavailable),
    max_retries=3,
    retry_backoff=5,
)
def transcribe(self, transcript_id: str) -> None:
    meter = UploadMeter(transcript_id)
    try:
        _transcribe(self, transcript_id)
    finally:
        meter.finish()
        # Done, failed or handed to another task: the owner's next upload may go. With the
        # database down this fails too; the stt workers' sweep dispatches it later.
        try:
            turns.dispatch_after(transcript_id)
        except (OperationalError, InterfaceError) as exc:
            log.warning("could not dispatch the next upload after %s: %s", transcript_id, exc)


def _transcribe(self, transcript_id: str) -> None:
    notifier = ProgressNotifier(transcript_id)
    try:
        transcript = transcribe_transcript(
            transcript_id,
            task_id=self.request.id,
            notifier=notifier,
            slice_s=settings.STT_SLICE_S,
            yield_while=lambda: waiting(Queue.STT_LIVE) > 0,
        )
    except SoftTimeLimitExceeded:
        row = Transcript.objects.get(pk=transcript_id)
        message = (
            f"transcription took longer than {settings.STT_TASK_TIME_LIMIT_S} s; cut the "
            "recording into shorter parts and upload them"
        )
        fail(row, message, notifier, code=Transcript.ErrorCode.TIME_LIMIT)
        return
    except (OperationalError, InterfaceError):
        raise
    except StorageUnavailable as exc:
        if self.request.retries < self.max_retries:
            raise  # tried again after a back-off (autoretry_for)
        row = Transcript.objects.get(pk=transcript_id)
        # The storage client's own words go to the log, not to the person reading this.
        log.warning("transcript %s: the stored audio could not be read: %s", transcript_id, exc)
        message = "the stored audio could not be read; upload the recording again"
        fail(row, message, notifier, code=Transcript.ErrorCode.NO_AUDIO)
        return
    except Exception:
        log.exception("transcription of %s failed", transcript_id)
        row = Transcript.objects.filter(pk=transcript_id).first()
        if row is not None:
            # The exception (a library's) is in the log above; people read what to do.
            message = (
                "internal error; upload the recording again, and tell the administrator if "
                "it happens again"
            )
            fail(row, message, notifier, code=Transcript.ErrorCode.INTERNAL)
        return
    if transcript is not None and transcript.status == Transcript.Status.QUEUED:
        # The slice is over, the file is not: the rest goes to the back of the queue.
        transcribe.apply_async(args=[transcript_id], task_id=transcript.task_id)
        return
    if transcript is not None and transcript.status == Transcript.Status.DONE:
        from keywords.tasks import extract_transcript_keywords

        # Its summary is requested once the keywords are in (keywords/tasks.py).
        extract_transcript_keywords.delay(str(transcript.pk), summarise=True)


@shared_task(
    name="transcription.tasks.transcribe_utterance",
    acks_late=True,
    reject_on_worker_lost=True,
    # An utterance is at most VAD_MAX_UTTERANCE_S long; a minute of compute means trouble.
    soft_time_limit=120,
    time_limit=180,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=1,
)
def transcribe_utterance(job: dict, *positional, **named) -> None:
    from transcription.live.jobs import UtteranceJob
    from transcription.live.worker import transcribe_utterance as run

    if not isinstance(job, dict):
        # Queued by a web process from before the job value: its positional arguments.
        job = UtteranceJob.from_positional(job, *positional, **named)
    run(UtteranceJob.from_dict(job))


@shared_task(name="transcription.tasks.transcribe_partial", soft_time_limit=60, time_limit=90)
def transcribe_partial(job: dict, *_older_form) -> None:
    # Not acknowledged late and never retried: a lost partial is replaced a second later
    # (one queued in the older positional form is simply dropped).
    if not isinstance(job, dict):
        return
    from transcription.live.jobs import PartialJob
    from transcription.live.worker import transcribe_partial as run

    run(PartialJob.from_dict(job))


@shared_task(name="transcription.tasks.finish_live", acks_late=True)
def finish_live(transcript_id: str, duration: float) -> None:
    from transcription.live.worker import finish_live as run

    run(transcript_id, duration)
