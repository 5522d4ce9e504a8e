"""Failing uploads that no worker will finish.

A task killed by its hard time limit, or a worker lost together with its broker message,
leaves an upload in ``running`` that nothing will ever move. Every stt worker sweeps
periodically (workers/heartbeat.py): an upload running for longer than the task time limit
plus a margin is marked failed, with a message. Live sessions are as long as their speaker
talks, so time says nothing about them: they have a rule of their own
(``transcription.live.records.end_orphaned_sessions``).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from transcription.models import Transcript

MARGIN_S = 300


def sweep_orphans(now: dt.datetime | None = None) -> int:
    """Mark stuck uploads failed; returns how many. Safe to run from many workers at once."""
    now = now or timezone.now()
    limit = dt.timedelta(seconds=settings.STT_TASK_TIME_LIMIT_S + MARGIN_S)
    return Transcript.objects.filter(
        source=Transcript.Source.UPLOAD,
        status=Transcript.Status.RUNNING,
        started_at__lt=now - limit,
    ).update(
        status=Transcript.Status.FAILED,
        error_code=Transcript.ErrorCode.WORKER_LOST,
        finished_at=now,
        error=(
            "transcription stopped: no worker finished it within "
            f"{settings.STT_TASK_TIME_LIMIT_S} s (worker lost or time limit reached); upload it again"
        ),
    )
