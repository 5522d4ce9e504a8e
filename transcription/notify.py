"""The one progress notifier: typed events to the channel layer group of a transcript.

Tasks never touch the channel layer themselves. Delivery is best effort: pages
that miss an event read the state from the database, so a channel layer hiccup
must never fail a transcription.

``segment_payload`` is a segment's public shape, here below every room that sends or
serves one: the batch pipeline's ``segments`` events and the web's REST payloads
(transcription/web/payloads.py) are built from this one function. It carries the segment's
word timings (``words``: ``[{"word", "start", "end", "probability"}]`` or null) unless asked
not to: search hits, many to a page, leave them out. ``speaker`` is the id of one of the
transcript's speakers (its ``speakers`` list names them), or null.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

if TYPE_CHECKING:
    from transcription.models import Segment

log = logging.getLogger(__name__)


def group_name(transcript_id: Any) -> str:
    return f"transcript.{transcript_id}"


def segment_payload(segment: Segment, *, words: bool = True) -> dict[str, Any]:
    """A stored segment as events and the REST API show it; ``words`` as stored (null for
    segments without word timings), left out with ``words=False``."""
    data: dict[str, Any] = {
        "id": segment.pk,
        "index": segment.index,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        # A person's correction: the machine's text beside it (null: never edited), and the
        # version an edit must name (transcription/editing.py).
        "original_text": segment.original_text if segment.edited else None,
        "edited": segment.edited,
        "version": segment.version,
        "speaker": segment.speaker_id,
    }
    if words:
        data["words"] = segment.words
    return data


class ProgressNotifier:
    def __init__(self, transcript_id: Any, *, live: bool = False) -> None:
        self.group = group_name(transcript_id)
        self.transcript_id = str(transcript_id)
        # Live sessions number their events and keep them for clients that reconnect.
        self.live = live

    def send(self, event_type: str, **payload: Any) -> None:
        event = {"type": event_type, "transcript": self.transcript_id, **payload}
        try:
            if self.live:
                from transcription.live import store

                event = store.record(self.transcript_id, event)
            layer = get_channel_layer()
            if layer is not None:
                async_to_sync(layer.group_send)(
                    self.group, {"type": "transcript.event", "event": event}
                )
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            log.warning("could not notify %s of %s: %s", self.group, event_type, exc)

    def status(self, status: str, error: str = "") -> None:
        self.send("status", status=status, error=error)

    def progress(self, progress: float, processed_s: float, duration: float | None) -> None:
        self.send(
            "progress", progress=round(progress, 4), processed_s=processed_s, duration=duration
        )

    def segments(self, segments: list[dict]) -> None:
        if segments:
            self.send("segments", segments=segments)

    def keywords(self, items: list[dict], segment_id: int | None = None) -> None:
        self.send("keywords", segment=segment_id, items=items)


class NullNotifier(ProgressNotifier):
    """For callers without listeners (the command line, tests of the domain function)."""

    def __init__(self) -> None:
        super().__init__("none", live=False)

    def send(self, event_type: str, **payload: Any) -> None:
        return None
