"""Keyword extraction and summaries of stored transcripts: the plain functions behind the
keyword tasks."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from keywords import summaries
from keywords.extractors.base import KeywordItem
from keywords.extractors.chooser import extract_keywords
from keywords.models import Keyword, Summary
from transcription.models import Segment, Transcript

log = logging.getLogger(__name__)

MAX_PER_SEGMENT = 10


def _rows(
    transcript: Transcript, segment: Segment | None, items: list[KeywordItem]
) -> list[Keyword]:
    return [
        Keyword(
            transcript=transcript,
            segment=segment,
            word=item.word[:200],
            category=item.category,
            importance=item.importance,
            backend=item.backend,
        )
        for item in items
    ]


def extract_for_segment(segment: Segment) -> list[Keyword]:
    """(Re)extract one segment's keywords; a retry replaces rather than duplicates them."""
    items = extract_keywords(
        segment.text, language=segment.transcript.language or None, max_items=MAX_PER_SEGMENT
    )
    with transaction.atomic():
        Keyword.objects.filter(segment=segment).delete()
        return Keyword.objects.bulk_create(_rows(segment.transcript, segment, items))


def extract_for_transcript(transcript: Transcript) -> int:
    """Keywords for every segment of a transcript, replacing earlier ones. Returns the count."""
    language = transcript.language or None
    rows: list[Keyword] = []
    for segment in transcript.segments.all():
        items = extract_keywords(segment.text, language=language, max_items=MAX_PER_SEGMENT)
        rows.extend(_rows(transcript, segment, items))
    with transaction.atomic():
        Keyword.objects.filter(transcript=transcript).delete()
        Keyword.objects.bulk_create(rows)
    return len(rows)


def summary(transcript: Transcript, limit: int = 20) -> list[dict]:
    """Top keywords of a transcript: word, category, how often, best importance."""
    rows = (
        Keyword.objects.filter(transcript=transcript)
        .values("word", "category")
        .annotate(count=Count("id"), importance=Max("importance"))
        .order_by("-count", "-importance", "word")[:limit]
    )
    return [dict(row) for row in rows]


# --- summaries -------------------------------------------------------------------------

# A summary "running" for longer than its task's hard time limit (keywords/tasks.py) lost its
# worker: a new request may take it over.
SUMMARY_STALE_AFTER_S = 1000


def segment_texts(transcript: Transcript) -> list[str]:
    return list(transcript.segments.order_by("index").values_list("text", flat=True))


def request_summary(transcript: Transcript) -> Summary:
    """Mark the transcript's summary wanted (pending) and queue its task once the current
    transaction commits. A run in progress is superseded: only the newest run's answer is
    stored (``Summary.run_id``). Callers check that the transcript is done."""
    now = timezone.now()
    with transaction.atomic():
        summary, created = Summary.objects.select_for_update().get_or_create(
            transcript=transcript, defaults={"status": Summary.Status.PENDING}
        )
        if not created:
            summary.status = Summary.Status.PENDING
            summary.error = ""
            summary.requested_at = now
            summary.save(update_fields=["status", "error", "requested_at"])
        transcript_id = str(transcript.pk)

        def queue() -> None:
            from keywords.tasks import summarise_transcript

            summarise_transcript.delay(transcript_id)

        transaction.on_commit(queue)
    return summary


def summarise_transcript(transcript_id: Any) -> Summary | None:
    """Write the summary of a transcript whose summary is pending; None when there is none
    to write (another run has it, or the transcript is gone). Idempotent: a redelivered task
    finds the summary claimed or done and does nothing."""
    run = uuid.uuid4()
    now = timezone.now()
    stale = now - dt.timedelta(seconds=SUMMARY_STALE_AFTER_S)
    claimed = (
        Summary.objects.filter(transcript_id=transcript_id)
        .filter(
            Q(status=Summary.Status.PENDING)
            | Q(status=Summary.Status.RUNNING, started_at__lt=stale)
        )
        .update(status=Summary.Status.RUNNING, run_id=run, started_at=now, error="")
    )
    if not claimed:
        return None
    transcript = Transcript.objects.filter(pk=transcript_id).first()
    if transcript is None:
        return None
    mine = Summary.objects.filter(
        transcript_id=transcript_id, status=Summary.Status.RUNNING, run_id=run
    )
    texts = segment_texts(transcript)
    try:
        result = summaries.summarise(texts, transcript.language or None)
    except Exception as exc:  # the embedded summary failing is a bug: say so on the page
        log.exception("summary of %s failed", transcript_id)
        mine.update(
            status=Summary.Status.FAILED,
            error=f"The summary could not be written ({type(exc).__name__}).",
            finished_at=timezone.now(),
        )
        return Summary.objects.filter(transcript_id=transcript_id).first()
    mine.update(
        status=Summary.Status.DONE,
        text=result.text,
        action_items=result.action_items,
        decisions=result.decisions,
        backend=result.backend,
        language=transcript.language or "",
        source_hash=summaries.text_hash(texts),
        finished_at=timezone.now(),
    )
    return Summary.objects.filter(transcript_id=transcript_id).first()


def summary_payload(summary: Summary | None, texts: list[str]) -> dict[str, Any] | None:
    """A summary as the API, the exports and the page's events show it; ``texts`` are the
    transcript's segment texts now (``stale``: the summary was written for other text)."""
    if summary is None:
        return None
    # A summary being regenerated keeps showing the previous one until the new one is in.
    return {
        "status": summary.status,
        "error": summary.error,
        "text": summary.text,
        "action_items": list(summary.action_items or []),
        "decisions": list(summary.decisions or []),
        "language": summary.language,
        "backend": summary.backend,
        "stale": bool(summary.source_hash) and summary.source_hash != summaries.text_hash(texts),
        "finished_at": summary.finished_at.isoformat() if summary.finished_at else None,
    }


def summary_of(transcript: Transcript, texts: list[str]) -> dict[str, Any] | None:
    """The transcript's summary as ``summary_payload`` shows it (``texts``: its segment texts
    now), or None when none was ever requested."""
    return summary_payload(Summary.objects.filter(transcript=transcript).first(), texts)
