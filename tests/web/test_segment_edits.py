"""Correcting a segment's text over the API: the version check between two people, the
machine's text kept, refusals that say what to do, and everything that reads the text
afterwards (search, exports, keywords, the transcript API); others' segments are 404."""

from __future__ import annotations

import json
import re

import pysrt
import pytest
import webvtt
from django.test import Client

from keywords.models import Keyword
from keywords.tasks import extract_segment_keywords
from tests.factories import english_client, make_keyword, make_transcript
from transcription.batch.pipeline import _store
from transcription.editing import MAX_TEXT_CHARS
from transcription.models import Segment, Transcript
from transcription.speech.engine import SegmentResult
from transcription.web.editing_api import ConflictSerializer
from transcription.web.payloads import SegmentDetailSerializer, TranscriptDetailSerializer

pytestmark = pytest.mark.django_db

MACHINE = "삼성전자의 새 공장이 평택에 들어섭니다"
CORRECTED = "삼성전자의 새 공장이 용인에 들어섭니다"


@pytest.fixture
def meeting(cast):
    return make_transcript(cast.owner, texts=[MACHINE, "엔비디아 서버 증설"], title="주간 회의")


def first_segment(transcript) -> Segment:
    return transcript.segments.get(index=0)


def patch(client, segment, body):
    return client.patch(f"/api/segments/{segment.pk}/", body, content_type="application/json")


