from __future__ import annotations

from django.contrib import admin

from keywords.models import Keyword


@admin.register(Keyword)
class KeywordAdmin(admin.ModelAdmin):
    list_display = ("word", "category", "importance", "backend", "transcript", "created_at")
    list_filter = ("category", "backend")
    search_fields = ("word",)
    raw_id_fields = ("transcript", "segment")
    list_select_related = ("transcript",)
