"""The small things people notice (issue 15), server-rendered: one local time format, export
files named after the title, the favicon, styled 404 and 500 pages, a notice after deleting,
the owner of each transcript for staff only, keywords that link to the history, and error
messages that say what to do. Pages are asked for in English (the source strings)."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import unquote

import pytest
from django.test import Client, RequestFactory
from django.urls import path
from django.utils import translation
from django.views.defaults import server_error
from rest_framework.authtoken.models import Token

from keywords.models import Category
from sttproject import urls as project_urls
from tests.factories import english_client, make_keyword, make_transcript
from transcription.batch.uploads import UploadRejected, about_minutes, check_language
from transcription.models import Transcript
from transcription.web.downloads import attachment, file_stem

ENGLISH = {"Accept-Language": "en"}
# 05:05 UTC is 14:05 in Seoul (the default TIME_ZONE) and 06:05 in Berlin (in November).
CREATED = dt.datetime(2026, 11, 29, 5, 5, tzinfo=dt.UTC)


def untitled(owner) -> Transcript:
    transcript = make_transcript(owner, texts=["안녕하세요"])
    Transcript.objects.filter(pk=transcript.pk).update(created_at=CREATED)
    transcript.refresh_from_db()
    return transcript


# --- times ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("zone", "shown"), [("Asia/Seoul", "14:05"), ("Europe/Berlin", "06:05")])
def test_the_fallback_title_uses_the_pages_time_zone(cast, settings, zone, shown):
    settings.TIME_ZONE = zone
    transcript = untitled(cast.owner)
    with translation.override("en"):
        assert str(transcript) == f"Upload 2026-11-29 {shown}"
    # The pages show the same moment in the same format: the title, the history's line.
    page = english_client(cast.owner).get(transcript.get_absolute_url()).content.decode()
    assert f'<h1 id="title">Upload 2026-11-29 {shown}</h1>' in page
    history = english_client(cast.owner).get("/history/").content.decode()
    assert history.count(f"2026-11-29 {shown}") == 2  # the fallback title and the date
    assert "2026-11-29 05:05" not in history or shown == "05:05"


# --- export names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "stem"),
    [
        ("주간 회의", "주간 회의"),
        ('He said "stop"', "He said 'stop'"),
        ("Café résumé", "Café résumé"),
        ("A/B test\\2", "A-B test-2"),
        ("line one\nline two\r\n\tend", "line one line two end"),
        ("  ..hidden..  ", "hidden"),
        ("Upload 2026-11-29 14:05", "Upload 2026-11-29 14-05"),
        ("\n/\n", "transcript-x"),
    ],
)
def test_file_stems_are_safe(title, stem):
    assert file_stem(title, "transcript-x") == stem


def test_attachment_header_has_an_ascii_name_and_the_exact_one():
    header = attachment('회의록 "최종"/v2', "srt", fallback="transcript-1")
    assert header.isascii() and "\n" not in header and "\r" not in header
    plain = re.search(r'filename="([^"]*)"', header).group(1)
    exact = re.search(r"filename\*=UTF-8''(\S+)", header).group(1)
    # Not "v2.srt", what ASCII can spell of the title: the fallback.
    assert plain == "transcript-1.srt"
    assert unquote(exact) == "회의록 '최종'-v2.srt"
    # Accents are dropped for the ASCII name, and kept in the exact one.
    accents = attachment("Café résumé", "txt", fallback="t")
    assert 'filename="Cafe resume.txt"' in accents
    assert unquote(re.search(r"filename\*=UTF-8''(\S+)", accents).group(1)) == "Café résumé.txt"
    # Plain ASCII titles need no second name; a title with no ASCII letter falls back.
    assert (
        attachment("Weekly sync", "txt", fallback="t") == 'attachment; filename="Weekly sync.txt"'
    )
    only_korean = attachment("회의", "vtt", fallback="transcript-1")
    assert 'filename="transcript-1.vtt"' in only_korean
    assert "filename*=UTF-8''%ED%9A%8C%EC%9D%98.vtt" in only_korean


@pytest.mark.django_db
def test_exports_are_named_after_the_title(cast):
    transcript = make_transcript(cast.owner, texts=["안녕하세요"], title='주간 "회의"\n2부')
    client = english_client(cast.owner)
    response = client.get(f"/api/transcripts/{transcript.pk}/export", {"format": "srt"})
    assert response.status_code == 200
    exact = re.search(r"filename\*=UTF-8''(\S+)", response["Content-Disposition"]).group(1)
    assert unquote(exact) == "주간 '회의' 2부.srt"
    assert f'filename="transcript-{transcript.pk}.srt"' in response["Content-Disposition"]
    # Untitled: the fallback title, as the page shows it.
    plain = untitled(cast.owner)
    response = client.get(f"/api/transcripts/{plain.pk}/export", {"format": "txt"})
    assert 'filename="Upload 2026-11-29 14-05.txt"' in response["Content-Disposition"]


# --- favicon, 404, 500 ------------------------------------------------------------------------


@pytest.mark.django_db
def test_favicon_before_sign_in(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.lstrip().startswith(b"<svg")
    page = client.get("/accounts/login/").content.decode()
    assert re.search(r'<link rel="icon" href="/static/favicon\.svg" type="image/svg\+xml">', page)


@pytest.mark.django_db
def test_a_missing_page_is_the_styled_404(cast, settings):
    settings.DEBUG = False
    client = english_client(cast.owner)
    for address in ("/no-such-page/", f"/transcripts/{make_transcript(cast.other).pk}/"):
        response = client.get(address)
        assert response.status_code == 404
        page = response.content.decode()
        assert "<h1>Page not found</h1>" in page
        assert 'class="topbar"' in page and "/static/css/app.css" in page
        assert 'href="/history/"' in page


@pytest.mark.django_db
def test_a_page_for_staff_is_the_styled_403(cast, settings):
    settings.DEBUG = False
    response = english_client(cast.owner).get("/status/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "<h1>Not allowed</h1>" in page and "The status page is for staff." in page
    assert 'class="topbar"' in page


def boom(request):
    raise RuntimeError("a bug")


urlpatterns = [path("boom/", boom), *project_urls.urlpatterns]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_failing_view_answers_the_styled_500(cast, settings):
    settings.DEBUG = False
    client = english_client(cast.owner)
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in response.content.decode()


def test_the_500_page_renders_without_a_database_or_request(settings):
    # No django_db mark: any query here fails the test.
    settings.DEBUG = False
    with translation.override("en"):
        response = server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in page and "Try again in a minute" in page
    assert "/static/css/app.css" in page and "/static/favicon.svg" in page


# --- delete notice, owners, keyword links -----------------------------------------------------


@pytest.mark.django_db
def test_the_history_says_deleted_once(cast):
    transcript = make_transcript(cast.owner, title="주간 회의")
    client = english_client(cast.owner)
    response = client.delete(f"/api/transcripts/{transcript.pk}/")
    assert response.status_code == 204
    first = client.get("/history/").content.decode()
    assert "Deleted “주간 회의”." in first
    assert 'role="status"' in first
    assert "Deleted" not in client.get("/history/").content.decode()
    # A program deleting with its token leaves no notice for a page.
    other = make_transcript(cast.owner, title="API")
    token = Token.objects.create(user=cast.owner).key
    api = Client(headers={"Authorization": f"Token {token}", **ENGLISH})
    assert api.delete(f"/api/transcripts/{other.pk}/").status_code == 204
    assert "Deleted" not in client.get("/history/").content.decode()


@pytest.mark.django_db
def test_staff_see_whose_transcripts_users_do_not(cast):
    make_transcript(cast.owner, title="owner's")
    make_transcript(cast.other, title="other's")
    staff_page = english_client(cast.staff).get("/history/").content.decode()
    assert re.search(r'class="owner">by owner<', staff_page)
    assert re.search(r'class="owner">by other<', staff_page)
    owner_page = english_client(cast.owner).get("/history/").content.decode()
    assert 'class="owner"' not in owner_page
    assert "by other" not in owner_page and "other's" not in owner_page


@pytest.mark.django_db
def test_keywords_link_to_the_history_filtered_by_them(cast):
    meeting = make_transcript(cast.owner, texts=["삼성전자의 새 공장"], title="회의")
    make_keyword(meeting, "삼성전자", Category.COMPANY)
    make_transcript(cast.owner, texts=["다른 이야기"], title="잡담")
    client = english_client(cast.owner)
    page = client.get(meeting.get_absolute_url()).content.decode()
    link = re.search(r'<a class="keyword-link" href="([^"]+)"[^>]*>삼성전자</a>', page)
    assert link, page
    href = link.group(1).replace("&amp;", "&")
    assert href == "/history/?keyword=%EC%82%BC%EC%84%B1%EC%A0%84%EC%9E%90"
    history = client.get(href).content.decode()
    assert str(meeting.pk) in history and "잡담" not in history


# --- messages that say what to do -------------------------------------------------------------


def test_waits_are_said_in_minutes():
    with translation.override("en"):
        assert about_minutes(2950) == "about 50 minutes"
        assert about_minutes(10) == "about 1 minute"


def test_an_unknown_language_says_what_to_send():
    with translation.override("en"), pytest.raises(UploadRejected) as caught:
        check_language("klingon")
    message = str(caught.value)
    assert "ko or en, or auto" in message and "Whisper" not in message
