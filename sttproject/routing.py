from __future__ import annotations

# WebSocket routes; the live consumer (``/ws``) is added by the live transcription work.
websocket_urlpatterns: list = []
