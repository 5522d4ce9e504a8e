"""Sharing the stt workers between people: whose uploads go to the broker, and when.

Sending every upload to the broker at once made the queue first come, first served: one
person's folder of 200 recordings held everyone else's single file until it was through.
An upload now waits in PostgreSQL (``queued``, not yet dispatched) and each person has at
most ``slots()`` uploads in the broker or running at a time; when one ends, their next is
sent. A newcomer's file therefore waits behind at most one file per worker of each other
person, however many files those people dropped.

A per-person budget of audio an hour (``UPLOAD_AUDIO_PER_HOUR_S``) remains as the abuse
limit, instead of a count of uploads.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from transcription.models import Transcript
from workers.queues import Queue

log = logging.getLogger(__name__)

# pg_advisory_xact_lock keys of this module: LOCK_BASE + the owner's id (0 without owner).
LOCK_BASE = 0x5454_0000_0000
WINDOW = dt.timedelta(hours=1)
IN_FLIGHT = (Transcript.Status.QUEUED, Transcript.Status.RUNNING)


def slots() -> int:
    """Uploads one person may have in the broker or running: ``UPLOAD_SLOTS_PER_USER``, or
    by default one per stt worker online, so that someone alone keeps every worker busy."""
    if settings.UPLOAD_SLOTS_PER_USER:
        return settings.UPLOAD_SLOTS_PER_USER
    from workers.health import redis_client, workers_by_queue

    # Unreadable heartbeats (Redis down) give no workers: one turn each.
    by_queue, _error = workers_by_queue(redis_client())
    return max(1, len(by_queue.get(Queue.STT.value, [])))


def _uploads_of(owner_id: int | None):
    owner = Q(owner__isnull=True) if owner_id is None else Q(owner_id=owner_id)
    return Transcript.objects.filter(owner, source=Transcript.Source.UPLOAD)


def dispatch(owner_id: int | None) -> int:
    """Send the person's oldest waiting uploads to the broker, as many as their free slots;
    returns how many. The tasks are sent when the caller's transaction commits."""
    limit = slots()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # One dispatcher per person at a time: two files ending together must not both
            # take the last free slot.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_BASE + (owner_id or 0)])
        mine = _uploads_of(owner_id)
        busy = mine.filter(status__in=IN_FLIGHT, dispatched_at__isnull=False).count()
        free = limit - busy
        if free <= 0:
            return 0
        waiting = list(
            mine.filter(status=Transcript.Status.QUEUED, dispatched_at__isnull=True)
            .order_by("created_at", "pk")
            .values_list("pk", "task_id")[:free]
        )
        if not waiting:
            return 0
        Transcript.objects.filter(pk__in=[pk for pk, _ in waiting]).update(
            dispatched_at=timezone.now()
        )
        for pk, task_id in waiting:
            transaction.on_commit(lambda pk=str(pk), task_id=task_id: _send(pk, task_id))
    return len(waiting)


def _send(pk: str, task_id: str) -> None:
    from transcription.tasks import transcribe

    try:
        transcribe.apply_async(args=[pk], task_id=task_id)
    except (BrokerError, redis.RedisError) as exc:
        # The upload is stored; it waits for the broker instead of failing the request.
        # Undispatched again, the stt workers' sweep sends it once Redis is back.
        log.warning("could not queue transcript %s (%s); it waits for the sweep", pk, exc)
        Transcript.objects.filter(pk=pk, status=Transcript.Status.QUEUED).update(dispatched_at=None)


def dispatch_after(transcript_id) -> None:
    """A transcript's task ended (or it was deleted): its owner's next upload may go."""
    owner = Transcript.objects.filter(pk=transcript_id).values_list("owner_id", flat=True)
    for owner_id in owner:
        dispatch(owner_id)


def dispatch_waiting() -> int:
    """Dispatch for everyone with waiting uploads: a safety net run by every stt worker's
    sweep, for slots freed without a task ending (a transcript deleted while queued)."""
    owners = (
        Transcript.objects.filter(
            source=Transcript.Source.UPLOAD,
            status=Transcript.Status.QUEUED,
            dispatched_at__isnull=True,
        )
        .values_list("owner_id", flat=True)
        .distinct()
    )
    return sum(dispatch(owner_id) for owner_id in list(owners))


def budget_wait_s(owner_id: int | None, duration_s: float | None) -> float:
    """0 when ``duration_s`` more of audio fits the person's hourly budget, else the seconds
    until enough of what they uploaded has left the hour's window."""
    limit = settings.UPLOAD_AUDIO_PER_HOUR_S
    if not limit or owner_id is None:
        return 0.0
    now = timezone.now()
    recent = list(
        _uploads_of(owner_id)
        .filter(created_at__gte=now - WINDOW)
        .order_by("created_at")
        .values_list("created_at", "duration")
    )
    need = duration_s or 0.0
    used = sum(d or 0.0 for _, d in recent)
    if used + need <= limit:
        return 0.0
    for created_at, duration in recent:
        used -= duration or 0.0
        if used + need <= limit:
            return max(1.0, math.ceil((created_at + WINDOW - now).total_seconds()))
    return WINDOW.total_seconds()
