"""Sharing the workers between people (issue 12, fair share): one person's folder of files
waits its turns instead of holding everybody else's single file.

In a module of its own, so that no other stt worker (a module-scoped fixture elsewhere) can
take the jobs.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.batch.test_batch import upload, wait_done
from tests.celery_workers import running_worker, worker_heartbeats
from tests.factories import make_user
from transcription.batch import turns
from transcription.models import Transcript

CLIPS = [
    "ko_zeroth_104_003_0019",
    "ko_zeroth_104_003_0193",
    "ko_zeroth_104_003_0253",
    "ko_zeroth_104_003_0280",
    "ko_zeroth_104_003_0294",
]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def dispatched(user) -> list[bool]:
    rows = Transcript.objects.filter(owner=user).order_by("created_at")
    return [row.dispatched_at is not None for row in rows]


@pytest.mark.django_db
def test_a_folder_waits_for_its_turns(settings, eval_clip):
    settings.UPLOAD_SLOTS_PER_USER = 2
    alice, bob = make_user("alice"), make_user("bob")
    for clip in CLIPS:
        assert upload(signed_in(alice), eval_clip(clip)[0]).status_code == 202
    # Two at the workers, the rest waiting in the database, all of them accepted.
    assert dispatched(alice) == [True, True, False, False, False]
    # Someone else's file goes at once.
    assert upload(signed_in(bob), eval_clip(CLIPS[0])[0]).status_code == 202
    assert dispatched(bob) == [True]
    # A file that ends frees its turn for the owner's next.
    first = Transcript.objects.filter(owner=alice).order_by("created_at").first()
    Transcript.objects.filter(pk=first.pk).update(status=Transcript.Status.DONE)
    turns.dispatch_after(first.pk)
    assert dispatched(alice) == [True, True, True, False, False]
    # So does deleting one through the API.
    second = Transcript.objects.filter(owner=alice).order_by("created_at")[1]
    assert signed_in(alice).delete(f"/api/transcripts/{second.pk}/").status_code == 204
    assert dispatched(alice) == [True, True, True, False]
    # And the workers' sweep catches a turn freed any other way.
    third = Transcript.objects.filter(owner=alice).order_by("created_at")[1]
    Transcript.objects.filter(pk=third.pk).update(status=Transcript.Status.FAILED)
    assert turns.dispatch_waiting() == 1
    assert dispatched(alice) == [True, True, True, True]
    assert turns.dispatch_waiting() == 0


@pytest.mark.django_db
def test_turns_default_to_one_per_stt_worker_online(settings):
    settings.UPLOAD_SLOTS_PER_USER = 0
    assert turns.slots() == max(1, len(worker_heartbeats("stt")))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_persons_folder_does_not_hold_anothers_file(settings, eval_clip):
    assert not worker_heartbeats("stt"), "another stt worker could take the jobs"
    settings.UPLOAD_SLOTS_PER_USER = 1
    alice, bob = make_user("alice"), make_user("bob")
    # Alice drops a folder while no worker runs; then Bob uploads one file.
    folder = [upload(signed_in(alice), eval_clip(clip)[0]).json()["url"] for clip in CLIPS]
    single = upload(signed_in(bob), eval_clip(CLIPS[0])[0]).json()["url"]
    with running_worker("stt", extra_env={"UPLOAD_SLOTS_PER_USER": "1"}):
        done = [wait_done(signed_in(alice), url, timeout=240) for url in folder]
        done.append(wait_done(signed_in(bob), single, timeout=60))
    assert [d["status"] for d in done] == ["done"] * 6, done
    started = sorted(Transcript.objects.all(), key=lambda row: row.started_at)
    # Alice's first file was at the worker before Bob uploaded; Bob's goes next, not sixth.
    assert [row.owner.username for row in started] == ["alice", "bob"] + ["alice"] * 4
