"""Every page on a phone (issue 13): at 390×844 the pages are one column, nothing scrolls the
page sideways, and Korean text keeps a column wide enough to read, not one syllable a line."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import numpy as np
import pytest
import redis
from django.conf import settings
from django.core.files import File

from keywords.models import Category
from tests.audio_files import write_wav
from tests.browser import chromium, sign_in
from tests.factories import PASSWORD, make_keyword, make_transcript, make_user
from tests.servers import running_web
from workers.heartbeat import KEY_PREFIX, publish

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 3,
}
LONG_TOKEN = "가나다라마바사아자차카타파하" * 5  # seventy syllables with no space
URL_TOKEN = "https://example.com/회의록/2024/상반기/반도체-공급망-전략-회의-녹취록-최종본.m4a"
SENTENCES = [
    "오늘 회의에서는 삼성전자의 새로운 반도체 공장이 평택에 들어서는 일정과 그에 따른"
    " 인력 채용 계획, 그리고 협력 업체들과의 계약 조건을 자세히 검토했습니다.",
    "서울특별시 강남구 테헤란로에 있는 본사에서 열린 이번 회의에는 카카오페이와 네이버"
    " 클라우드의 담당자들도 참석해 결제 모듈과 데이터센터 이전 문제를 논의했습니다.",
    f"참고 자료는 {URL_TOKEN} 에 올려 두었습니다.",
    f"끊김 없이 이어지는 긴 토큰 {LONG_TOKEN} 도 화면 밖으로 나가면 안 됩니다.",
] + [
    f"{n}번째 안건은 예산 집행 현황과 다음 분기 목표를 정리하는 것이었습니다." for n in range(1, 25)
]
# The live page's own lines, as its socket would show them.
LIVE_LINES = [SENTENCES[0], SENTENCES[1], SENTENCES[3]]


def phone_worker() -> str:
    """A GPU worker's heartbeat, so the status page has its full table."""
    hostname = f"stt-{uuid.uuid4().hex[:8]}@gpu-node-01.speech.internal.example"
    record = {
        "hostname": hostname,
        "queues": ["stt", "stt_live", "stt_partial"],
        "host": socket.gethostname(),
        "device": "cuda",
        "gpus": [
            {
                "index": 0,
                "name": "NVIDIA H200 NVL",
                "memory_used_mb": 40213,
                "memory_total_mb": 143771,
                "utilization_pct": 37,
            }
        ],
    }
    publish(redis.Redis.from_url(settings.REDIS_URL), record, ttl_s=300)
    return hostname


def page_width_problems(page) -> list[str]:
    """What scrolls the page sideways: the document wider than the phone's screen, and the
    elements reaching past its right edge (to name the culprit in the failure). The screen's
    width, not ``innerWidth``: a phone zooms out to show a page wider than itself, and
    ``innerWidth`` grows with it."""
    return page.evaluate(
        """(width) => {
            const root = document.documentElement;
            // Inside a box that scrolls sideways itself (a wide table), reaching further is fine.
            const scrolled = (el) => {
                for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
                    if (getComputedStyle(a).overflowX !== 'visible') return true;
                }
                return false;
            };
            const problems = [];
            if (root.scrollWidth !== width) problems.push(`scrollWidth ${root.scrollWidth} != ${width}`);
            for (const el of document.body.querySelectorAll('*')) {
                const box = el.getBoundingClientRect();
                if (box.width && box.right > width + 0.5 && !el.closest('[hidden]') && !scrolled(el)) {
                    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                        + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
                    problems.push(`${name} reaches ${Math.round(box.right)}`);
                }
                if (problems.length > 8) break;
            }
            return problems;
        }""",
        PHONE["viewport"]["width"],
    )


def narrow(page, selector: str, least: float) -> list[str]:
    """``selector``'s first element, when it is missing or narrower than ``least`` pixels."""
    found = page.locator(selector).first.bounding_box()
    if not found:
        return [f"{selector} is not shown"]
    return [] if found["width"] >= least else [f"{selector} is {found['width']:.0f} px wide"]


def scrolls_sideways(page, selector: str) -> list[str]:
    """A text box that scrolls by itself (the live transcript) must not scroll sideways."""
    wide = page.locator(selector).evaluate("el => el.scrollWidth > el.clientWidth")
    return [f"{selector} scrolls sideways"] if wide else []


