"""When a summary is requested without anyone asking: an upload's keywords task (as the batch
pipeline sends it) and the end of a live session. The task itself is not run here (the
callbacks are captured, not executed); tests/keywords/test_summary_e2e.py runs it in real
workers."""

from __future__ import annotations

import pytest

from keywords.models import Summary
from keywords.tasks import extract_transcript_keywords
from tests.factories import make_transcript
from transcription.live.worker import finish_live
from transcription.models import Transcript

pytestmark = pytest.mark.django_db

TEXTS = ["다음 주까지 예산안을 정리해야 합니다", "신규 서버 구매는 미루기로 했습니다"]


@pytest.fixture(autouse=True)
def _embedded(settings):
    settings.KEYWORD_BACKEND = "embedded"


def test_an_uploads_keywords_task_requests_its_summary(cast, django_capture_on_commit_callbacks):
    transcript = make_transcript(cast.owner, texts=TEXTS)
    with django_capture_on_commit_callbacks() as queued:
        assert extract_transcript_keywords.run(str(transcript.pk), summarise=True) > 0
    assert Summary.objects.get(transcript=transcript).status == Summary.Status.PENDING
    assert len(queued) == 1


def test_re_extracting_keywords_alone_leaves_the_summary_be(
    cast, django_capture_on_commit_callbacks
):
    transcript = make_transcript(cast.owner, texts=TEXTS)
    with django_capture_on_commit_callbacks() as queued:
        extract_transcript_keywords.run(str(transcript.pk))  # the admin's action
    assert queued == [] and not Summary.objects.exists()


def test_a_live_session_requests_its_summary_when_it_finishes(
    cast, django_capture_on_commit_callbacks
):
    session = make_transcript(cast.owner, texts=TEXTS, source=Transcript.Source.LIVE)
    Transcript.objects.filter(pk=session.pk).update(status=Transcript.Status.RUNNING)
    with django_capture_on_commit_callbacks() as queued:
        finish_live(str(session.pk), 4.0)
    assert Transcript.objects.get(pk=session.pk).status == Transcript.Status.DONE
    assert Summary.objects.get(transcript=session).status == Summary.Status.PENDING
    assert len(queued) == 1


def test_a_silent_live_session_gets_no_summary(cast, django_capture_on_commit_callbacks):
    session = make_transcript(cast.owner, texts=[], source=Transcript.Source.LIVE)
    Transcript.objects.filter(pk=session.pk).update(status=Transcript.Status.RUNNING)
    with django_capture_on_commit_callbacks() as queued:
        finish_live(str(session.pk), 4.0)
    assert queued == [] and not Summary.objects.exists()
