"""WebSocket consumers: thin. Check access, join the group, forward events."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from transcription.models import Transcript
from transcription.notify import group_name


@database_sync_to_async
def _may_watch(user, transcript_id) -> bool:
    transcript = Transcript.objects.filter(pk=transcript_id).only("owner_id").first()
    if transcript is None:
        return False
    if transcript.owner_id is None:
        return True
    return bool(
        user and user.is_authenticated and (user.is_staff or user.pk == transcript.owner_id)
    )


class TranscriptEventsConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/transcripts/<id>/``: progress, segments and keywords of one transcript."""

    async def connect(self) -> None:
        self.transcript_id = str(self.scope["url_route"]["kwargs"]["transcript_id"])
        if not await _may_watch(self.scope.get("user"), self.transcript_id):
            await self.close(code=4404)
            return
        self.group = group_name(self.transcript_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        # The stream is one-way; anything sent is answered, never silently dropped.
        await self.send_json(
            {"type": "error", "code": "read_only", "message": "this stream only sends"}
        )

    async def transcript_event(self, message: dict) -> None:
        await self.send_json(message["event"])
