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
def extract_transcript_keywords(transcript_id: str) -> int:
    transcript = Transcript.objects.filter(pk=transcript_id).first()
    if transcript is None:
        return 0
    count = services.extract_for_transcript(transcript)
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
