"""Search results, one page at a time, and highlighting (the queries themselves are in
``transcription/search.py``).

Speed (``SegmentHits``, ``TranscriptHits``, ``paginate``): pages are newest first and
PostgreSQL finds them fast both ways round, walking the newest transcripts for common
words and the GIN index for rare ones. Counting every match of a common word is what
costs (a word in a third of 200,000 segments: ~200 ms), so counts stop at a bound and
say whether they are exact ("1000+").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from django.db import models
from django.db.models import Exists, OuterRef
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from transcription.search.query import (
    HIT_FIELDS,
    Term,
    segment_condition,
    segment_model,
    title_condition,
    within_transcripts,
)

if TYPE_CHECKING:
    from transcription.models import Transcript


# --- result sets and pages -----------------------------------------------------------

# Transcripts are counted from at most this many matching segments.
SEGMENTS_READ_FOR_COUNT = 2000


class Results(Protocol):
    # Where counting stops ("1000+"), unless a later page needs more.
    count_bound: int

    def page(self, offset: int, limit: int) -> list: ...

    def count(self, bound: int) -> tuple[int, bool]:
        """How many, counting no further than ``bound``; and whether that is exact."""
        ...


class QuerySetResults:
    """An ordered QuerySet as results. ``bounded`` counts stop at the bound (searches);
    plain lists are counted exactly, which an index makes cheap."""

    count_bound = 1000

    def __init__(self, queryset: models.QuerySet, *, bounded: bool = False) -> None:
        self.queryset = queryset
        self.bounded = bounded

    def page(self, offset: int, limit: int) -> list:
        return list(self.queryset[offset : offset + limit])

    def count(self, bound: int) -> tuple[int, bool]:
        if not self.bounded:
            return self.queryset.count(), True
        # COUNT over a LIMITed subquery: PostgreSQL stops reading at the bound.
        counted = self.queryset.order_by()[: bound + 1].count()
        return min(counted, bound), counted <= bound


class SegmentHits(QuerySetResults):
    """Segments of ``transcripts`` containing every term, newest transcript first."""

    def __init__(self, transcripts: models.QuerySet[Transcript], terms: Sequence[Term]):
        self.terms = list(terms)
        segments = within_transcripts(
            segment_model().objects.filter(segment_condition(terms)), transcripts
        )
        super().__init__(
            segments.select_related("transcript")
            .only(
                *HIT_FIELDS,
                "transcript__id",
                "transcript__title",
                "transcript__source",
                "transcript__created_at",
            )
            .order_by("-transcript__created_at", "transcript_id", "index"),
            bounded=True,
        )


class TranscriptHits:
    """Transcripts of ``transcripts`` with a segment containing every term, or a title
    containing them, newest first.

    Two branches merged in Python rather than one ``EXISTS (...) OR title ~* ...``: with
    the OR, PostgreSQL can no longer walk the newest transcripts and probe their segments,
    and evaluates every match of the word instead.
    """

    order = ("-created_at", "-pk")
    # Counted from the transcripts of the first SEGMENTS_READ_FOR_COUNT matching segments,
    # so a bound well under that number keeps "200+" honest for words said everywhere.
    count_bound = 200

    def __init__(self, transcripts: models.QuerySet[Transcript], terms: Sequence[Term]):
        self.terms = list(terms)
        self.transcripts = transcripts
        condition = segment_condition(terms)
        said = segment_model().objects.filter(condition, transcript=OuterRef("pk"))
        self.said = transcripts.filter(Exists(said))
        self.titled = transcripts.filter(title_condition(terms))
        self.segments = within_transcripts(segment_model().objects.filter(condition), transcripts)

    def page(self, offset: int, limit: int) -> list[Transcript]:
        wanted = offset + limit
        keys = set(self.said.order_by(*self.order).values_list("created_at", "pk")[:wanted])
        keys |= set(self.titled.order_by(*self.order).values_list("created_at", "pk")[:wanted])
        # UUIDs order like PostgreSQL's uuid type (by their bytes).
        chosen = [pk for _created, pk in sorted(keys, reverse=True)[offset:wanted]]
        rows = self.transcripts.model.objects.in_bulk(chosen)
        return [rows[pk] for pk in chosen]

    def count(self, bound: int) -> tuple[int, bool]:
        # The transcripts of the first matching segments (index order, a cheap read), and
        # the titled ones: exact while neither read reached its limit.
        read = list(
            self.segments.order_by().values_list("transcript_id", flat=True)[
                : SEGMENTS_READ_FOR_COUNT + 1
            ]
        )
        titled = list(self.titled.order_by().values_list("pk", flat=True)[: bound + 1])
        found = set(read[:SEGMENTS_READ_FOR_COUNT]) | set(titled)
        exact = len(read) <= SEGMENTS_READ_FOR_COUNT and len(titled) <= bound
        if len(found) > bound:
            return bound, False
        return len(found), exact


@dataclass
class Page:
    rows: list
    number: int
    size: int
    count: int
    count_exact: bool
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // self.size))


class PageNotFound(LookupError):
    pass


def paginate(results: Results, number: int, size: int, bound: int | None = None) -> Page:
    """One page of ``results`` (1-based ``number``) with a bounded count. A page past the
    end raises ``PageNotFound``; the first page always exists, if empty."""
    bound = results.count_bound if bound is None else bound
    offset = (number - 1) * size
    rows = results.page(offset, size + 1)
    has_next = len(rows) > size
    rows = rows[:size]
    if number > 1 and not rows:
        raise PageNotFound(number)
    count, exact = results.count(max(bound, offset + size))
    if not exact:
        # A lower bound, never less than what the pages show to exist.
        count = max(count, offset + len(rows) + (1 if has_next else 0))
    return Page(rows, number, size, count, exact, has_next)


# --- highlighting ---------------------------------------------------------------------


def _combined(terms: Sequence[Term]) -> re.Pattern[str] | None:
    if not terms:
        return None
    # Longer terms first, so "삼성전자" wins over "삼성" where both match.
    ordered = sorted(terms, key=lambda t: len(t.text), reverse=True)
    return re.compile("|".join(f"(?:{t.pattern})" for t in ordered), re.IGNORECASE)


def match_spans(text: str, terms: Sequence[Term]) -> list[tuple[int, int]]:
    """Character offsets ``[start, end)`` of the terms in ``text``."""
    pattern = _combined(terms)
    if pattern is None:
        return []
    return [(m.start(), m.end()) for m in pattern.finditer(text) if m.end() > m.start()]


def highlight(text: str, terms: Sequence[Term], spans: Sequence[tuple[int, int]] | None = None):
    """``text`` as safe HTML: every part escaped, the matches wrapped in ``<mark>``."""
    spans = match_spans(text, terms) if spans is None else spans
    out: list[str] = []
    position = 0
    for start, end in spans:
        out.append(escape(text[position:start]))
        out.append("<mark>" + escape(text[start:end]) + "</mark>")
        position = end
    out.append(escape(text[position:]))
    # Safe: every piece of the text went through escape() above.
    return mark_safe("".join(out))  # noqa: S308


def snippet(text: str, terms: Sequence[Term], width: int = 160) -> SafeString:
    """Highlighted ``text``, cut to about ``width`` characters around the first match."""
    spans = match_spans(text, terms)
    if len(text) <= width:
        return highlight(text, terms, spans)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - width // 3, len(text) - width))
    end = min(len(text), start + width)
    # Keep whole words at the cut edges where a space is near.
    if start > 0:
        space = text.find(" ", start, first if spans else start + 20)
        start = space + 1 if space != -1 else start
    if end < len(text):
        space = text.rfind(" ", max(start, end - 20), end)
        end = space if space != -1 else end
    inner = [(s - start, e - start) for s, e in spans if s >= start and e <= end]
    body = highlight(text[start:end], terms, inner)
    return mark_safe(  # noqa: S308 - both parts are safe: literal ellipses and escaped text
        ("… " if start > 0 else "") + body + (" …" if end < len(text) else "")
    )
