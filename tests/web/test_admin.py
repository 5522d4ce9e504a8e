"""Operators fix data in the Django admin: transcripts with segments and keywords inline."""

from __future__ import annotations

import pytest

from keywords.models import Category, Keyword
from tests.factories import PASSWORD, make_keyword, make_transcript
from transcription.models import Segment, Speaker, Transcript

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, cast):
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": cast.staff.username, "password": PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    return client


def test_non_staff_are_sent_to_the_login(client, cast):
    client.force_login(cast.owner)
    response = client.get("/admin/transcription/transcript/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_changelists_list_each_model(staff_client, cast):
    transcript = make_transcript(
        cast.owner, texts=["삼성전자의 새 공장", "서울에서 열린 행사"], title="회의록"
    )
    make_keyword(transcript, "삼성전자", Category.COMPANY, 0.9)
    for url, expected in [
        ("/admin/transcription/transcript/", "회의록"),
        ("/admin/transcription/segment/", "삼성전자의 새 공장"),
        ("/admin/keywords/keyword/", "삼성전자"),
    ]:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert expected in response.content.decode(), url


def test_transcript_page_shows_segments_and_keywords_inline(staff_client, cast):
    transcript = make_transcript(cast.owner, texts=["첫 번째 문장", "두 번째 문장"])
    make_keyword(transcript, "문장", Category.OTHER, 0.4)
    Speaker.objects.create(transcript=transcript, label="S1", name="김민수")
    page = staff_client.get(
        f"/admin/transcription/transcript/{transcript.pk}/change/"
    ).content.decode()
    assert "첫 번째 문장" in page and "두 번째 문장" in page
    assert 'value="문장"' in page
    assert 'value="S1"' in page and 'value="김민수"' in page  # speakers, to rename there


def test_the_recording_plays_through_the_audio_view_not_a_media_path(
    staff_client, cast, settings, tmp_path
):
    from django.core.files.base import ContentFile

    settings.MEDIA_ROOT = tmp_path / "media"
    recorded = make_transcript(cast.owner, texts=["녹음된 회의"], source=Transcript.Source.LIVE)
    recorded.audio.save("session.wav", ContentFile(b"RIFF0000WAVE"), save=True)
    bare = make_transcript(cast.owner, texts=["녹음 없음"], source=Transcript.Source.LIVE)
    page = staff_client.get(f"/admin/transcription/transcript/{recorded.pk}/change/")
    html = page.content.decode()
    assert f'src="/transcripts/{recorded.pk}/audio"' in html
    assert "/media/" not in html and 'name="audio"' not in html
    assert staff_client.get(f"/transcripts/{recorded.pk}/audio").status_code == 200
    html = staff_client.get(
        f"/admin/transcription/transcript/{bare.pk}/change/", headers={"Accept-Language": "en"}
    ).content.decode()
    assert "none kept" in html and "<audio" not in html


def test_search_finds_a_transcript_by_what_was_said(staff_client, cast):
    wanted = make_transcript(cast.owner, texts=["홍익대 교수가 위촉되었다"], title="wanted")
    make_transcript(cast.owner, texts=["커피 한 잔"], title="other-one")
    page = staff_client.get("/admin/transcription/transcript/", {"q": "홍익대"}).content.decode()
    assert f"/admin/transcription/transcript/{wanted.pk}/change/" in page
    assert "other-one" not in page


def test_filters_by_status_and_source(staff_client, cast):
    make_transcript(cast.owner, title="live-one", source=Transcript.Source.LIVE)
    make_transcript(cast.owner, title="upload-one", source=Transcript.Source.UPLOAD)
    page = staff_client.get(
        "/admin/transcription/transcript/", {"source__exact": "live"}
    ).content.decode()
    assert "live-one" in page and "upload-one" not in page


def test_staff_can_fix_a_segment_text(staff_client, cast):
    transcript = make_transcript(cast.owner, texts=["잘못 들린 문장"])
    segment = transcript.segments.get()
    response = staff_client.post(
        f"/admin/transcription/segment/{segment.pk}/change/",
        {
            "transcript": str(transcript.pk),
            "index": "0",
            "start": "0.0",
            "end": "1.5",
            "text": "바르게 고친 문장",
            "avg_logprob": "",
            "no_speech_prob": "",
            "words": "null",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    fixed = Segment.objects.get(pk=segment.pk)
    assert fixed.text == "바르게 고친 문장"
    # Recorded as a correction, as on the transcript page: the machine's text kept.
    assert (fixed.original_text, fixed.version, fixed.edited_by) == (
        "잘못 들린 문장",
        1,
        cast.staff,
    )


def test_keyword_category_can_be_corrected(staff_client, cast):
    transcript = make_transcript(cast.owner)
    keyword = make_keyword(transcript, "엔비디아", Category.OTHER)
    response = staff_client.post(
        f"/admin/keywords/keyword/{keyword.pk}/change/",
        {
            "transcript": str(transcript.pk),
            "segment": "",
            "word": "엔비디아",
            "category": Category.COMPANY,
            "importance": "0.8",
            "backend": "embedded",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Keyword.objects.get(pk=keyword.pk).category == "회사"