def test_an_edit_keeps_the_machines_text_over_two_edits(cast, meeting):
    owner = english_client(cast.owner)
    segment = first_segment(meeting)
    response = patch(
        owner, segment, {"text": "  삼성전자의 새 공장이\n용인에 들어섭니다 ", "version": 0}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == set(SegmentDetailSerializer().fields)
    # One line, single spaces: what a transcript line and a subtitle hold.
    assert body["text"] == CORRECTED
    assert (body["original_text"], body["edited"], body["version"]) == (MACHINE, True, 1)
    assert body["edited_by"] == "owner" and body["edited_at"]

    again = patch(owner, segment, {"text": "삼성전자 새 공장은 용인", "version": 1}).json()
    assert again["version"] == 2
    assert again["original_text"] == MACHINE  # the machine's, not the first correction
    segment.refresh_from_db()
    assert (segment.text, segment.original_text) == ("삼성전자 새 공장은 용인", MACHINE)

    # An edit that changes nothing changes nothing, not even the version.
    same = patch(owner, segment, {"text": "삼성전자 새 공장은 용인", "version": 2}).json()
    assert same["version"] == 2
    # The untouched segment says so.
    other = english_client(cast.owner).get(f"/api/segments/{meeting.segments.get(index=1).pk}/")
    assert other.json()["original_text"] is None and other.json()["edited"] is False


def test_two_people_editing_the_same_version_the_second_gets_409(cast, meeting):
    segment = first_segment(meeting)
    first, second = english_client(cast.owner), english_client(cast.owner)
    loaded = [c.get(f"/api/segments/{segment.pk}/").json()["version"] for c in (first, second)]
    assert loaded == [0, 0]

    assert patch(first, segment, {"text": CORRECTED, "version": 0}).status_code == 200
    conflict = patch(second, segment, {"text": "삼성전자의 새 공장이 화성에", "version": 0})
    assert conflict.status_code == 409
    body = conflict.json()
    assert set(body) == set(ConflictSerializer().fields)
    assert body["code"] == "version_conflict"
    assert "Someone else corrected this segment" in body["error"]
    # The first one's text, who wrote it and the version to send to keep one's own.
    assert (body["text"], body["version"], body["edited_by"]) == (CORRECTED, 1, "owner")
    segment.refresh_from_db()
    assert segment.text == CORRECTED  # not overwritten

    kept = patch(second, segment, {"text": "삼성전자의 새 공장이 화성에", "version": 1})
    assert kept.status_code == 200 and kept.json()["version"] == 2
    assert kept.json()["original_text"] == MACHINE


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"text": "   ", "version": 0}, "text_empty", "The text is empty"),
        ({"text": "가" * (MAX_TEXT_CHARS + 1), "version": 0}, "text_too_long", "Shorten it"),
        ({"text": CORRECTED}, "version_missing", "Send “version”"),
        ({"text": CORRECTED, "version": "0"}, "version_missing", "Send “version”"),
        ({"text": 5, "version": 0}, "text_missing", "as a string"),
        ({}, "nothing_to_do", "Send “text”"),
    ],
)
def test_bad_edits_are_refused_saying_what_to_do(cast, meeting, body, code, says):
    segment = first_segment(meeting)
    response = patch(english_client(cast.owner), segment, body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert says in response.json()["error"]
    segment.refresh_from_db()
    assert (segment.text, segment.version) == (MACHINE, 0)


@pytest.mark.parametrize("status", [Transcript.Status.QUEUED, Transcript.Status.RUNNING])
def test_a_transcript_still_being_transcribed_cannot_be_corrected(cast, meeting, status):
    Transcript.objects.filter(pk=meeting.pk).update(status=status)
    segment = first_segment(meeting)
    response = patch(english_client(cast.owner), segment, {"text": CORRECTED, "version": 0})
    assert response.status_code == 409
    assert response.json()["code"] == "not_finished"
    assert "once it is done" in response.json()["error"]
    segment.refresh_from_db()
    assert segment.text == MACHINE


def test_a_retried_task_rewriting_a_corrected_segment_keeps_the_correction(cast, meeting):
    segment = first_segment(meeting)
    patch(english_client(cast.owner), segment, {"text": CORRECTED, "version": 0})
    # A redelivered batch task writes the same index again with the machine's text.
    result = SegmentResult(start=0.1, end=1.7, text=MACHINE, words=[])
    stored = _store(meeting, 0, result)
    stored.refresh_from_db()
    assert (stored.text, stored.original_text, stored.start) == (CORRECTED, MACHINE, 0.1)
    # An uncorrected segment is rewritten as before.
    _store(meeting, 1, SegmentResult(start=2.0, end=3.0, text="다시 들은 문장"))
    assert meeting.segments.get(index=1).text == "다시 들은 문장"


def test_a_redelivered_live_final_keeps_a_correction(cast):
    from transcription.live.finals import store_final

    session = make_transcript(cast.owner, texts=[MACHINE], source=Transcript.Source.LIVE)
    segment = first_segment(session)
    patch(english_client(cast.owner), segment, {"text": CORRECTED, "version": 0})
    # The same utterance's final again (a redelivered task), after the session was resumed.
    stored, wrote = store_final(str(session.pk), 0, 0.0, 1.5, {"text": MACHINE, "words": None})
    assert wrote and stored.pk == segment.pk
    stored.refresh_from_db()
    assert (stored.text, stored.original_text) == (CORRECTED, MACHINE)


def test_search_finds_the_correction_and_not_the_removed_word(cast, meeting):
    owner = english_client(cast.owner)
    assert owner.get("/api/segments/", {"q": "평택"}).json()["count"] == 1
    patch(owner, first_segment(meeting), {"text": CORRECTED, "version": 0})

    hits = owner.get("/api/segments/", {"q": "용인"}).json()
    assert [h["text"] for h in hits["results"]] == [CORRECTED]
    assert hits["results"][0]["original_text"] == MACHINE and hits["results"][0]["edited"]
    assert owner.get("/api/segments/", {"q": "평택"}).json()["count"] == 0
    listed = owner.get("/api/transcripts/", {"q": "용인"}).json()
    assert [t["id"] for t in listed["results"]] == [str(meeting.pk)]
    assert listed["results"][0]["matches"][0]["text"] == CORRECTED
    assert owner.get("/api/transcripts/", {"q": "평택"}).json()["count"] == 0


def test_exports_and_the_transcript_api_read_the_correction(cast, meeting):
    owner = english_client(cast.owner)
    patch(owner, first_segment(meeting), {"text": CORRECTED, "version": 0})
    url = f"/api/transcripts/{meeting.pk}/export"

    srt = pysrt.from_string(owner.get(url, {"format": "srt"}).content.decode())
    srt_text = " ".join(item.text.replace("\n", " ") for item in srt)
    vtt = webvtt.from_string(owner.get(url, {"format": "vtt"}).content.decode())
    vtt_text = " ".join(c.text.replace("\n", " ") for c in vtt)
    txt = owner.get(url, {"format": "txt"}).content.decode()
    for text in (srt_text, vtt_text, txt):
        assert "용인" in text and "평택" not in text

    document = json.loads(owner.get(url, {"format": "json"}).content)
    first = document["segments"][0]
    assert (first["text"], first["original_text"], first["edited"]) == (CORRECTED, MACHINE, True)
    assert document["segments"][1]["original_text"] is None
    assert not document["segments"][1]["edited"]

    detail = owner.get(f"/api/transcripts/{meeting.pk}/").json()
    assert set(detail) == set(TranscriptDetailSerializer().fields)
    assert detail["segments"][0]["text"] == CORRECTED
    assert detail["segments"][0]["original_text"] == MACHINE


def test_subtitles_of_an_edited_segment_spell_the_correction_not_the_old_words(cast, db):
    words = [
        {"word": " 평택에", "start": 0.0, "end": 0.8, "probability": 0.9},
        {"word": " 공장이", "start": 0.9, "end": 1.5, "probability": 0.9},
        {"word": " 들어섭니다", "start": 1.6, "end": 2.4, "probability": 0.9},
    ]
    transcript = make_transcript(cast.owner, texts=[])
    segment = Segment.objects.create(
        transcript=transcript,
        index=0,
        start=0.0,
        end=2.4,
        text="평택에 공장이 들어섭니다",
        words=words,
    )
    owner = english_client(cast.owner)
    patch(owner, segment, {"text": "용인에 공장이 들어섭니다", "version": 0})
    url = f"/api/transcripts/{transcript.pk}/export"
    srt = pysrt.from_string(owner.get(url, {"format": "srt"}).content.decode())
    assert " ".join(item.text.replace("\n", " ") for item in srt) == "용인에 공장이 들어섭니다"
    # The page shows the text, not the old words' spans.
    page = owner.get(f"/transcripts/{transcript.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    shown = re.search(
        r'<span class="text"[^>]*>(.*?)</span>\s*<span class="segment-tools">',
        page.content.decode(),
        re.S,
    )
    assert shown.group(1) == "용인에 공장이 들어섭니다"  # no word spans of the old words
    # The machine's text is there for "Show original".
    assert "평택에 공장이 들어섭니다</span>" in page.content.decode()


def test_keywords_of_a_corrected_segment_are_extracted_again(
    cast, meeting, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.KEYWORD_BACKEND = "embedded"
    segment = first_segment(meeting)
    extract_segment_keywords(segment.pk)  # as after transcription
    assert "평택" in set(Keyword.objects.filter(segment=segment).values_list("word", flat=True))
    make_keyword(meeting, "전체")  # a transcript-level keyword, not the segment's: stays

    sent = []
    # The task runs here instead of on a worker: the real function, on the real database.
    monkeypatch.setattr(
        extract_segment_keywords,
        "delay",
        lambda *args, **kwargs: sent.append(args) or extract_segment_keywords(*args, **kwargs),
    )
    with django_capture_on_commit_callbacks(execute=True):
        patch(english_client(cast.owner), segment, {"text": CORRECTED, "version": 0})
    assert sent == [(segment.pk,)]
    words = set(Keyword.objects.filter(segment=segment).values_list("word", flat=True))
    assert "용인" in words and "평택" not in words
    assert Keyword.objects.filter(transcript=meeting, word="전체").exists()
    counts = english_client(cast.owner).get(f"/api/transcripts/{meeting.pk}/").json()
    summary = {item["word"]: item["count"] for item in counts["keyword_summary"]}
    assert "용인" in summary and "평택" not in summary


# --- who may -------------------------------------------------------------------------------


def test_others_segments_are_404_and_unchanged(cast, meeting):
    segment = first_segment(meeting)
    other = english_client(cast.other)
    assert other.get(f"/api/segments/{segment.pk}/").status_code == 404
    response = patch(other, segment, {"text": "남이 고친 글", "version": 0})
    assert response.status_code == 404
    assert "삼성" not in response.content.decode()
    segment.refresh_from_db()
    assert (segment.text, segment.version) == (MACHINE, 0)
    assert patch(other, segment, {"speaker": None}).status_code == 404
    assert english_client(cast.owner).get("/api/segments/999999/").status_code == 404


def test_staff_may_correct_anyones_segment(cast, meeting):
    segment = first_segment(meeting)
    response = patch(english_client(cast.staff), segment, {"text": CORRECTED, "version": 0})
    assert response.status_code == 200
    assert response.json()["edited_by"] == "staff"


def test_anonymous_is_refused(client, meeting):
    segment = first_segment(meeting)
    assert client.get(f"/api/segments/{segment.pk}/").status_code in (401, 403)
    response = patch(client, segment, {"text": CORRECTED, "version": 0})
    assert response.status_code in (401, 403)
    segment.refresh_from_db()
    assert segment.text == MACHINE


def test_a_session_edit_needs_the_csrf_token(cast, meeting):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(cast.owner)
    segment = first_segment(meeting)
    assert patch(browser, segment, {"text": CORRECTED, "version": 0}).status_code == 403
