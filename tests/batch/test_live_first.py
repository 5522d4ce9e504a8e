"""Live work before queued uploads (issue 12, item 4): a 10 s live clip got its final 33 s
after streaming began, behind uploads queued on the same ``stt`` queue. Finals and the end of
a session now go to ``stt_live``, which every stt worker polls first.

In a module of its own, so that no other stt worker (a module-scoped fixture elsewhere) can
take the jobs.
"""

from __future__ import annotations

import time

import pytest

from tests.batch.test_batch import upload, wait_done
from tests.celery_workers import running_worker, worker_heartbeats
from transcription.models import Transcript
from transcription.tasks import finish_live

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_live_work_goes_before_uploads_queued_earlier(owner_client, owner, eval_clip):
    assert not worker_heartbeats("stt"), "another stt worker could take the jobs"
    clips = ["ko_zeroth_104_003_0019", "ko_zeroth_104_003_0193", "ko_zeroth_104_003_0253"]
    # Queued while no worker runs: three uploads, then a live session's end.
    urls = [upload(owner_client, eval_clip(clip)[0]).json()["url"] for clip in clips]
    live = Transcript.objects.create(
        owner=owner, source=Transcript.Source.LIVE, status=Transcript.Status.RUNNING
    )
    finish_live.apply_async(args=[str(live.pk), 12.0])
    with running_worker("stt"):
        done = [wait_done(owner_client, url, timeout=240) for url in urls]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            live.refresh_from_db()
            if live.status == Transcript.Status.DONE:
                break
            time.sleep(0.2)
    assert [d["status"] for d in done] == ["done"] * 3, done
    assert live.status == Transcript.Status.DONE
    uploads = Transcript.objects.filter(source=Transcript.Source.UPLOAD)
    assert live.finished_at < min(t.started_at for t in uploads)
