"""Thin Celery tasks on queue ``keywords``."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from keywords import services
from transcription.models import Segment, Transcript
from transcription.notify import ProgressNotifier


@shared_task(
    name="keywords.tasks.extract_transcript_keywords",
    acks_late=True,
    reject_on_worker_lost=True,
    # The LLM client has its own time-outs and retries; this only bounds a stuck task.
    soft_time_limit=600,
    time_limit=660,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=5,
)
def extract_transcript_keywords(transcript_id: str, summarise: bool = False) -> int:
    transcript = Transcript.objects.filter(pk=transcript_id).first()
    if transcript is None:
        return 0
    count = services.extract_for_transcript(transcript)
    if summarise and transcript.status == Transcript.Status.DONE:
        # After the keywords, which the page shows first: a summary takes longer. Pending
        # before the event below, so the page it reloads shows the summary on its way.
        services.request_summary(transcript)
    ProgressNotifier(transcript_id).send("keywords_summary", items=services.summary(transcript))
    return count


@shared_task(
    name="keywords.tasks.extract_segment_keywords",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=120,
    time_limit=150,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=2,
)
def extract_segment_keywords(segment_id: int, live_events: bool = True) -> int:
    """``live_events=False`` for a segment a person corrected: a live session's numbered
    events end with ``stopped``, and keywords of a correction made later must not follow
    it (while a stream's own finals' keywords are what its stop waits for)."""
    segment = Segment.objects.select_related("transcript").filter(pk=segment_id).first()
    if segment is None:
        return 0
    rows = services.extract_for_segment(segment)
    live = live_events and segment.transcript.source == Transcript.Source.LIVE
    ProgressNotifier(segment.transcript_id, live=live).keywords(
        [{"word": k.word, "category": k.category, "importance": k.importance} for k in rows],
        segment_id=segment.pk,
    )
    return len(rows)


@shared_task(
    name="keywords.tasks.summarise_transcript",
    acks_late=True,
    reject_on_worker_lost=True,
    # A long transcript is summarised in chunks, each an LLM request of up to
    # SUMMARY_TIMEOUT_S (with retries); the embedded summary takes seconds. This only bounds
    # a stuck task: the soft limit fails the summary with a message (services), the hard one
    # ends a task that ignored it. services.SUMMARY_STALE_AFTER_S is above the hard limit.
    soft_time_limit=900,
    time_limit=960,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=5,
)
def summarise_transcript(transcript_id: str) -> str | None:
    summary = services.summarise_transcript(transcript_id)
    if summary is None:
        return None
    texts = services.segment_texts(summary.transcript)
    ProgressNotifier(transcript_id).send(
        "summary", summary=services.summary_payload(summary, texts)
    )
    return summary.status
