from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.i18n import JavaScriptCatalog, set_language
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from transcription.web import (
    account,
    api,
    audio,
    certificate,
    editing_api,
    history,
    metrics,
    openai_api,
    pages,
    search_api,
    site_files,
    tickets,
)


def api_view(view):
    # API views answer 401/403 through DRF's own authentication instead of redirecting.
    return login_not_required(view)


urlpatterns = [
    path("", pages.home, name="home"),
    path("status/", pages.status_page, name="status"),
    path("upload/", pages.upload_page, name="upload"),
    path("transcripts/<uuid:pk>/", pages.transcript_page, name="transcript"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/config", pages.api_config, name="api-config"),
    path("api/health", pages.api_health, name="api-health"),
    path("api/transcripts/", api_view(api.TranscriptListCreate.as_view()), name="api-transcripts"),
    path(
        "api/transcripts/<uuid:pk>/",
        api_view(api.TranscriptDetail.as_view()),
        name="api-transcript-detail",
    ),
    path(
        "api/transcripts/<uuid:pk>/export",
        api_view(api.TranscriptExport.as_view()),
        name="api-transcript-export",
    ),
    path(
        "api/transcripts/<uuid:pk>/summary",
        api_view(api.TranscriptSummary.as_view()),
        name="api-transcript-summary",
    ),
    path(
        "api/transcripts/<uuid:pk>/audio",
        api_view(api.TranscriptAudio.as_view()),
        name="api-transcript-audio",
    ),
    path("api/ws-ticket/", api_view(tickets.WebSocketTicket.as_view()), name="api-ws-ticket"),
    path("api/segments/", api_view(search_api.SegmentSearch.as_view()), name="api-segments"),
    path(
        "api/segments/<int:pk>/",
        api_view(editing_api.SegmentDetail.as_view()),
        name="api-segment-detail",
    ),
    path(
        "api/transcripts/<uuid:pk>/speakers/",
        api_view(editing_api.SpeakerList.as_view()),
        name="api-transcript-speakers",
    ),
    path(
        "api/transcripts/<uuid:pk>/speakers/assign",
        api_view(editing_api.SpeakerAssign.as_view()),
        name="api-transcript-speakers-assign",
    ),
    path(
        "api/transcripts/<uuid:pk>/speakers/<int:speaker_id>/",
        api_view(editing_api.SpeakerDetail.as_view()),
        name="api-transcript-speaker",
    ),
    path("api/keywords/", api_view(search_api.KeywordList.as_view()), name="api-keywords"),
    path("history/", history.history_page, name="history"),
    path("transcripts/<uuid:pk>/audio", audio.transcript_audio, name="transcript-audio"),
    path("api/schema/", api_view(SpectacularAPIView.as_view()), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("account/", account.account, name="account"),
    # OpenAI-compatible speech to text; the views check the bearer token themselves.
    path(
        "v1/audio/transcriptions",
        api_view(openai_api.transcriptions),
        name="openai-transcriptions",
    ),
    path("v1/models", api_view(openai_api.models), name="openai-models"),
    path("v1/models/<path:model_id>", api_view(openai_api.model_detail), name="openai-model"),
    path("admin/", admin.site.urls),
    # The header's language switch (POST, remembered in a cookie) and the pages' JavaScript
    # strings (gettext in static/js); both before sign-in, for the login page.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path(
        "jsi18n/",
        login_not_required(JavaScriptCatalog.as_view()),
        name="javascript-catalog",
    ),
    path("tls/ca.crt", certificate.authority, name="tls-authority"),
    path("favicon.ico", site_files.favicon, name="favicon"),
    # Prometheus; a staff token or loopback, checked by the view (transcription/web/metrics.py).
    path("metrics", metrics.metrics, name="metrics"),
]

# Lazy: the admin shows them in the language the request chose (the header's switch).
admin.site.site_header = _("Speech platform administration")
admin.site.site_title = _("Speech platform")
admin.site.index_title = _("Site administration")
