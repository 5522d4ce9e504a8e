"""The transcription domain function without Celery: claiming, failures, resuming, the sweeper."""

from __future__ import annotations

import datetime as dt
import io
import shutil

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from transcription.batch.pipeline import MAX_ATTEMPTS, claim, transcribe_transcript
from transcription.batch.sweeper import sweep_orphans
from transcription.models import Segment, Transcript

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def make(path=None, content: bytes | None = None, **fields) -> Transcript:
    transcript = Transcript.objects.create(source=Transcript.Source.UPLOAD, language="ko", **fields)
    if path is not None:
        transcript.audio.save(path.name, ContentFile(path.read_bytes()))
    elif content is not None:
        transcript.audio.save("upload.wav", ContentFile(content))
    return transcript


def test_a_job_is_claimed_once(eval_clip):
    transcript = make(eval_clip("ko_picovoice_leopard_test_ko")[0])
    assert claim(transcript.pk, "task-a") is True
    assert claim(transcript.pk, "task-b") is False  # someone else has it
    assert claim(transcript.pk, "task-a") is True  # a redelivery of the same task takes it back
    assert transcribe_transcript(transcript.pk, task_id="task-b") is None


def test_audio_that_cannot_be_decoded_fails_with_a_readable_error():
    transcript = make(content=b"RIFF....WAVEfmt " + b"\x00" * 64)
    result = transcribe_transcript(transcript.pk)
    assert result.status == Transcript.Status.FAILED
    assert result.error and "Traceback" not in result.error
    transcript.refresh_from_db()
    assert transcript.status == "failed" and transcript.finished_at is not None


def test_missing_stored_file_fails_instead_of_hanging(eval_clip):
    transcript = make(eval_clip("ko_picovoice_leopard_test_ko")[0])
    transcript.audio.storage.delete(transcript.audio.name)
    result = transcribe_transcript(transcript.pk)
    assert result.status == "failed"
    # What to do, not the operating system's words with the server's path (issue 15).
    assert result.error == "the stored audio could not be read; upload the recording again"
    assert result.error_code == Transcript.ErrorCode.NO_AUDIO


def test_a_retry_resumes_after_what_was_stored(eval_clip, tmp_path):
    from tests.audio_files import long_file_with_gaps

    clips = [eval_clip(i)[0] for i in ("ko_zeroth_104_003_0294", "ko_picovoice_leopard_test_ko")]
    path, spans = long_file_with_gaps(tmp_path / "two.wav", clips, gap_s=3.0)
    transcript = make(path)
    # As if a first attempt stored the first utterance and died.
    Segment.objects.create(
        transcript=transcript, index=0, start=spans[0][0], end=spans[0][1], text="이미 저장된 문장"
    )
    Transcript.objects.filter(pk=transcript.pk).update(
        status="running", task_id="t1", processed_s=spans[0][1] + 0.3
    )
    result = transcribe_transcript(transcript.pk, task_id="t1")
    assert result.status == "done"
    segments = list(result.segments.order_by("index"))
    assert segments[0].text == "이미 저장된 문장"  # kept, not redone
    assert len(segments) >= 2
    assert all(s.start > spans[0][1] for s in segments[1:])  # only the rest was transcribed


def test_sweeper_fails_transcripts_stuck_in_running(settings):
    settings.STT_TASK_TIME_LIMIT_S = 60
    stuck = make(status="running")
    Transcript.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - dt.timedelta(hours=1))
    fresh = make(status="running")
    Transcript.objects.filter(pk=fresh.pk).update(started_at=timezone.now())
    assert sweep_orphans() == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == "failed" and "no worker finished it" in stuck.error
    assert fresh.status == "running"


def test_command_line_transcribes_and_stores(eval_clip, tmp_path):
    path, _ = eval_clip("ko_zeroth_104_003_0294")
    bogus = tmp_path / "bogus.mp3"
    bogus.write_bytes(b"not audio at all" * 100)
    out = tmp_path / "out"
    err = io.StringIO()
    with pytest.raises(Exception, match="1 of 2 file"):
        call_command(
            "transcribe", str(path), str(bogus), "--format", "srt", "--output", str(out), stderr=err
        )
    srt = (out / f"{path.stem}.srt").read_text()
    assert "-->" in srt and "커피" in srt
    assert "bogus.mp3" in err.getvalue()
    stored = Transcript.objects.get(title=path.name)
    assert stored.status == "done" and stored.segments.exists()
    assert stored.keywords.exists()
    shutil.rmtree(out)


def test_a_job_started_twice_without_finishing_is_failed_on_the_third_start(media):
    row = Transcript.objects.create(source=Transcript.Source.UPLOAD, language="ko")
    # Each start of the same task (a redelivery after its worker died) counts.
    assert [claim(row.pk, "task-1") for _ in range(MAX_ATTEMPTS)] == [True] * MAX_ATTEMPTS
    assert transcribe_transcript(row.pk, task_id="task-1") is None
    row.refresh_from_db()
    assert (row.status, row.error_code, row.attempts) == ("failed", "worker_lost", MAX_ATTEMPTS)
    assert "not tried again" in row.error and "upload it again" in row.error
    # Another task's delivery does not take a job that is not queued.
    assert claim(row.pk, "task-2") is False
