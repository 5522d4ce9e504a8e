"""The searchable history over REST: filters shared with the history page, segment hits
(``/api/segments/?q=``) and top keywords (``/api/keywords/``).

Everything starts from ``visible_transcripts(request.user)``: a user's own transcripts,
staff everyone's; nothing of another user's ever reaches a list.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from keywords.models import Category, Keyword
from transcription.access import visible_transcripts
from transcription.models import Segment, Transcript
from transcription.search import parse_query, search_transcripts
from transcription.search.results import (
    PageNotFound,
    QuerySetResults,
    Results,
    SegmentHits,
    TranscriptHits,
    paginate,
)
from transcription.web.payloads import SegmentHitSerializer, segment_hit_payload


class SearchPagination(BasePagination):
    """Page numbers, newest first, with a count that stops at a bound for searches.

    The body is DRF's page-number shape plus ``count_exact``: counting every match of a
    common word would cost more than the page itself (transcription/search_results.py), so a
    search's ``count`` may be a lower bound ("1000+"); ``next`` is always exact.
    """

    page_size = 20
    max_page_size = 100
    page_query_param = "page"
    page_size_query_param = "page_size"

    def paginate_queryset(self, results: Results, request: Request, view=None) -> list:
        self.request = request
        try:
            number = int(request.query_params.get(self.page_query_param, 1))
            if number < 1:
                raise ValueError(number)
        except ValueError as exc:
            raise NotFound("Invalid page.") from exc
        try:
            size = int(request.query_params.get(self.page_size_query_param, self.page_size))
            size = min(max(size, 1), self.max_page_size)
        except ValueError:
            size = self.page_size  # as DRF: a bad page size means the default
        try:
            self.page = paginate(results, number, size)
        except PageNotFound as exc:
            raise NotFound("Invalid page.") from exc
        return self.page.rows

    def _link(self, number: int | None) -> str | None:
        if number is None:
            return None
        url = self.request.build_absolute_uri()
        if number == 1:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, number)

    def get_paginated_response(self, data) -> Response:
        page = self.page
        return Response(
            {
                "count": page.count,
                "count_exact": page.count_exact,
                "next": self._link(page.number + 1 if page.has_next else None),
                "previous": self._link(page.number - 1 if page.has_previous else None),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["count", "count_exact", "results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "description": "How many; a lower bound when count_exact is false",
                },
                "count_exact": {
                    "type": "boolean",
                    "description": "False when a search stopped counting at its bound "
                    "(200 transcripts, 1000 segments)",
                },
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Page number, from 1",
                "schema": {"type": "integer"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.page_size}, "
                f"at most {self.max_page_size})",
                "schema": {"type": "integer"},
            },
        ]


class TranscriptFilters(serializers.Serializer):
    """Query parameters of the transcript list, the segment search and the history page."""

    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Search what was said and titles. Korean words match with any particle "
        "attached (삼성전자 finds 삼성전자의), and inside longer words; Latin words by "
        "prefix. Every word must match.",
    )
    source = serializers.ChoiceField(choices=Transcript.Source.choices, required=False)
    language = serializers.CharField(
        required=False, max_length=16, help_text="Language code, e.g. ko"
    )
    status = serializers.ChoiceField(choices=Transcript.Status.choices, required=False)
    date_from = serializers.DateField(
        required=False, help_text="Created on or after this day (ISO date, server time zone)"
    )
    date_to = serializers.DateField(
        required=False, help_text="Created on or before this day (ISO date, server time zone)"
    )
    keyword = serializers.CharField(
        required=False, max_length=200, help_text="Has this keyword (case-insensitive)"
    )
    category = serializers.ChoiceField(
        choices=Category.choices, required=False, help_text="Has a keyword of this category"
    )

    def validate(self, attrs: dict) -> dict:
        if (
            attrs.get("date_from")
            and attrs.get("date_to")
            and attrs["date_from"] > attrs["date_to"]
        ):
            raise serializers.ValidationError({"date_to": _("must not be before date_from")})
        # Blank values mean "no filter", as an empty form field does.
        return {key: value for key, value in attrs.items() if value not in ("", None)}


def read_filters(serializer_class: type[serializers.Serializer], params) -> dict[str, Any]:
    """Validated query parameters, or a 400 naming every bad one."""
    # Blank form fields (?source=&date_from=) are "no filter", not errors.
    data = {key: value for key, value in params.items() if value.strip()}
    filters = serializer_class(data=data)
    if not filters.is_valid():
        message = "; ".join(
            f"{field}: {' '.join(str(e) for e in errors)}"
            for field, errors in filters.errors.items()
        )
        raise ValidationError({"error": message, "fields": filters.errors})
    return filters.validated_data


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def filter_transcripts(
    transcripts: QuerySet[Transcript], filters: dict[str, Any], *, search: bool = True
) -> QuerySet[Transcript]:
    """Apply validated ``TranscriptFilters`` (``search=False`` leaves ``q`` out)."""
    for name in ("source", "language", "status"):
        if filters.get(name):
            transcripts = transcripts.filter(**{name: filters[name]})
    # Day bounds as instants, so the index on created_at still serves the range.
    if filters.get("date_from"):
        transcripts = transcripts.filter(created_at__gte=_day_start(filters["date_from"]))
    if filters.get("date_to"):
        next_day = filters["date_to"] + dt.timedelta(days=1)
        transcripts = transcripts.filter(created_at__lt=_day_start(next_day))
    keyword_match = {}
    if filters.get("keyword"):
        keyword_match["word__iexact"] = filters["keyword"].strip()
    if filters.get("category"):
        keyword_match["category"] = filters["category"]
    if keyword_match:
        # One keyword row must match both, so "삼성전자 in 회사" is not "삼성전자 anywhere
        # and some other 회사 keyword".
        transcripts = transcripts.filter(
            Exists(Keyword.objects.filter(transcript=OuterRef("pk"), **keyword_match))
        )
    if search and filters.get("q"):
        transcripts = search_transcripts(transcripts, filters["q"])
    return transcripts.order_by("-created_at", "-pk")


def transcript_results(transcripts: QuerySet[Transcript], filters: dict[str, Any]):
    """The transcript list as paginated results, and the search terms (empty if none).

    ``q`` without a searchable word (``?!``) finds nothing rather than everything."""
    listed = filter_transcripts(transcripts, filters, search=False)
    q = filters.get("q", "")
    terms = parse_query(q)
    if terms:
        return TranscriptHits(listed, terms), terms
    if q.strip():
        return QuerySetResults(listed.none()), terms
    return QuerySetResults(listed), terms


class SegmentFilters(TranscriptFilters):
    q = serializers.CharField(
        max_length=200,
        help_text="Words that must all be in one segment; Korean words match with any "
        "particle attached and inside longer words, Latin words by prefix.",
    )
    transcript = serializers.UUIDField(required=False, help_text="Only this transcript")


@extend_schema(
    summary="Search segments",
    description="Segments of your transcripts (all of them for staff) that contain every "
    "word of q, newest transcript first, in order within a transcript.",
    parameters=[SegmentFilters],
    responses=SegmentHitSerializer(many=True),
)
class SegmentSearch(GenericAPIView):
    pagination_class = SearchPagination
    serializer_class = SegmentHitSerializer

    def get(self, request: Request) -> Response:
        filters = read_filters(SegmentFilters, request.query_params)
        terms = parse_query(filters["q"])
        transcripts = filter_transcripts(
            visible_transcripts(request.user), filters, search=False
        ).order_by()
        if filters.get("transcript"):
            transcripts = transcripts.filter(pk=filters["transcript"])
        results = (
            SegmentHits(transcripts, terms) if terms else QuerySetResults(Segment.objects.none())
        )
        page = self.paginate_queryset(results)
        hits = [segment_hit_payload(segment, terms) for segment in page]
        return self.get_paginated_response(hits)


class KeywordFilters(serializers.Serializer):
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    source = serializers.ChoiceField(choices=Transcript.Source.choices, required=False)
    language = serializers.CharField(required=False, max_length=16)
    date_from = serializers.DateField(required=False, help_text="ISO date, server time zone")
    date_to = serializers.DateField(required=False, help_text="ISO date, server time zone")
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=500, default=50, help_text="At most this many"
    )


class KeywordCountSerializer(serializers.Serializer):
    word = serializers.CharField()
    category = serializers.ChoiceField(choices=Category.choices)
    count = serializers.IntegerField(help_text="Times extracted, over all segments")
    transcripts = serializers.IntegerField(help_text="Transcripts it was extracted from")


class KeywordListSerializer(serializers.Serializer):
    results = KeywordCountSerializer(many=True)


@extend_schema(
    summary="Top keywords",
    description="The most frequent keywords of your transcripts (all for staff), per "
    "word and category, most frequent first.",
    parameters=[KeywordFilters],
    responses=KeywordListSerializer,
)
class KeywordList(APIView):
    def get(self, request: Request) -> Response:
        filters = read_filters(KeywordFilters, request.query_params)
        # The category narrows the keywords themselves, not the transcripts they are from.
        by_transcript = {k: v for k, v in filters.items() if k != "category"}
        transcripts = filter_transcripts(
            visible_transcripts(request.user), by_transcript, search=False
        ).order_by()
        keywords = Keyword.objects.filter(transcript__in=transcripts)
        if filters.get("category"):
            keywords = keywords.filter(category=filters["category"])
        return Response({"results": top_keywords(keywords, filters.get("limit", 50))})


def top_keywords(keywords: QuerySet[Keyword], limit: int) -> list[dict[str, Any]]:
    """Word, category, occurrences and transcripts, most frequent first.

    Counted per transcript first, then per word: both steps hash, where one
    ``COUNT(DISTINCT transcript)`` per word sorts every keyword row (about twice as slow
    over a large history).
    """
    per_transcript = (
        keywords.values("word", "category", "transcript_id").annotate(n=Count("id")).order_by()
    )
    inner, params = per_transcript.query.sql_with_params()
    sql = (
        "SELECT word, category, SUM(n) AS count, COUNT(*) AS transcripts "
        f"FROM ({inner}) AS per_transcript GROUP BY word, category "
        "ORDER BY count DESC, transcripts DESC, word, category LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [
            {"word": word, "category": category, "count": int(count), "transcripts": transcripts}
            for word, category, count, transcripts in cursor.fetchall()
        ]
