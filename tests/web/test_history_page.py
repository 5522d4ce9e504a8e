"""The history page and the transcript page: server-rendered checks (search, filters,
escaping, audio with byte ranges) and a real browser finding a transcript by a Korean
word form that differs from the one spoken, playing from a segment and exporting SRT."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pysrt
import pytest
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone

from keywords.models import Category
from tests.browser import chromium, sign_in
from tests.factories import PASSWORD, make_keyword, make_transcript, make_user
from tests.servers import running_web
from transcription.models import Transcript

CLIP = "ko_zeroth_104_003_0294"  # 6.9 s of Korean read speech
XSS = '<script>alert(1)</script> 삼성전자 <img src=x onerror="alert(2)">'


def outside_the_loop(query):
    """Run a database query from a thread of its own: Playwright's sync API keeps an
    event loop running in the test's thread, where Django refuses database calls."""

    def run():
        try:
            return query()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def with_audio(transcript: Transcript, path) -> Transcript:
    with open(path, "rb") as handle:
        transcript.audio.save(path.name, File(handle), save=True)
    return transcript


# --- server-rendered ----------------------------------------------------------------------


@pytest.mark.django_db
def test_history_lists_own_transcripts_and_highlights_matches(client, cast):
    mine = make_transcript(
        cast.owner, texts=["삼성전자의 새 공장", "평택에 들어섭니다"], title="회의"
    )
    other = make_transcript(cast.owner, texts=["카카오페이 결제"], title="결제")
    make_transcript(cast.other, texts=["삼성전자의 비밀"], title="남의 회의")
    client.force_login(cast.owner)
    page = client.get("/history/").content.decode()
    assert str(mine.pk) in page and str(other.pk) in page and "남의 회의" not in page
    page = client.get("/history/", {"q": "삼성전자가"}).content.decode()
    assert str(mine.pk) in page and str(other.pk) not in page and "남의" not in page
    assert "<mark>삼성전자</mark>의 새 공장" in page
    assert f'href="/transcripts/{mine.pk}/#segment-0"' in page


@pytest.mark.django_db
def test_history_filters_and_pagination(client, cast):
    for n in range(25):
        make_transcript(cast.owner, texts=[f"판교 회의 {n}"], title=f"t{n:02}")
    live = make_transcript(
        cast.owner, texts=["라이브"], source=Transcript.Source.LIVE, title="생방송"
    )
    make_keyword(live, "라이브", Category.SERVICE)
    old = make_transcript(cast.owner, texts=["옛날 이야기"], title="옛날")
    Transcript.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    client.force_login(cast.owner)
    first = client.get("/history/", headers={"Accept-Language": "en"}).content.decode()
    assert "27 transcripts" in first and "Page 1 of 2" in first and "생방송" in first
    assert first.index("생방송") < first.index("t24") < first.index("t06")  # newest first
    second = client.get("/history/", {"page": 2}).content.decode()
    assert "옛날" in second and "t00" in second and "t24" not in second
    assert "생방송" in client.get("/history/", {"source": "live"}).content.decode()
    assert "t01" not in client.get("/history/", {"source": "live"}).content.decode()
    assert "생방송" in client.get("/history/", {"category": "서비스"}).content.decode()
    week_ago = (timezone.localdate() - dt.timedelta(days=7)).isoformat()
    assert "옛날" not in client.get("/history/", {"date_from": week_ago}).content.decode()
    searched = client.get(
        "/history/", {"q": "판교", "page": 2}, headers={"Accept-Language": "en"}
    ).content.decode()
    assert "25 transcripts" in searched and "t00" in searched
    # The page links keep the search.
    assert "q=%ED%8C%90%EA%B5%90&amp;page=1" in searched
    bad = client.get("/history/", {"date_from": "someday"}).content.decode()
    assert 'id="filter-error"' in bad and "date_from" in bad


