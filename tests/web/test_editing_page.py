"""The transcript page in a real browser (English): correcting a segment with the keyboard
(Enter saves, Esc cancels), the correction found by the history search and in the SRT
download, a conflict between two windows, and speakers named and assigned to a run of
segments, then read back from every export."""

from __future__ import annotations

import json

import pysrt
import pytest
import webvtt

from tests.browser import chromium, sign_in
from tests.factories import PASSWORD, make_transcript, make_user
from tests.servers import running_web
from tests.web.test_history_page import outside_the_loop, with_audio
from transcription.models import Segment

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MACHINE = "삼성전자의 새 공장이 평택에 들어섭니다"
CORRECTED = "삼성전자의 새 공장이 용인에 들어섭니다"


def english_page(browser):
    return browser.new_context(locale="en-US", accept_downloads=True).new_page()


def download(page, fmt: str) -> str:
    with page.expect_download() as info:
        page.click(f"a.button:has-text('{fmt.upper()}')")
    return info.value.path().read_text(encoding="utf-8")


def test_correct_a_segment_with_the_keyboard_then_find_it_and_export_it(eval_clip, media, tmp_path):
    user = make_user("editor")
    transcript = make_transcript(
        user, texts=["한 잔의 커피가 소비자에게", MACHINE, "여러 차례의 공정"], title="공장 회의"
    )
    with_audio(transcript, eval_clip("ko_zeroth_104_003_0294")[0])
    segment = transcript.segments.get(index=1)

    def stored() -> tuple[str, str, int]:
        row = outside_the_loop(lambda: Segment.objects.get(pk=segment.pk))
        return row.text, row.original_text, row.version

    with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium() as browser:
        page = english_page(browser)
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + f"/transcripts/{transcript.pk}/")
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        text = page.locator("#segment-1 .text")
        edit = page.locator("#segment-1 .edit-segment")
        editor = page.locator("#segment-1 .segment-editor")

        # Esc cancels and restores, focus back on Edit.
        edit.focus()
        page.keyboard.press("Enter")
        assert editor.is_visible()
        assert editor.evaluate("el => el === document.activeElement")
        page.keyboard.type(" 아무거나")
        page.keyboard.press("Escape")
        assert editor.count() == 0
        assert text.inner_text() == MACHINE
        assert edit.evaluate("el => el === document.activeElement")
        assert stored() == (MACHINE, "", 0)

        # Enter saves.
        page.keyboard.press("Enter")
        page.keyboard.press("Control+A")
        page.keyboard.type(CORRECTED)
        page.keyboard.press("Enter")
        editor.wait_for(state="detached")
        assert text.inner_text() == CORRECTED
        assert page.locator("#segment-1 .edited-mark").is_visible()
        assert stored() == (CORRECTED, MACHINE, 1)
        # The machine's text on request.
        original = page.locator("#segment-1 .original")
        assert original.is_hidden()
        page.click("#segment-1 .show-original")
        assert original.inner_text() == f"Original: {MACHINE}"

        # "e" on a segment's focused text (its play button) edits it too; Esc, and the
        # editor's controls never played anything.
        page.focus("#segment-2 .text")
        page.keyboard.press("e")
        assert page.locator("#segment-2 .segment-editor").is_visible()
        page.keyboard.press("Escape")
        player = "document.getElementById('player')"
        assert page.evaluate(f"[{player}.currentTime, {player}.paused]") == [0, True]
        # A click on the row still plays from there.
        page.click("#segment-2")
        page.wait_for_function("document.getElementById('segment-2').classList.contains('playing')")

        srt = pysrt.from_string(download(page, "srt"))
        subtitles = " ".join(item.text.replace("\n", " ") for item in srt)
        assert "용인에" in subtitles and "평택" not in subtitles

        # The history search finds the correction, not the word taken out.
        page.goto(url + "/history/?q=용인")
        results = page.locator("#results .result")
        assert results.count() == 1
        assert "용인" in results.first.locator(".snippet-text").inner_text()
        page.goto(url + "/history/?q=평택")
        assert page.locator("#results .result").count() == 0


def test_two_windows_editing_one_segment_the_second_sees_the_first(media, tmp_path):
    user = make_user("editor")
    transcript = make_transcript(user, texts=[MACHINE])
    with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium() as browser:
        first, second = english_page(browser), english_page(browser)
        for page in (first, second):
            sign_in(page, url, user.username, PASSWORD)
            page.goto(url + f"/transcripts/{transcript.pk}/")
        for page, text in ((first, CORRECTED), (second, "삼성전자의 새 공장이 화성에 들어섭니다")):
            page.click("#segment-0 .edit-segment")
            page.fill("#segment-0 .segment-editor", text)
        first.press("#segment-0 .segment-editor", "Enter")
        first.locator("#segment-0 .segment-editor").wait_for(state="detached")

        second.press("#segment-0 .segment-editor", "Enter")
        conflict = second.locator("#segment-0 .conflict")
        conflict.wait_for()
        assert "editor corrected this segment" in conflict.inner_text()
        assert conflict.locator(".theirs").inner_text() == CORRECTED
        # Theirs taken: nothing is sent, the page shows what is stored.
        second.click("#segment-0 .take-theirs")
        assert second.locator("#segment-0 .text").inner_text() == CORRECTED
        row = outside_the_loop(lambda: Segment.objects.get(transcript=transcript, index=0))
        assert (row.text, row.version) == (CORRECTED, 1)

        # Keeping one's own after a conflict sends it on the current version.
        first.click("#segment-0 .edit-segment")
        first.fill("#segment-0 .segment-editor", "첫째 창의 두 번째 수정")
        second.click("#segment-0 .edit-segment")
        second.fill("#segment-0 .segment-editor", "둘째 창이 지킨 수정")
        first.press("#segment-0 .segment-editor", "Enter")
        first.locator("#segment-0 .segment-editor").wait_for(state="detached")
        second.press("#segment-0 .segment-editor", "Enter")
        second.click("#segment-0 .keep-mine")
        second.locator("#segment-0 .segment-editor").wait_for(state="detached")
        assert second.locator("#segment-0 .text").inner_text() == "둘째 창이 지킨 수정"
        row = outside_the_loop(lambda: Segment.objects.get(transcript=transcript, index=0))
        assert (row.text, row.version, row.original_text) == ("둘째 창이 지킨 수정", 3, MACHINE)


