"""A worker killed in the middle of a file: the task is redelivered and completes once.

In a module of its own, so that the module-scoped stt worker of ``test_batch`` is
gone and the killed worker is the only one that can have the job.
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.audio_files import long_file_with_gaps
from tests.batch.test_batch import upload, wait_done
from tests.celery_workers import log_text, running_worker, worker_heartbeats
from transcription.models import Transcript

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_file_is_redelivered_without_duplicates(
    owner_client, tmp_path, eval_clip
):
    # No other stt worker runs in this module (the shared fixture is torn down with the
    # module that used it), so the job can only be this worker's.
    assert not worker_heartbeats("stt"), "another stt worker could take the job"
    clips = [
        eval_clip(i)[0]
        for i in (
            "ko_zeroth_104_003_0019",
            "ko_zeroth_104_003_0193",
            "ko_zeroth_104_003_0253",
            "ko_zeroth_104_003_0280",
            "ko_zeroth_104_003_0294",
        )
    ] * 2
    path, spans = long_file_with_gaps(tmp_path / "long.wav", clips, gap_s=2.0)
    # Batches of one utterance, so the first rows land long before the file is done.
    single = {"STT_BATCH_SIZE": "1", "STT_PACK_WINDOW_S": "0"}
    with running_worker("stt", extra_env=single) as worker:
        body = upload(owner_client, path).json()
        wait_done(owner_client, body["url"], until=("running",))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            row = Transcript.objects.get(pk=body["id"])
            if row.segments.exists():
                break
            time.sleep(0.2)
        assert row.status == "running" and row.progress < 1.0
        before = row.segments.count()
        assert row.task_id in log_text(worker.log), "the job ran somewhere else"
        # Kill the pool process that runs the task, as an OOM kill or a crash would.
        children = psutil.Process(worker.pid).children(recursive=True)
        assert children
        for child in children:
            os.kill(child.pid, signal.SIGKILL)
        done = wait_done(owner_client, body["url"], timeout=300)
    assert done["status"] == "done", done
    segments = done["segments"]
    assert len(segments) > before
    assert [s["index"] for s in segments] == list(range(len(segments)))
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), "duplicated segments"
    covered = [
        span for span in spans if any(span[0] - 0.5 <= s["start"] <= span[1] for s in segments)
    ]
    assert len(covered) == len(spans)


def test_a_file_that_kills_its_worker_twice_is_failed_not_retried(
    owner_client, tmp_path, eval_clip
):
    # The memory bomb of issue 12: the task is acknowledged late and redelivered when its
    # worker dies, so a file that kills every worker that opens it came back forever.
    assert not worker_heartbeats("stt"), "another stt worker could take the job"
    clip, _ = eval_clip("ko_zeroth_104_003_0019")
    path, _ = long_file_with_gaps(tmp_path / "long.wav", [clip] * 12, gap_s=2.0)
    single = {"STT_BATCH_SIZE": "1", "STT_PACK_WINDOW_S": "0"}
    with running_worker("stt", extra_env=single) as worker:
        body = upload(owner_client, path).json()
        for attempt in (1, 2):
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                row = Transcript.objects.get(pk=body["id"])
                if row.attempts == attempt and row.status == "running":
                    break
                time.sleep(0.1)
            assert (row.attempts, row.status) == (attempt, "running"), worker.log
            for child in psutil.Process(worker.pid).children(recursive=True):
                os.kill(child.pid, signal.SIGKILL)
        done = wait_done(owner_client, body["url"], timeout=120)
        row = Transcript.objects.get(pk=body["id"])
    assert done["status"] == "failed", done
    assert done["error_code"] == "worker_lost"
    assert "not tried again" in done["error"]
    assert row.attempts == 2
