from __future__ import annotations

from django.contrib import admin

from keywords.models import Keyword, Summary


@admin.register(Keyword)
class KeywordAdmin(admin.ModelAdmin):
    list_display = ("word", "category", "importance", "backend", "transcript", "created_at")
    list_filter = ("category", "backend")
    search_fields = ("word",)
    raw_id_fields = ("transcript", "segment")
    list_select_related = ("transcript",)


@admin.register(Summary)
class SummaryAdmin(admin.ModelAdmin):
    list_display = ("transcript", "status", "backend", "language", "finished_at")
    list_filter = ("status", "backend")
    raw_id_fields = ("transcript",)
    readonly_fields = ("run_id", "requested_at", "started_at", "finished_at", "source_hash")
