from __future__ import annotations

from django.contrib import admin
from django.db.models import Count

from keywords.models import Keyword
from transcription.models import Segment, Transcript


class SegmentInline(admin.TabularInline):
    model = Segment
    extra = 0
    fields = ("index", "start", "end", "text", "avg_logprob", "no_speech_prob")
    ordering = ("index",)
    show_change_link = True


class KeywordInline(admin.TabularInline):
    model = Keyword
    extra = 0
    fields = ("word", "category", "importance", "backend", "segment")
    raw_id_fields = ("segment",)


@admin.register(Transcript)
class TranscriptAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "owner",
        "source",
        "status",
        "language",
        "duration",
        "segment_count",
        "created_at",
    )
    list_filter = ("source", "status", "language", "created_at")
    search_fields = ("title", "id", "segments__text", "owner__username")
    date_hierarchy = "created_at"
    readonly_fields = ("id", "created_at", "started_at", "finished_at", "progress")
    raw_id_fields = ("owner",)
    inlines = (SegmentInline, KeywordInline)
    list_select_related = ("owner",)

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(_segment_count=Count("segments", distinct=True))
        )

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False if search_term else may_have_duplicates

    @admin.display(description="segments", ordering="_segment_count")
    def segment_count(self, obj: Transcript) -> int:
        return obj._segment_count


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("transcript", "index", "start", "end", "text")
    search_fields = ("text",)
    list_select_related = ("transcript",)
    raw_id_fields = ("transcript",)
