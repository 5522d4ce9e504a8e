"""The transcript page's tools in a real browser (issue 15): find in the transcript from the
keyboard, copy the whole text, a keyword leads to the history filtered by it, and deleting
ends on the history with a notice shown once."""

from __future__ import annotations

import pytest

from keywords.models import Category
from tests.browser import chromium, sign_in
from tests.factories import PASSWORD, make_keyword, make_transcript, make_user
from tests.servers import running_web

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXTS = [
    "오늘 회의에서는 삼성전자의 새 공장을 검토했습니다.",
    "평택 공장의 일정은 다음 달에 확정됩니다.",
    "삼성전자 담당자가 다음 회의에 참석합니다.",
    "예산은 변동이 없습니다.",
]


def shown(page) -> list[str]:
    return page.locator("#segments .segment:visible").evaluate_all("els => els.map(e => e.id)")


def test_find_copy_keyword_link_and_delete(tmp_path):
    user = make_user("writer")
    meeting = make_transcript(user, texts=TEXTS, title="주간 회의")
    make_keyword(meeting, "삼성전자", Category.COMPANY)
    make_transcript(user, texts=["다른 이야기"], title="잡담")
    with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium() as browser:
        context = browser.new_context(locale="en-US")
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + f"/transcripts/{meeting.pk}/")

        # Find: typed into its labelled box, only the segments with the words stay, counted.
        find = page.get_by_label("Find in transcript")
        find.focus()
        page.keyboard.type("삼성전자")
        page.wait_for_function("document.getElementById('find-count').textContent !== ''")
        assert page.locator("#find-count").text_content() == "2 of 4 segments"
        assert shown(page) == ["segment-0", "segment-2"]
        # Enter goes from one to the next, and round again; focus stays in the box.
        page.keyboard.press("Enter")
        assert page.locator(".segment.found-current").get_attribute("id") == "segment-0"
        page.keyboard.press("Enter")
        assert page.locator(".segment.found-current").get_attribute("id") == "segment-2"
        page.keyboard.press("Enter")
        assert page.locator(".segment.found-current").get_attribute("id") == "segment-0"
        assert page.evaluate("document.activeElement.id") == "find"
        # Nothing found says so; Escape shows everything again.
        find.fill("없는 말")
        page.wait_for_function("document.getElementById('find-count').textContent.startsWith('0')")
        assert shown(page) == []
        page.keyboard.press("Escape")
        assert len(shown(page)) == 4 and page.locator("#find-count").text_content() == ""

        # Copy: the whole text, a segment a line, whatever the find box hides.
        find.fill("예산")
        page.click("#copy-text")
        page.wait_for_function("document.getElementById('copy-done').textContent !== ''")
        assert page.locator("#copy-done").text_content() == "Copied 4 segments."
        assert page.evaluate("navigator.clipboard.readText()") == "\n".join(TEXTS)

        # A keyword is a link to the history of transcripts that have it.
        page.locator("#keywords a", has_text="삼성전자").click()
        page.wait_for_url("**/history/?keyword=*")
        assert page.locator("#f-keyword").input_value() == "삼성전자"
        assert page.locator(".result-title").all_text_contents() == ["주간 회의"]

        # Delete: confirmed, then the history says so once.
        page.goto(url + f"/transcripts/{meeting.pk}/")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#delete-button")
        page.wait_for_url(url + "/history/")
        assert page.locator("#messages").text_content().strip() == "Deleted “주간 회의”."
        assert page.locator(".result-title").all_text_contents() == ["잡담"]
        page.reload()
        assert page.locator("#messages").count() == 0
        assert errors == []
