"""``/ws/transcripts/<id>/``: a transcript's progress, segments and keywords as they happen.

Thin: check access, join the transcript's group, forward what the notifier sends. Who may
watch is the pages' and the API's rule (transcription/access.py): a user their own
transcripts, staff everything; anyone else is refused as if the id did not exist.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from sttproject.websocket import MESSAGE_TOO_BIG, oversized_event
from transcription.access import visible_transcripts
from transcription.notify import group_name

# The socket's 404: the same answer for "not yours" and "no such transcript".
NOT_FOUND = 4404


@database_sync_to_async
def _may_watch(user, transcript_id: str) -> bool:
    return visible_transcripts(user).filter(pk=transcript_id).exists()


class TranscriptEventsConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/transcripts/<id>/``: progress, segments and keywords of one transcript."""

    async def connect(self) -> None:
        self.transcript_id = str(self.scope["url_route"]["kwargs"]["transcript_id"])
        if not await _may_watch(self.scope.get("user"), self.transcript_id):
            await self.close(code=NOT_FOUND)
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

    async def websocket_oversized(self, message: dict) -> None:
        """A message over the server's transport limit (sttproject/websocket.py)."""
        await self.send_json(oversized_event(message))
        await self.close(code=MESSAGE_TOO_BIG)

    async def transcript_event(self, message: dict) -> None:
        await self.send_json(message["event"])
