"""A transcript's summary in the API, the exports and the page, the regenerate endpoint and
who may call it, and the plain functions behind the summary task (claimed once, superseded
by a newer request, out of date after an edit). The worker's part is run here by calling
``keywords.services.summarise_transcript``, as the task does, with KEYWORD_BACKEND
``embedded``; tests/keywords/test_summary_e2e.py runs it in real workers."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from keywords import services
from keywords.models import Summary
from tests.factories import english_client, make_transcript
from transcription.models import Segment, Transcript
from transcription.web.payloads import SummarySerializer, TranscriptDetailSerializer

pytestmark = pytest.mark.django_db

MEETING = [
    "다음 주 월요일까지 예산안을 정리해야 합니다",
    "회의에서 신규 서버 구매를 내년으로 미루기로 했습니다",
    "고객사 일정은 이번 달 말로 정해졌고 자료는 김 팀장님이 준비합니다",
]


@pytest.fixture(autouse=True)
def _embedded(settings):
    settings.KEYWORD_BACKEND = "embedded"


def summarised(transcript) -> Summary:
    """Request and write a summary as the upload pipeline and the task do."""
    services.request_summary(transcript)
    summary = services.summarise_transcript(transcript.pk)
    assert summary is not None and summary.status == Summary.Status.DONE
    return summary


def test_the_detail_has_the_summary_in_its_schema_shape(cast):
    transcript = make_transcript(cast.owner, texts=MEETING)
    owner = english_client(cast.owner)
    body = owner.get(f"/api/transcripts/{transcript.pk}/").json()
    assert set(body) == set(TranscriptDetailSerializer().fields)
    assert body["summary"] is None  # none requested yet
    summarised(transcript)
    body = owner.get(f"/api/transcripts/{transcript.pk}/").json()
    summary = body["summary"]
    assert set(summary) == set(SummarySerializer().fields)
    assert summary["status"] == "done" and summary["backend"] == "embedded"
    assert summary["stale"] is False and summary["language"] == "ko"
    assert summary["decisions"] == [MEETING[1]]
    assert summary["action_items"] == [MEETING[0]]
    # Sentences of the transcript, in spoken order.
    assert summary["text"].startswith(MEETING[0])


def test_regenerate_queues_a_new_summary_and_answers_202(cast, django_capture_on_commit_callbacks):
    transcript = make_transcript(cast.owner, texts=MEETING)
    summarised(transcript)
    owner = english_client(cast.owner)
    with django_capture_on_commit_callbacks() as queued:
        response = owner.post(f"/api/transcripts/{transcript.pk}/summary")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    assert len(queued) == 1  # the task, sent once the request's transaction commits
    # While pending, the previous summary is still shown.
    assert response.json()["text"]
    assert services.summarise_transcript(transcript.pk).status == "done"
    # A redelivered task finds nothing to do.
    assert services.summarise_transcript(transcript.pk) is None


def test_regenerate_is_refused_while_the_transcript_is_not_done(cast):
    transcript = make_transcript(cast.owner, texts=MEETING)
    Transcript.objects.filter(pk=transcript.pk).update(status=Transcript.Status.RUNNING)
    response = english_client(cast.owner).post(f"/api/transcripts/{transcript.pk}/summary")
    assert response.status_code == 409
    assert "not finished" in response.json()["error"]
    assert not Summary.objects.filter(transcript=transcript).exists()


def test_only_the_owner_and_staff_may_regenerate(cast, django_capture_on_commit_callbacks):
    transcript = make_transcript(cast.owner, texts=MEETING)
    others = make_transcript(cast.other, texts=["남의 회의 내용을 정리해야 합니다"])
    url = f"/api/transcripts/{transcript.pk}/summary"
    with django_capture_on_commit_callbacks() as queued:
        assert english_client(cast.other).post(url).status_code == 404
        assert (
            english_client(cast.owner).post(f"/api/transcripts/{others.pk}/summary").status_code
            == 404
        )
    assert queued == [] and not Summary.objects.exists()
    anonymous = Client().post(url)
    assert anonymous.status_code in (401, 403)
    assert english_client(cast.staff).post(url).status_code == 202
    # A summary of someone else's transcript is not in another user's view of anything.
    summarised(transcript)
    assert english_client(cast.other).get(f"/api/transcripts/{transcript.pk}/").status_code == 404
    assert english_client(cast.other).get(f"/transcripts/{transcript.pk}/").status_code == 404


def test_regenerate_with_a_token_needs_no_csrf(cast):
    from rest_framework.authtoken.models import Token

    transcript = make_transcript(cast.owner, texts=MEETING)
    token = Token.objects.create(user=cast.owner)
    response = Client(enforce_csrf_checks=True).post(
        f"/api/transcripts/{transcript.pk}/summary", HTTP_AUTHORIZATION=f"Bearer {token.key}"
    )
    assert response.status_code == 202


def test_an_edited_transcript_says_its_summary_is_out_of_date(cast):
    transcript = make_transcript(cast.owner, texts=MEETING)
    summarised(transcript)
    segment = Segment.objects.get(transcript=transcript, index=1)
    segment.text = "회의에서 신규 서버 구매를 다음 달로 미루기로 했습니다"
    segment.save(update_fields=["text"])
    owner = english_client(cast.owner)
    assert owner.get(f"/api/transcripts/{transcript.pk}/").json()["summary"]["stale"] is True
    page = owner.get(f"/transcripts/{transcript.pk}/").content.decode()
    assert 'data-stale="true"' in page and "Out of date" in page
    # Regenerated, it summarises the corrected text and is current again.
    summarised(transcript)
    summary = owner.get(f"/api/transcripts/{transcript.pk}/").json()["summary"]
    assert summary["stale"] is False
    assert summary["decisions"] == ["회의에서 신규 서버 구매를 다음 달로 미루기로 했습니다"]


def test_a_newer_request_supersedes_a_run_in_progress(cast):
    transcript = make_transcript(cast.owner, texts=MEETING)
    services.request_summary(transcript)
    # A worker claims it ...
    Summary.objects.filter(transcript=transcript).update(status="running")
    row = Summary.objects.get(transcript=transcript)
    # ... and while it runs someone asks again: the running one's answer must not count.
    services.request_summary(transcript)
    assert Summary.objects.get(transcript=transcript).status == "pending"
    Summary.objects.filter(pk=row.pk, status="running", run_id=row.run_id).update(text="old")
    assert Summary.objects.get(transcript=transcript).text == ""
    assert services.summarise_transcript(transcript.pk).status == "done"


def test_a_run_whose_worker_died_is_taken_over(cast):
    import datetime as dt

    from django.utils import timezone

    transcript = make_transcript(cast.owner, texts=MEETING)
    services.request_summary(transcript)
    long_ago = timezone.now() - dt.timedelta(seconds=services.SUMMARY_STALE_AFTER_S + 5)
    Summary.objects.filter(transcript=transcript).update(status="running", started_at=long_ago)
    assert services.summarise_transcript(transcript.pk).status == "done"
    Summary.objects.filter(transcript=transcript).update(
        status="running", started_at=timezone.now()
    )
    assert services.summarise_transcript(transcript.pk) is None  # still someone's


def test_exports_carry_the_summary(cast):
    transcript = make_transcript(cast.owner, texts=MEETING)
    owner = english_client(cast.owner)
    export = f"/api/transcripts/{transcript.pk}/export"
    assert json.loads(owner.get(export, {"format": "json"}).content)["summary"] is None
    assert owner.get(export, {"format": "txt"}).content.decode() == "\n".join(MEETING) + "\n"
    summary = summarised(transcript)
    document = json.loads(owner.get(export, {"format": "json"}).content)
    assert document["summary"]["text"] == summary.text
    assert document["summary"]["decisions"] == [MEETING[1]]
    txt = owner.get(export, {"format": "txt"}).content.decode()
    head, _, text = txt.partition("-" * 40 + "\n\n")
    # The summary block first (Korean headings for a Korean transcript), then the text as before.
    assert text == "\n".join(MEETING) + "\n"
    assert head.startswith(f"요약\n{summary.text}\n\n할 일\n- {MEETING[0]}\n\n결정 사항\n- ")
    # Subtitles are unchanged.
    assert "요약" not in owner.get(export, {"format": "srt"}).content.decode()


def test_the_page_shows_the_summary_in_english(cast):
    transcript = make_transcript(cast.owner, texts=MEETING)
    owner = english_client(cast.owner)
    page = owner.get(f"/transcripts/{transcript.pk}/").content.decode()
    assert 'id="summary"' in page and "No summary yet." in page
    summary = summarised(transcript)
    page = owner.get(f"/transcripts/{transcript.pk}/").content.decode()
    assert 'data-backend="embedded"' in page and 'data-status="done"' in page
    assert "The most central sentences, picked without an LLM" in page
    assert f'<p id="summary-text">{summary.text}</p>' in page
    assert f"<li>{MEETING[1]}</li>" in page
    assert "/static/js/summary.js" in page


def test_a_running_transcript_has_no_summary_card(cast):
    transcript = make_transcript(cast.owner, texts=MEETING)
    Transcript.objects.filter(pk=transcript.pk).update(status=Transcript.Status.RUNNING)
    page = english_client(cast.owner).get(f"/transcripts/{transcript.pk}/").content.decode()
    assert 'id="summary"' not in page


def test_the_schema_documents_the_endpoint(cast):
    import yaml

    schema = yaml.safe_load(english_client(cast.owner).get("/api/schema/").content)
    operation = schema["paths"]["/api/transcripts/{id}/summary"]["post"]
    assert set(operation["responses"]) == {"202", "404", "409"}


def test_a_just_finished_page_waits_for_its_summary(cast):
    """Its summary is requested after the keywords: a page loaded before then follows the
    transcript's events for it (static/js/summary.js), an old transcript's page does not."""
    import datetime as dt

    from django.utils import timezone

    transcript = make_transcript(cast.owner, texts=MEETING)
    owner = english_client(cast.owner)
    url = f"/transcripts/{transcript.pk}/"
    Transcript.objects.filter(pk=transcript.pk).update(finished_at=timezone.now())
    assert 'data-expected="true"' in owner.get(url).content.decode()
    long_ago = timezone.now() - dt.timedelta(hours=1)
    Transcript.objects.filter(pk=transcript.pk).update(finished_at=long_ago)
    assert 'data-expected="false"' in owner.get(url).content.decode()
    Transcript.objects.filter(pk=transcript.pk).update(finished_at=timezone.now())
    summarised(transcript)
    assert 'data-expected="false"' in owner.get(url).content.decode()
