"""Admin actions, run by real workers: re-transcribe an upload or a recorded live session,
re-run keyword extraction."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from bench.cer import cer
from keywords.models import Backend, Category, Keyword
from tests.factories import make_keyword, make_transcript
from tests.polling import wait_for
from transcription.live.recording import LiveRecording, recording_name
from transcription.models import Transcript
from transcription.speech.audio import decode_audio

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHANGELIST = "/admin/transcription/transcript/"


@pytest.fixture
def staff_client(client, cast):
    client.force_login(cast.staff)
    # The admin's messages are checked in English; it follows the reader's language.
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def run_action(client, action: str, *transcripts) -> list[str]:
    response = client.post(
        CHANGELIST,
        {
            "action": action,
            "_selected_action": [str(t.pk) for t in transcripts],
            "index": "0",
            "select_across": "0",
        },
        follow=True,
    )
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def upload_and_wait(client, path) -> Transcript:
    with open(path, "rb") as handle:
        response = client.post("/api/transcripts/", {"file": handle, "language": "ko"})
    assert response.status_code == 202, response.content
    pk = response.json()["id"]
    return wait_for(
        lambda: Transcript.objects.filter(pk=pk, status=Transcript.Status.DONE).first(),
        what="transcript done",
    )


def test_actions_are_offered(staff_client, cast):
    make_transcript(cast.owner)  # the admin offers actions only over a non-empty list
    page = staff_client.get(CHANGELIST).content.decode()
    assert "Re-run keyword extraction" in page
    assert "Re-transcribe" in page


def test_retranscribe_recreates_segments_without_duplicates(
    cast, stt_worker, eval_clip, staff_client
):
    owner_client = Client()
    owner_client.force_login(cast.owner)
    path, _ = eval_clip("ko_zeroth_104_003_0294")
    transcript = upload_and_wait(owner_client, path)
    before = list(transcript.segments.order_by("index").values_list("index", "text"))
    assert before
    first_task = transcript.task_id
    # Something to be thrown away with the old result.
    stale = make_keyword(transcript, "낡은키워드", Category.OTHER)
    live = make_transcript(cast.owner, title="live-session", source=Transcript.Source.LIVE)

    messages = run_action(staff_client, "retranscribe", transcript, live)
    assert "Queued re-transcription of 1 transcript(s)." in messages
    assert any(
        "Skipped 1 transcript(s) without stored audio" in m and "live-session" in m
        for m in messages
    ), messages
    assert not Keyword.objects.filter(pk=stale.pk).exists()

    row = Transcript.objects.get(pk=transcript.pk)
    assert row.task_id and row.task_id != first_task
    done = wait_for(
        lambda: Transcript.objects.filter(
            pk=transcript.pk, status=Transcript.Status.DONE, task_id=row.task_id
        ).first(),
        what="re-transcription done",
    )
    after = list(done.segments.order_by("index").values_list("index", "text"))
    assert after == before
    assert [index for index, _ in after] == list(range(len(after)))
    assert done.progress == 1.0 and done.error == ""
    # The live transcript was left as it was.
    assert Transcript.objects.get(pk=live.pk).segments.count() == 1


def test_retranscribe_runs_a_recorded_live_session_through_the_batch_pipeline(
    cast, stt_worker, eval_clip, staff_client
):
    from django.core.files.storage import default_storage
    from django.utils import timezone

    path, entry = eval_clip("ko_zeroth_104_003_0294")
    live = make_transcript(
        cast.owner, texts=["잘못 들은 실시간 결과"], title="recorded", source=Transcript.Source.LIVE
    )
    name = recording_name(str(live.pk), timezone.now())
    with LiveRecording(default_storage.path(name)) as recording:
        recording.append(decode_audio(path))
    Transcript.objects.filter(pk=live.pk).update(audio=name)
    try:
        messages = run_action(staff_client, "retranscribe", live)
        assert "Queued re-transcription of 1 transcript(s)." in messages, messages
        row = Transcript.objects.get(pk=live.pk)
        done = wait_for(
            lambda: Transcript.objects.filter(
                pk=live.pk, status=Transcript.Status.DONE, task_id=row.task_id
            ).first(),
            what="re-transcription done",
        )
        text = " ".join(done.segments.order_by("index").values_list("text", flat=True))
        assert "잘못 들은" not in text
        assert cer(entry["reference"], text, numerals=True) < 0.3, text
        assert done.source == Transcript.Source.LIVE
    finally:
        Transcript.objects.filter(pk=live.pk).delete()  # the recording goes with it
    assert not default_storage.exists(name)


def test_retranscribe_skips_a_running_transcript(staff_client, cast):
    transcript = Transcript.objects.create(
        owner=cast.owner,
        source=Transcript.Source.UPLOAD,
        status=Transcript.Status.RUNNING,
        audio="audio/busy.wav",
        title="busy",
        task_id="t-1",
    )
    messages = run_action(staff_client, "retranscribe", transcript)
    assert any("still being transcribed" in m for m in messages), messages
    assert Transcript.objects.get(pk=transcript.pk).task_id == "t-1"


def test_retranscribe_keeps_a_transcript_people_corrected(staff_client, cast):
    transcript = make_transcript(
        cast.owner, texts=("첫 문장", "둘째 문장"), audio="audio/kept.wav", task_id="t-0"
    )
    corrected = transcript.segments.get(index=1)
    corrected.original_text, corrected.text = corrected.text, "고친 둘째 문장"
    corrected.edited_at, corrected.version = timezone.now(), 1
    corrected.save()

    messages = run_action(staff_client, "retranscribe", transcript)
    assert any("corrected" in m and "discarding" in m for m in messages), messages
    transcript.refresh_from_db()
    assert (transcript.status, transcript.task_id) == (Transcript.Status.DONE, "t-0")
    assert transcript.segments.get(index=1).text == "고친 둘째 문장"

    # Saying so replaces them: the segments go and a new task owns the transcript (a worker
    # of this module's may already be on it, so its status is not checked here).
    messages = run_action(staff_client, "retranscribe_discarding_corrections", transcript)
    assert any("Queued re-transcription of 1" in m for m in messages), messages
    transcript.refresh_from_db()
    assert transcript.task_id != "t-0"
    assert not transcript.segments.filter(text="고친 둘째 문장").exists()


def test_rerun_keywords_replaces_them_with_a_real_worker(staff_client, cast, keyword_worker):
    transcript = make_transcript(
        cast.owner,
        texts=["삼성전자가 서울에 새 공장을 짓는다", "홍익대 교수가 자문단장으로 위촉되었다"],
        title="news",
    )
    stale = make_keyword(transcript, "낡은키워드", Category.OTHER)
    queued = make_transcript(cast.owner, title="not-yet")
    Transcript.objects.filter(pk=queued.pk).update(status=Transcript.Status.QUEUED)

    messages = run_action(staff_client, "rerun_keywords", transcript, queued)
    assert "Queued keyword extraction for 1 transcript(s)." in messages
    assert any("Skipped 1 transcript(s) that are not done" in m for m in messages), messages

    words = wait_for(
        lambda: set(
            Keyword.objects.filter(transcript=transcript, backend=Backend.EMBEDDED)
            .exclude(pk=stale.pk)
            .values_list("word", flat=True)
        ),
        timeout=60,
        what="keywords",
    )
    assert {"삼성전자", "서울", "홍익대"} & words, words
    wait_for(
        lambda: not Keyword.objects.filter(pk=stale.pk).exists(), timeout=10, what="stale gone"
    )
    assert not Keyword.objects.filter(transcript=queued).exists()
