"""The live session's bookkeeping in Redis (transcription/live/store.py), on the real Redis."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from transcription.live import store
from transcription.live.store import Decision, Request, StreamState


@pytest.fixture
def session():
    name = f"test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"live:{name}:*"):
        client.delete(key)


def test_a_final_makes_its_own_partials_stale_but_not_the_next_utterances(session):
    store.mark_request(session, Request("partial", 3, 2))
    assert store.supersede_partials(session, 3)
    assert store.latest_request(session) == Request("final", 3)
    # The consumer has moved on to utterance 4 (another queue serves its partials) by the
    # time a worker reaches final 3, or confirms an early final 3: utterance 4's stays.
    for newer in (Request("partial", 4, 1), Request("early", 4), Request("final", 4)):
        store.mark_request(session, newer)
        assert not store.supersede_partials(session, 3)
        assert store.latest_request(session) == newer
    store.mark_request(session, Request("early", 5))
    assert store.supersede_partials(session, 5)
    assert store.latest_request(session) == Request("final", 5)
    # Utterance 10 is later than 9 (numbers, not text, are compared).
    store.mark_request(session, Request("partial", 10, 1))
    assert not store.supersede_partials(session, 9)


def test_supersede_works_on_a_session_without_a_request(session):
    assert store.latest_request(session) is None
    assert store.supersede_partials(session, 0)
    assert store.latest_request(session) == Request("final", 0)


def test_the_saved_state_comes_back_typed(session):
    assert store.load_state(session) == StreamState(0.0, 0)
    store.save_state(session, StreamState(12.5, 4))
    assert store.load_state(session) == StreamState(12.5, 4)


def test_one_pooled_client_per_process():
    assert store.client().connection_pool is store.client().connection_pool


def test_an_early_decision_is_taken_once(session):
    key = store.early_key(session, 2, 4.5)
    assert store.early_decision(key) is None
    assert store.settle_early(key, Decision.VOID) == Decision.VOID
    # Whoever comes second gets the decision that stands.
    assert store.settle_early(key, Decision.FINAL) == Decision.VOID
    assert store.early_decision(key) == Decision.VOID
    assert store.await_early(key, 0.1) == Decision.VOID


def test_a_worker_tired_of_waiting_abandons_the_early_final(session):
    key = store.early_key(session, 3, 7.0)
    assert store.await_early(key, 0.1) == Decision.ABANDONED
    # The consumer comes too late: the utterance has to be sent again.
    assert store.settle_early(key, Decision.FINAL) == Decision.ABANDONED


def test_partials_go_to_the_stt_workers_while_no_partial_worker_runs(settings):
    from django.core.cache import cache

    from transcription.live.dispatch import partial_queue
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
    assert store.session_owner(session) is None
    assert store.release_session(session, "chan-a")  # nobody held it: fine
    store.claim_session(session, "chan-a")
    assert store.session_owner(session) == "chan-a"
    # A connection that was taken over must not free the session for the one that took it.
    store.claim_session(session, "chan-b")
    assert not store.release_session(session, "chan-a")
    assert store.session_owner(session) == "chan-b"
    assert store.release_session(session, "chan-b")
    assert store.session_owner(session) is None


@pytest.mark.django_db
def test_finish_live_leaves_a_session_someone_resumed_running():
    from transcription.live.worker import finish_live
    from transcription.models import Transcript

    transcript = Transcript.objects.create(
        source=Transcript.Source.LIVE, status=Transcript.Status.RUNNING
    )
    pk = str(transcript.pk)
    try:
        store.claim_session(pk, "chan-new")  # a resume claimed it after the old end
        finish_live(pk, 12.5)
        assert Transcript.objects.get(pk=pk).status == Transcript.Status.RUNNING
        store.release_session(pk, "chan-new")  # ... and its own end comes
        finish_live(pk, 20.0)
        done = Transcript.objects.get(pk=pk)
        assert done.status == Transcript.Status.DONE and done.duration == 20.0
    finally:
        store.release_session(pk, "chan-new")


async def test_a_resume_waits_on_the_event_loop_for_the_handover(session):
    import asyncio

    await asyncio.to_thread(store.claim_session, session, "chan-old")
    assert not await store.wait_for_handover(session, "chan-old", 0.2)

    async def hand_over():
        await asyncio.sleep(0.2)
        await asyncio.to_thread(store.release_session, session, "chan-old")

    ticks = 0

    async def loop_stays_free():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.ensure_future(loop_stays_free())
    try:
        releasing = asyncio.ensure_future(hand_over())
        assert await store.wait_for_handover(session, "chan-old", 3.0)
        await releasing
    finally:
        ticker.cancel()
    assert ticks >= 10  # the loop ran other work while waiting
