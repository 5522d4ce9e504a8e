"""The history page: search and filters over everything said."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from rest_framework.exceptions import ValidationError

from keywords.models import Category
from transcription.access import visible_transcripts
from transcription.models import Transcript
from transcription.search import matching_segments
from transcription.search.results import (
    PageNotFound,
    QuerySetResults,
    paginate,
    snippet,
)
from transcription.web.search_api import TranscriptFilters, read_filters, transcript_results

PAGE_SIZE = 20
FILTER_NAMES = ("q", "source", "language", "status", "date_from", "date_to", "keyword", "category")


@require_safe
def history_page(request: HttpRequest) -> HttpResponse:
    visible = visible_transcripts(request.user)
    raw = {name: request.GET.get(name, "").strip() for name in FILTER_NAMES}
    error = ""
    terms: list = []
    try:
        filters = read_filters(TranscriptFilters, {k: v for k, v in raw.items() if v})
        results, terms = transcript_results(visible, filters)
    except ValidationError as exc:
        # The form stays as typed, with what was wrong; nothing is listed.
        error, results = str(exc.detail.get("error", "")), QuerySetResults(visible.none())
    try:
        number = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        number = 1
    try:
        page = paginate(results, number, PAGE_SIZE)
    except PageNotFound:
        raise Http404("no such page") from None

    # Searching: the matching segments; browsing: the opening line as a preview.
    ids = [t.pk for t in page.rows]
    found = matching_segments(ids, terms, per_transcript=3 if terms else 1)
    # Staff see every transcript, so each says whose it is; a user sees only their own.
    owners = {}
    if request.user.is_staff:
        owner_ids = {t.owner_id for t in page.rows if t.owner_id}
        owners = dict(
            get_user_model()
            .objects.filter(pk__in=owner_ids)
            .values_list("pk", get_user_model().USERNAME_FIELD)
        )
    listed = [
        {
            "transcript": transcript,
            "owner": owners.get(transcript.owner_id),
            "matches": [
                {"segment": s, "snippet": snippet(s.text, terms)}
                for s in found.get(transcript.pk, [])
            ],
            "title_snippet": snippet(str(transcript), terms) if terms else None,
        }
        for transcript in page.rows
    ]
    # Page links keep the filters.
    query = urlencode({k: v for k, v in raw.items() if v})
    languages = (
        visible.exclude(language="")
        .order_by("language")
        .values_list("language", flat=True)
        .distinct()
    )
    return render(
        request,
        "history.html",
        {
            "filters": raw,
            "error": error,
            "page": page,
            "results": listed,
            "query": query,
            "searching": bool(terms),
            "sources": Transcript.Source.choices,
            "categories": Category.choices,
            "languages": list(languages),
        },
    )