def below(page, lower: str, upper: str) -> list[str]:
    """One column: ``lower`` starts under ``upper``, not beside it."""
    a, b = page.locator(lower).first.bounding_box(), page.locator(upper).first.bounding_box()
    if a and b and a["y"] >= b["y"] + b["height"] - 1:
        return []
    return [f"{lower} is not below {upper}"]


def test_every_page_fits_a_phone(media, tmp_path):
    staff = make_user("phone", staff=True)
    transcript = make_transcript(
        staff, texts=SENTENCES, title="2024년 상반기 반도체 공급망 전략 회의 녹취록 (최종본)"
    )
    recording = write_wav(tmp_path / "meeting.wav", np.zeros(16000 * 60, dtype=np.float32))
    with open(recording, "rb") as handle:
        transcript.audio.save(recording.name, File(handle), save=True)
    for word, category in [
        ("삼성전자", Category.COMPANY),
        ("카카오페이", Category.SERVICE),
        ("네이버 클라우드", Category.SERVICE),
        ("평택", Category.PLACE),
        ("서울특별시 강남구 테헤란로", Category.PLACE),
        ("반도체", Category.TECHNOLOGY),
        (LONG_TOKEN, Category.OTHER),
    ]:
        make_keyword(transcript, word, category)
    make_transcript(staff, texts=SENTENCES[:3], title=URL_TOKEN)
    # Notes, not a recording: the upload page shows the job with its (long) name and error,
    # and nothing is queued for a worker that this test does not start.
    not_audio = (
        tmp_path / "2024년_상반기_반도체_공급망_전략_회의_녹취록_최종본_수정본_다시_보냄.wav"
    )
    not_audio.write_text("회의 메모입니다, 녹음이 아닙니다.\n" * 20)
    hostname = phone_worker()
    shots = os.environ.get("PHONE_SCREENSHOTS")  # a folder: look at the pages too

    try:
        with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium() as browser:
            page = browser.new_context(**PHONE).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            sign_in(page, url, staff.username, PASSWORD)
            pages = {
                "live": "/",
                "upload": "/upload/",
                "history": "/history/?q=삼성전자",
                "transcript": f"/transcripts/{transcript.pk}/",
                "account": "/account/",
                "status": "/status/",
            }
            problems: dict[str, list[str]] = {}
            for name, path in pages.items():
                page.goto(url + path)
                if name == "live":
                    # The status bar at its longest: the GPU's memory, from /api/config.
                    page.wait_for_function(
                        "document.getElementById('device').textContent.includes('MiB')"
                    )
                    page.evaluate(
                        """(lines) => {
                            const box = document.getElementById('transcript');
                            for (const text of lines) {
                                const p = document.createElement('p');
                                p.className = 'line final';
                                p.textContent = text;
                                box.append(p);
                            }
                        }""",
                        LIVE_LINES,
                    )
                if name == "upload":
                    page.set_input_files("#file-input", str(not_audio))
                    page.wait_for_selector(".job[data-state=failed]", timeout=30_000)
                if shots:
                    Path(shots).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=f"{shots}/phone-{name}.png")
                    page.screenshot(path=f"{shots}/phone-{name}-full.png", full_page=True)
                found = page_width_problems(page)
                if name == "live":
                    found += narrow(page, "#transcript", 300)
                    found += below(page, "#keyword-cards", "#transcript")
                    # Korean in a line that wraps at words, not a syllable a line.
                    found += narrow(page, "#transcript .line", 200)
                    found += scrolls_sideways(page, "#transcript")
                    found += narrow(page, "#statusbar", 300)
                if name == "transcript":
                    found += narrow(page, "#segments", 300)
                    found += below(page, "#keywords", "#segments")
                    found += narrow(page, "#segment-0 .text", 200)
                    found += narrow(page, "#player", 300)
                if found:
                    problems[name] = found
            assert not problems, "\n".join(f"{name}: {found}" for name, found in problems.items())
            assert errors == []
    finally:
        redis.Redis.from_url(settings.REDIS_URL).delete(KEY_PREFIX + hostname)
