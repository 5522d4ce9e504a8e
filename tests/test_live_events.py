"""The live session's bookkeeping in Redis (transcription/live_events.py), on the real Redis."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from transcription.live import store as live_events


@pytest.fixture
def session():
    name = f"test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"live:{name}:*"):
        client.delete(key)


def test_a_final_makes_its_own_partials_stale_but_not_the_next_utterances(session):
    live_events.mark_latest_partial(session, "3:2")
    assert live_events.supersede_partials(session, 3)
    assert live_events.latest_partial(session) == "final:3"
    # The consumer has moved on to utterance 4 (another queue serves its partials) by the
    # time a worker reaches final 3, or confirms an early final 3: utterance 4's stays.
    for newer in ("4:1", "early:4", "final:4"):
        live_events.mark_latest_partial(session, newer)
        assert not live_events.supersede_partials(session, 3)
        assert live_events.latest_partial(session) == newer
    live_events.mark_latest_partial(session, "early:5")
    assert live_events.supersede_partials(session, 5)
    assert live_events.latest_partial(session) == "final:5"


def test_supersede_works_on_a_session_without_a_token(session):
    assert live_events.supersede_partials(session, 0)
    assert live_events.latest_partial(session) == "final:0"


def test_an_early_decision_is_taken_once(session):
    key = live_events.early_key(session, 2, 4.5)
    assert live_events.early_decision(key) is None
    assert live_events.settle_early(key, live_events.VOID) == live_events.VOID
    # Whoever comes second gets the decision that stands.
    assert live_events.settle_early(key, live_events.FINAL) == live_events.VOID
    assert live_events.early_decision(key) == live_events.VOID
    assert live_events.await_early(key, 0.1) == live_events.VOID


def test_partials_go_to_the_stt_workers_while_no_partial_worker_runs(settings):
    from django.core.cache import cache

    from transcription.live.consumer import partial_queue
    from workers.heartbeat import KEY_PREFIX, online_workers, publish

    client = redis.Redis.from_url(settings.REDIS_URL)
    assert not [w for w in online_workers(client) if "stt_partial" in w["queues"]]
    assert partial_queue() == "stt"  # rather than a queue nobody reads
    record = {"hostname": f"stt-partial-{uuid.uuid4().hex[:6]}@test", "queues": ["stt_partial"]}
    publish(client, record, ttl_s=30)
    try:
        assert partial_queue() == "stt"  # the answer is kept for a few seconds
        cache.delete("live:partial-queue")
        assert partial_queue() == "stt_partial"
        settings.LIVE_PARTIAL_QUEUE = "stt"
        assert partial_queue() == "stt"
    finally:
        client.delete(KEY_PREFIX + record["hostname"])


def test_one_connection_holds_a_session_and_only_it_lets_go(session):
    assert live_events.session_owner(session) is None
    assert live_events.release_session(session, "chan-a")  # nobody held it: fine
    live_events.claim_session(session, "chan-a")
    assert live_events.session_owner(session) == "chan-a"
    # A connection that was taken over must not free the session for the one that took it.
    live_events.claim_session(session, "chan-b")
    assert not live_events.release_session(session, "chan-a")
    assert live_events.session_owner(session) == "chan-b"
    assert live_events.release_session(session, "chan-b")
    assert live_events.session_owner(session) is None


@pytest.mark.django_db
def test_finish_live_leaves_a_session_someone_resumed_running():
    from transcription.live.worker import finish_live
    from transcription.models import Transcript

    transcript = Transcript.objects.create(
        source=Transcript.Source.LIVE, status=Transcript.Status.RUNNING
    )
    pk = str(transcript.pk)
    try:
        live_events.claim_session(pk, "chan-new")  # a resume claimed it after the old end
        finish_live(pk, 12.5)
        assert Transcript.objects.get(pk=pk).status == Transcript.Status.RUNNING
        live_events.release_session(pk, "chan-new")  # ... and its own end comes
        finish_live(pk, 20.0)
        done = Transcript.objects.get(pk=pk)
        assert done.status == Transcript.Status.DONE and done.duration == 20.0
    finally:
        live_events.release_session(pk, "chan-new")
