"""Keyword extraction for stored segments: the plain functions behind the keyword tasks."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Max

from keywords.extractors.base import KeywordItem
from keywords.extractors.chooser import extract_keywords
from keywords.models import Keyword
from transcription.models import Segment, Transcript

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
