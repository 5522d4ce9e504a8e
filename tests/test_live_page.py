"""A person opens the live page, talks (a Korean clip as the fake microphone) and reads along."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cer import cer
from tests.audio_files import write_wav
from tests.browser import chromium, off_loop, sign_in
from tests.celery_workers import running_worker
from tests.factories import PASSWORD, make_user
from tests.servers import running_web
from transcription.audio import decode_audio
from transcription.models import Segment, Transcript

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_live_page_transcribes_the_microphone(eval_clip, tmp_path):
    path, entry = eval_clip("ko_zeroth_104_003_0253")
    speech = decode_audio(path)
    silence = np.zeros(16000 * 3, dtype=np.float32)
    # Chromium plays this file as the microphone; silence after the speech ends the utterance.
    mic = write_wav(
        tmp_path / "mic.wav", np.concatenate([silence[:8000], speech, silence, silence])
    )
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ]
    user = make_user("speaker")  # before Playwright starts its event loop in this thread
    with (
        running_web(extra_env={"DATA_DIR": str(tmp_path / "data")}) as url,
        running_worker("stt"),
        running_worker("stt_partial"),
        running_worker("keywords", extra_env={"KEYWORD_BACKEND": "embedded"}),
        chromium(args) as browser,
    ):
        page = browser.new_page()
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + "/")
        page.click("#start")
        page.wait_for_selector("#conn[data-state=connected]", timeout=20_000)
        page.wait_for_selector("#transcript .line.final", timeout=90_000)
        text = page.locator("#transcript .line.final").first.inner_text()
        assert cer(entry["reference"], text, numerals=True) < 0.35, text
        page.wait_for_selector(".keyword-card", timeout=30_000)
        categories = page.locator(".keyword-card").evaluate_all(
            "cards => cards.map(c => c.dataset.category)"
        )
        assert set(categories) <= {"인물", "장소", "회사", "기술", "제품", "장비", "서비스", "기타"}
        words = " ".join(page.locator(".keyword-card li").all_inner_texts())
        assert "백화점" in words or "영화관" in words, words
        assert "latency" in page.locator("#latency").inner_text()
        page.click("#stop")
        page.wait_for_selector("#conn[data-state=stopped]", timeout=30_000)
        session = page.locator("#session-link").get_attribute("href").strip("/").split("/")[-1]
        # The session was recorded: its page plays it, as long as what was said at least.
        page.goto(f"{url}/transcripts/{session}/")
        duration = page.wait_for_function(
            "() => { const p = document.querySelector('#player');"
            " return p && p.readyState >= 1 && p.duration; }",
            timeout=15_000,
        ).json_value()
        assert duration >= speech.size / 16000, duration
        assert page.locator("#segments.playable .segment").count() >= 1

    def stored(session):
        transcript = Transcript.objects.get(pk=session)
        return (
            transcript.source,
            list(Segment.objects.filter(transcript=transcript).values_list("start", "end")),
            transcript.keywords.count(),
            transcript.audio.name,
        )

    source, spans, keywords, audio_name = off_loop(stored, session)
    assert source == "live" and spans and keywords >= 1
    # The recording is on the segments' timeline: the speech is where they say it is.
    recorded = decode_audio(tmp_path / "data" / "media" / audio_name)
    inside = np.zeros(recorded.size, dtype=bool)
    for start, end in spans:
        inside[int(start * 16000) : int(end * 16000)] = True
    margin = np.convolve(inside, np.ones(8000), mode="same") > 0  # 0.25 s either side
    speech_rms = np.sqrt(np.mean(recorded[inside] ** 2))
    quiet_rms = np.sqrt(np.mean(recorded[~margin] ** 2)) if (~margin).any() else 0.0
    assert speech_rms > 0.01 and speech_rms > 10 * quiet_rms, (speech_rms, quiet_rms)
