"""What one stt task did to an upload, for the metrics (workers/metrics.py): the seconds of
audio it transcribed against the time it took (its real-time factor, wall clock: pauses for
live work included), and, once the transcription ends, whether it ended done or failed.

Read from the row before and after the task (two small queries), so the pipeline stays
free of metrics; with the database down nothing is recorded and the task goes on.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError

from transcription.models import Transcript
from workers import metrics

log = logging.getLogger(__name__)
ENDED = (Transcript.Status.DONE, Transcript.Status.FAILED)


def _state(transcript_id) -> tuple[float, str] | None:
    try:
        row = (
            Transcript.objects.filter(pk=transcript_id).values_list("processed_s", "status").first()
        )
    except DatabaseError:
        return None
    return None if row is None else (float(row[0] or 0.0), str(row[1]))


class UploadMeter:
    def __init__(self, transcript_id) -> None:
        self.transcript_id = transcript_id
        self.before = _state(transcript_id)
        self.started = time.monotonic()

    def finish(self) -> None:
        elapsed = time.monotonic() - self.started
        after = _state(self.transcript_id)
        if self.before is None or after is None:
            return
        (processed_before, status_before), (processed_after, status_after) = self.before, after
        if status_after in (Transcript.Status.DONE, Transcript.Status.QUEUED):
            # Done, or its slice over and queued again; a failed or skipped run did no work
            # worth timing.
            metrics.observe_transcription("upload", processed_after - processed_before, elapsed)
        if status_after in ENDED and status_before not in ENDED:
            metrics.TRANSCRIPTIONS.labels(status_after).inc()
