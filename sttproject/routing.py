from __future__ import annotations

from django.urls import path

from transcription.live.consumer import LiveConsumer
from transcription.web.progress import TranscriptEventsConsumer

websocket_urlpatterns = [
    path("ws", LiveConsumer.as_asgi()),
    path("ws/transcripts/<uuid:transcript_id>/", TranscriptEventsConsumer.as_asgi()),
]
