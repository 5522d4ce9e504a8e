from __future__ import annotations

from django.urls import path

from transcription.consumers import TranscriptEventsConsumer

websocket_urlpatterns = [
    path("ws/transcripts/<uuid:transcript_id>/", TranscriptEventsConsumer.as_asgi()),
]
