from __future__ import annotations

from django.contrib import admin
from django.urls import path

from transcription import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("status/", views.status_page, name="status"),
    path("upload/", views.upload_page, name="upload"),
    path("transcripts/<uuid:pk>/", views.transcript_page, name="transcript"),
    path("api/config", views.api_config, name="api-config"),
    path("api/health", views.api_health, name="api-health"),
    path("api/transcripts/", api.TranscriptListCreate.as_view(), name="api-transcripts"),
    path(
        "api/transcripts/<uuid:pk>/", api.TranscriptDetail.as_view(), name="api-transcript-detail"
    ),
    path(
        "api/transcripts/<uuid:pk>/export",
        api.TranscriptExport.as_view(),
        name="api-transcript-export",
    ),
    path("admin/", admin.site.urls),
]

admin.site.site_header = "Speech platform administration"
admin.site.site_title = "Speech platform"