@pytest.mark.django_db
def test_text_is_escaped_on_both_pages(client, cast):
    transcript = make_transcript(cast.owner, texts=[XSS], title="<b>제목</b>")
    make_keyword(transcript, "<i>키워드</i>", Category.OTHER)
    client.force_login(cast.owner)
    for page in (
        client.get("/history/", {"q": "삼성전자"}).content.decode(),
        client.get("/history/").content.decode(),
        client.get(f"/transcripts/{transcript.pk}/").content.decode(),
    ):
        assert "<script>alert(1)" not in page and "<img src=x" not in page
        assert "<b>제목" not in page and "<i>키워드" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# The body is an asynchronous iterator, right for daphne; the synchronous test client
# reads it all the same, with a warning.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")
@pytest.mark.django_db
def test_audio_is_served_with_byte_ranges_to_its_owner_only(client, cast, media):
    transcript = make_transcript(cast.owner, texts=["안녕하세요"])
    transcript.audio.save("clip.flac", ContentFile(bytes(range(256)) * 4), save=True)
    url = f"/transcripts/{transcript.pk}/audio"
    client.force_login(cast.owner)
    whole = client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert whole["Content-Type"] == "audio/flac" and whole["Content-Length"] == "1024"
    assert b"".join(whole) == bytes(range(256)) * 4
    part = client.get(url, HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206
    assert part["Content-Range"] == "bytes 10-19/1024" and part["Content-Length"] == "10"
    assert b"".join(part) == bytes(range(10, 20))
    assert b"".join(client.get(url, HTTP_RANGE="bytes=1000-")) == bytes(range(232, 256))
    assert b"".join(client.get(url, HTTP_RANGE="bytes=-4")) == bytes(range(252, 256))
    beyond = client.get(url, HTTP_RANGE="bytes=5000-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == "bytes */1024"
    head = client.head(url, HTTP_RANGE="bytes=0-99")
    assert head.status_code == 206 and head["Content-Length"] == "100"
    client.force_login(cast.other)
    assert client.get(url).status_code == 404
    client.force_login(cast.staff)
    assert client.get(url, HTTP_RANGE="bytes=0-0").status_code == 206


@pytest.mark.django_db
def test_transcript_page_has_a_player_only_with_stored_audio(client, cast, media):
    upload = make_transcript(cast.owner, texts=["하나", "둘"])
    upload.audio.save("clip.flac", ContentFile(b"fLaC"), save=True)
    live = make_transcript(cast.owner, texts=["라이브"], source=Transcript.Source.LIVE)
    no_file = make_transcript(cast.owner, texts=["파일 없음"])
    client.force_login(cast.owner)
    page = client.get(f"/transcripts/{upload.pk}/").content.decode()
    assert f'src="/transcripts/{upload.pk}/audio"' in page and 'id="segment-1"' in page
    page = client.get(f"/transcripts/{live.pk}/").content.decode()
    assert 'id="player"' not in page and 'id="no-audio"' in page and "라이브" in page
    assert 'id="player"' not in client.get(f"/transcripts/{no_file.pk}/").content.decode()
    assert client.get(f"/transcripts/{no_file.pk}/audio").status_code == 404


# --- a real browser -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_find_by_another_word_form_play_a_segment_and_export_srt(eval_clip, media, tmp_path):
    path, _entry = eval_clip(CLIP)
    user = make_user("listener")
    target = with_audio(
        make_transcript(
            user,
            texts=[
                "한 잔의 커피가 소비자에게",
                "삼성전자의 새 공장이 평택에 들어섭니다",
                "여러 차례의 공정",
            ],
            title="공장 회의",
        ),
        path,
    )
    make_keyword(target, "삼성전자", Category.COMPANY, 0.9)
    make_transcript(user, texts=["카카오페이 결제 모듈"], title="결제 회의")
    make_transcript(make_user("stranger"), texts=["삼성전자의 비밀"], title="남의 회의")
    second = target.segments.get(index=1)
    texts = [s.text for s in target.segments.all()]

    with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium() as browser:
        page = browser.new_page(accept_downloads=True)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.type), d.dismiss()))
        audio_statuses: list[int] = []
        page.on(
            "response",
            lambda r: audio_statuses.append(r.status) if r.url.endswith("/audio") else None,
        )
        sign_in(page, url, user.username, PASSWORD)

        # Search with the bare noun; the segment says 삼성전자의.
        page.goto(url + "/history/")
        page.fill("#q", "삼성전자")
        page.press("#q", "Enter")
        page.wait_for_url("**/history/?q=*")
        results = page.locator("#results .result")
        assert results.count() == 1
        assert results.first.locator(".result-title").inner_text() == "공장 회의"
        assert results.first.locator("mark").first.inner_text() == "삼성전자"
        assert "삼성전자의 새 공장" in results.first.locator(".snippet-text").inner_text()

        # Open it; the player is there and seeks to the clicked segment.
        results.first.locator(".result-title").click()
        page.wait_for_url(f"**/transcripts/{target.pk}/")
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        page.click("#segment-1")
        page.wait_for_function(
            """([start]) => {
                const player = document.getElementById('player');
                return Math.abs(player.currentTime - start) < 0.3 && !player.seeking
                    && document.getElementById('segment-1').classList.contains('playing');
            }""",
            arg=[second.start],
        )
        assert page.locator(".segment.playing").count() == 1
        assert 206 in audio_statuses  # the browser could seek: byte ranges were served

        # Export SRT: a download that parses, with the segments' text (in subtitle lines of
        # at most 20 characters of Korean).
        with page.expect_download() as info:
            page.click("a.button:has-text('SRT')")
        srt = info.value.path().read_text(encoding="utf-8")
        subs = pysrt.from_string(srt)
        assert [s.text.replace("\n", " ") for s in subs] == texts
        assert all(len(line) <= 20 for s in subs for line in s.text.split("\n"))
        assert abs(subs[1].start.ordinal / 1000 - second.start) < 0.002
        assert dialogs == []


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_text_stays_text_in_the_browser_and_rename_delete_work(media, tmp_path):
    user = make_user("writer")
    transcript = make_transcript(user, texts=[XSS, "둘째 줄"], title="<b>제목</b>")
    make_keyword(transcript, "<img src=x onerror=alert(3)>", Category.OTHER)
    with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium() as browser:
        page = browser.new_page()
        dialogs: list[str] = []

        def on_dialog(dialog) -> None:
            dialogs.append(f"{dialog.type}:{dialog.message}")
            # Only the delete confirmation is expected; accept that one.
            dialog.accept() if dialog.type == "confirm" else dialog.dismiss()

        page.on("dialog", on_dialog)
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + "/history/?q=" + "삼성전자")
        snippet = page.locator("#results .snippet-text").first
        assert snippet.inner_text() == XSS
        assert page.locator("#results script, #results img, #results b").count() == 0
        assert page.locator("#results .result-title").inner_text() == "<b>제목</b>"

        page.goto(url + f"/transcripts/{transcript.pk}/")
        assert page.locator("#segment-0 .text").inner_text() == XSS
        assert page.locator("#segments script, #segments img, #keywords img, h1 b").count() == 0
        assert "<img src=x onerror=alert(3)>" in page.locator("#keywords").inner_text()

        # Rename through the page (PATCH with the CSRF token); markup stays text.
        assert not page.locator("#rename-form").is_visible()
        page.click("#rename-button")
        page.fill("#rename-input", "<i>새 이름</i>")
        page.click("#rename-form button[type=submit]")
        page.wait_for_function("document.getElementById('title').textContent === '<i>새 이름</i>'")
        renamed = outside_the_loop(lambda: Transcript.objects.get(pk=transcript.pk).title)
        assert renamed == "<i>새 이름</i>"
        page.reload()
        assert page.locator("#title").inner_text() == "<i>새 이름</i>"

        # Delete: confirm, then back to the history, and the row is gone.
        page.click("#delete-button")
        page.wait_for_url("**/history/")
        assert not outside_the_loop(Transcript.objects.filter(pk=transcript.pk).exists)
        assert [d.split(":")[0] for d in dialogs] == ["confirm"]
