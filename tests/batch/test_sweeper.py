"""Ending what no worker or connection will finish: stuck uploads fail, orphaned live
sessions end done, and a long live session is never taken for a stuck upload."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from transcription.batch.sweeper import sweep_orphans
from transcription.live import store
from transcription.live.records import end_orphaned_sessions
from transcription.models import Segment, Transcript

pytestmark = pytest.mark.django_db


def running(source: str, hours_ago: float) -> Transcript:
    transcript = Transcript.objects.create(
        source=source, status=Transcript.Status.RUNNING, title=f"{source} {hours_ago} h"
    )
    started = timezone.now() - dt.timedelta(hours=hours_ago)
    Transcript.objects.filter(pk=transcript.pk).update(started_at=started)
    return transcript


def status(transcript: Transcript) -> str:
    transcript.refresh_from_db()
    return transcript.status


def test_stuck_uploads_fail_and_fresh_ones_run_on(settings):
    settings.STT_TASK_TIME_LIMIT_S = 60
    stuck = running(Transcript.Source.UPLOAD, 1)
    fresh = running(Transcript.Source.UPLOAD, 0)
    assert sweep_orphans() == 1
    assert status(stuck) == "failed" and "no worker finished it" in stuck.error
    assert stuck.error_code == Transcript.ErrorCode.WORKER_LOST
    assert status(fresh) == "running"


def test_a_long_live_session_is_not_a_stuck_upload(settings):
    settings.STT_TASK_TIME_LIMIT_S = 60
    talking = running(Transcript.Source.LIVE, 4)
    store.claim_session(str(talking.pk), "chan-talking")
    try:
        assert sweep_orphans() == 0
        assert end_orphaned_sessions() == 0
        assert status(talking) == "running" and not talking.error
    finally:
        store.release_session(str(talking.pk), "chan-talking")


def test_an_orphaned_live_session_ends_done_with_what_was_said():
    orphan = running(Transcript.Source.LIVE, 2)
    Segment.objects.create(transcript=orphan, index=0, start=0.5, end=3.25, text="첫 문장")
    Segment.objects.create(transcript=orphan, index=1, start=4.0, end=7.5, text="둘째 문장")
    # A session started lately may still be held by a process that is about to renew it.
    recent = running(Transcript.Source.LIVE, 0.1)
    # One whose stream ended cleanly a moment ago waits for its queued finish_live.
    ended = running(Transcript.Source.LIVE, 3)
    store.save_state(str(ended.pk), store.StreamState(42.0, 9))
    assert end_orphaned_sessions() == 1
    assert status(orphan) == "done"
    assert orphan.duration == 7.5 and orphan.progress == 1.0 and not orphan.error
    assert orphan.segments.count() == 2
    assert status(recent) == "running" and status(ended) == "running"


def test_finish_live_after_the_sweep_still_sets_the_true_end():
    from transcription.live.worker import finish_live

    swept = running(Transcript.Source.LIVE, 2)
    Segment.objects.create(transcript=swept, index=0, start=0.5, end=3.0, text="문장")
    assert end_orphaned_sessions() == 1
    finish_live(str(swept.pk), 9.5)  # queued behind other work, it comes after all
    assert status(swept) == "done" and swept.duration == 9.5


def test_a_streaming_connection_keeps_its_hold_on_the_session():
    session, channel = str(uuid.uuid4()), "chan-a"
    store.claim_session(session, channel)
    try:
        client = store.client()
        client.expire(f"live:{session}:owner", 5)
        assert store.keep_session(session, channel)
        assert client.ttl(f"live:{session}:owner") > 60
        # Only the holder renews it.
        assert not store.keep_session(session, "chan-b")
        assert store.session_owner(session) == channel
        # A hold lost while streaming (a Redis that lost its data) is taken back.
        client.delete(f"live:{session}:owner")
        assert store.keep_session(session, channel)
        assert store.session_owner(session) == channel
    finally:
        store.release_session(session, channel)
