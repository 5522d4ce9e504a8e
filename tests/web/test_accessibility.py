"""axe-core on every page (issue 15): login, live, upload, history, transcript, account and
status show no critical or serious violation of the WCAG 2 A/AA rules and axe's best
practices, in the light and the dark colour scheme. The figures (failing elements by impact
per page) are printed for the record: ``pytest -s tests/web/test_accessibility.py``."""

from __future__ import annotations

import os

import numpy as np
import pytest
import redis
from django.conf import settings
from django.core.files import File

from keywords.models import Category
from tests.audio_files import write_wav
from tests.axe import axe_violations, describe, impact_counts, serious
from tests.browser import chromium, sign_in
from tests.factories import PASSWORD, make_keyword, make_transcript, make_user
from tests.servers import running_web
from tests.web.test_phone_layout import phone_worker
from tests.web.test_word_timings import jfk_transcript
from workers.heartbeat import KEY_PREFIX

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The colour schemes in English, and the default Korean interface (longer and shorter words,
# another font) in the light one.
RUNS = [("en-US", "light"), ("en-US", "dark"), ("ko-KR", "light")]
BACKGROUNDS = {"light": "rgb(255, 255, 255)", "dark": "rgb(17, 24, 39)"}


def fill_live_page(page) -> None:
    """The live box as a session fills it: two finals and a partial."""
    page.evaluate(
        """() => {
            const box = document.getElementById('transcript');
            for (const [text, kind] of [['안녕하세요, 회의를 시작하겠습니다.', 'final'],
                                        ['오늘은 예산을 검토합니다.', 'final'],
                                        ['다음 안건은', 'partial']]) {
                const p = document.createElement('p');
                p.className = 'line ' + kind;
                if (kind === 'partial') p.setAttribute('aria-hidden', 'true');
                p.textContent = text;
                box.append(p);
            }
        }"""
    )


def audit(page, name: str, figures: dict, failures: dict, scheme: str) -> None:
    violations = axe_violations(page)
    figures[(name, scheme)] = impact_counts(violations)
    if violations:
        print(f"\n{name} ({scheme}):\n{describe(violations)}")
    bad = serious(violations)
    if bad:
        failures[(name, scheme)] = describe(bad)


def print_figures(figures: dict) -> None:
    print("\naxe-core figures (failing elements by impact):")
    print(f"{'page':<12}{'scheme':<11}critical serious moderate minor")
    for (name, scheme), counts in figures.items():
        print(
            f"{name:<12}{scheme:<11}{counts['critical']:>8}{counts['serious']:>8}"
            f"{counts['moderate']:>9}{counts['minor']:>6}"
        )


def test_no_critical_or_serious_violations(media, tmp_path):
    staff = make_user("auditor", staff=True)
    transcript = jfk_transcript(staff)
    recording = write_wav(tmp_path / "jfk.wav", np.zeros(16000 * 11, dtype=np.float32))
    with open(recording, "rb") as handle:
        transcript.audio.save(recording.name, File(handle), save=True)
    make_keyword(transcript, "Americans", Category.OTHER)
    make_keyword(transcript, "country", Category.PLACE)
    make_transcript(staff, texts=["삼성전자의 반도체 공장", "평택에 들어섭니다"], title="회의록")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("회의 메모입니다, 녹음이 아닙니다.\n")
    hostname = phone_worker()

    figures: dict = {}
    failures: dict = {}
    shots = os.environ.get("AXE_SCREENSHOTS")  # a folder: look at the pages too
    try:
        with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium() as browser:
            for locale, scheme in RUNS:
                context = browser.new_context(locale=locale, color_scheme=scheme)
                scheme = scheme if locale == "en-US" else f"{scheme} {locale[:2]}"
                page = context.new_page()
                page.goto(url + "/accounts/login/")
                audit(page, "login", figures, failures, scheme)
                sign_in(page, url, staff.username, PASSWORD)
                pages = {
                    "live": "/",
                    "upload": "/upload/",
                    "history": "/history/",
                    "search": "/history/?q=삼성전자",
                    "transcript": f"/transcripts/{transcript.pk}/",
                    "account": "/account/",
                    "status": "/status/",
                }
                for name, path in pages.items():
                    page.goto(url + path)
                    if name == "live":
                        page.wait_for_function(
                            "document.getElementById('device').textContent.includes('MiB')"
                        )
                        fill_live_page(page)
                    if name == "upload":
                        page.set_input_files("#file-input", str(not_audio))
                        page.wait_for_selector(".job[data-state=failed]", timeout=30_000)
                    if name == "transcript":
                        page.wait_for_function("document.getElementById('player').readyState >= 1")
                    audit(page, name, figures, failures, scheme)
                    if name == "transcript":
                        # Correcting: a segment selected for a speaker, another one's editor
                        # open, a word being played, and the find box narrowing the list.
                        page.click("#segment-0 .select-segment")
                        page.click("#segment-1 .edit-segment")
                        page.wait_for_selector("#segment-1 .segment-editor")
                        page.evaluate(
                            "document.querySelector('#segment-0 .word')"
                            ".classList.add('current-word')"
                        )
                        page.fill("#find", "Americans")
                        page.wait_for_function(
                            "document.getElementById('find-count').textContent !== ''"
                        )
                        page.keyboard.press("Enter")
                        audit(page, "editing", figures, failures, scheme)
                    if shots:
                        page.screenshot(path=f"{shots}/axe-{name}-{scheme.replace(' ', '-')}.png")
                    # The scheme is really the one asked for (so its contrast was checked).
                    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
                    assert background == BACKGROUNDS[scheme.split()[0]], (name, scheme, background)
                context.close()
    finally:
        redis.Redis.from_url(settings.REDIS_URL).delete(KEY_PREFIX + hostname)
    print_figures(figures)
    assert not failures, "\n\n".join(f"{n} ({s}):\n{text}" for (n, s), text in failures.items())