def test_an_empty_correction_is_refused_next_to_the_segment(media, tmp_path):
    user = make_user("editor")
    transcript = make_transcript(user, texts=[MACHINE])
    with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium() as browser:
        page = english_page(browser)
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + f"/transcripts/{transcript.pk}/")
        page.click("#segment-0 .edit-segment")
        page.fill("#segment-0 .segment-editor", "   ")
        page.press("#segment-0 .segment-editor", "Enter")
        error = page.locator("#segment-0 .segment-error")
        error.wait_for()
        assert "The text is empty" in error.inner_text()
        assert page.locator("#segment-0 .segment-editor").is_visible()  # still editing


def test_assign_speakers_to_a_run_and_see_them_in_every_export(media, tmp_path):
    user = make_user("editor")
    texts = [
        "안녕하세요 회의를 시작하겠습니다",
        "첫 안건은 예산입니다",
        "네 알겠습니다",
        "질문 있습니다",
    ]
    transcript = make_transcript(user, texts=texts, title="회의")
    with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium() as browser:
        page = english_page(browser)
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + f"/transcripts/{transcript.pk}/")
        assert page.locator("#assign-button").is_disabled()

        # Segments 1 to 2 (indexes 0-1): select, then shift-select the end; a new name.
        page.click("#segment-0 .select-segment")
        page.click("#segment-1 .select-segment", modifiers=["Shift"])
        assert page.locator("#selection").inner_text() == "Segments 1 to 2 selected."
        assert page.locator(".segment.selected").count() == 2
        page.fill("#assign-name", "김민수")
        page.press("#assign-name", "Enter")
        page.locator("#segment-1 .speaker-name").wait_for()
        names = page.locator(".segment .speaker-name:visible")
        assert names.all_inner_texts() == ["김민수", "김민수"]

        # Then the rest, with the keyboard: Enter on Select, Shift+Enter on the run's end.
        page.focus("#segment-2 .select-segment")
        page.keyboard.press("Enter")
        page.focus("#segment-3 .select-segment")
        page.keyboard.press("Shift+Enter")
        assert page.locator("#selection").inner_text() == "Segments 3 to 4 selected."
        page.fill("#assign-name", "Alice")
        page.click("#assign-button")
        page.locator("#segment-3 .speaker-name").wait_for()
        # Segment 4 (index 3) belongs to nobody after all.
        page.click("#segment-3 .select-segment")
        page.click("#unassign-button")
        page.locator("#segment-3 .speaker-name").wait_for(state="hidden")

        # Rename 김민수 in the speakers list: every one of their segments follows.
        first = page.locator("#speaker-list li").first
        first.locator("input").fill("김 팀장")
        first.locator("input").press("Enter")
        page.wait_for_function(
            "document.querySelector('#segment-0 .speaker-name').textContent === '김 팀장'"
        )
        assert names.all_inner_texts() == ["김 팀장", "김 팀장", "Alice"]

        vtt = webvtt.from_string(download(page, "vtt"))
        voices = [(c.voice, c.text.replace("\n", " ")) for c in vtt]
        assert voices[0][0] == "김 팀장" and voices[2][0] == "Alice"
        assert voices[-1][1] == "질문 있습니다" and voices[-1][0] in (None, "")

        srt = [s.text.replace("\n", " ") for s in pysrt.from_string(download(page, "srt"))]
        assert srt[0].startswith("김 팀장: 안녕하세요")
        assert not srt[1].startswith("김 팀장:")  # the name where the speaker changes only
        assert srt[2] == "Alice: 네 알겠습니다"

        txt = download(page, "txt").splitlines()
        assert txt == [
            "김 팀장: 안녕하세요 회의를 시작하겠습니다",
            "김 팀장: 첫 안건은 예산입니다",
            "Alice: 네 알겠습니다",
            "질문 있습니다",
        ]

        document = json.loads(download(page, "json"))
        assert [s["speaker"] for s in document["segments"]] == ["김 팀장", "김 팀장", "Alice", None]
        assert sorted(s["name"] for s in document["speakers"]) == ["Alice", "김 팀장"]
