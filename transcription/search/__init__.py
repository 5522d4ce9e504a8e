"""Korean-aware search over what was said, in PostgreSQL (see ``index.py`` for the why).

- ``index``: the document side, the segments' search column (``search_document``,
  ``SearchDocumentField``), kept current on save;
- ``query``: the query side, words to terms to conditions (``parse_query``,
  ``search_transcripts``, ``matching_segments``, ``Segment.objects.search``);
- ``results``: pages of results, bounded counts and highlighting.

The public names are re-exported here; migration 0003 imports ``transcription.search``.
"""

from __future__ import annotations

from transcription.search.index import (
    SearchDocumentField,
    normalise,
    refresh_search_documents,
    search_document,
)
from transcription.search.query import (
    SegmentManager,
    SegmentQuerySet,
    Term,
    TsMatch,
    matching_segments,
    parse_query,
    search_transcripts,
    segment_condition,
    segment_model,
    strip_word,
    title_condition,
    within_transcripts,
)
from transcription.search.results import (
    Page,
    PageNotFound,
    QuerySetResults,
    Results,
    SegmentHits,
    TranscriptHits,
    highlight,
    match_spans,
    paginate,
    snippet,
)

__all__ = [
    "Page",
    "PageNotFound",
    "QuerySetResults",
    "Results",
    "SearchDocumentField",
    "SegmentHits",
    "SegmentManager",
    "SegmentQuerySet",
    "Term",
    "TranscriptHits",
    "TsMatch",
    "highlight",
    "match_spans",
    "matching_segments",
    "normalise",
    "paginate",
    "parse_query",
    "refresh_search_documents",
    "search_document",
    "search_transcripts",
    "segment_condition",
    "segment_model",
    "snippet",
    "strip_word",
    "title_condition",
    "within_transcripts",
]
