from __future__ import annotations

from django.urls import path

from transcription.consumers import TranscriptEventsConsumer
from transcription.live_consumer import LiveConsumer

websocket_urlpatterns = [
    path("ws", LiveConsumer.as_asgi()),
    path("ws/transcripts/<uuid:transcript_id>/", TranscriptEventsConsumer.as_asgi()),
]
