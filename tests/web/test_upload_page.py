"""A person uploads a Korean clip on /upload/ and reads the transcript on the page."""

from __future__ import annotations

import pytest

from bench.cer import cer
from tests.browser import chromium, sign_in
from tests.celery_workers import running_worker
from tests.factories import PASSWORD, make_user
from tests.servers import running_web

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_upload_page_shows_progress_then_the_transcript(eval_clip):
    path, entry = eval_clip("ko_zeroth_104_003_0294")
    user = make_user("uploader")  # before Playwright starts its event loop in this thread
    with (
        running_web() as url,
        running_worker("stt"),
        running_worker("keywords", extra_env={"KEYWORD_BACKEND": "embedded"}),
        chromium() as browser,
    ):
        page = browser.new_page()
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + "/upload/")
        page.set_input_files("#file-input", str(path))
        job = page.locator(".job").first
        job.locator(".job-name").wait_for()
        assert job.locator(".job-name").inner_text() == path.name
        # The transcription bar reaches the end and the job says done.
        page.wait_for_function(
            "document.querySelector('.job .stt-bar').value === 1", timeout=120_000
        )
        page.wait_for_selector(".job[data-state=done]", timeout=30_000)
        assert job.locator(".upload-bar").evaluate("el => el.value") == 1
        text = " ".join(job.locator(".segments .text").all_inner_texts())
        assert cer(entry["reference"], text, numerals=True) < 0.3, text
        # The finished transcript opens on its own page with the same text and exports.
        job.locator(".job-link").click()
        page.wait_for_selector("#segments .segment")
        assert "커피" in page.locator("#segments").inner_text()
        assert page.locator("a.button", has_text="SRT").count() == 1


def test_not_audio_shows_a_clear_error(tmp_path):
    bogus = tmp_path / "notes.wav"
    bogus.write_text("these are meeting notes, not a recording\n" * 20)
    user = make_user("uploader")  # before Playwright starts its event loop in this thread
    with running_web() as url, chromium() as browser:
        page = browser.new_page()
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + "/upload/")
        page.set_input_files("#file-input", str(bogus))
        page.wait_for_selector(".job[data-state=failed]", timeout=30_000)
        error = page.locator(".job .job-error").inner_text()
        assert "notes.wav" in error and "audio" in error.lower()
