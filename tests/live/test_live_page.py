"""A person opens the live page, talks (a Korean clip as the fake microphone) and reads along."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cer import cer
from tests.audio_files import write_wav
from tests.browser import chromium, off_loop, sign_in, speaking_microphone
from tests.celery_workers import running_worker
from tests.factories import PASSWORD, make_user
from tests.servers import running_web
from transcription.models import Segment, Transcript
from transcription.speech.audio import decode_audio

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_live_page_transcribes_the_microphone(eval_clip, tmp_path):
    path, entry = eval_clip("ko_zeroth_104_003_0253")
    speech = decode_audio(path)
    args = speaking_microphone(speech, tmp_path)
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
        # Every state the connection indicator goes through from here on.
        page.evaluate(
            "() => { window.connStates = [];"
            " new MutationObserver(() => window.connStates.push("
            "document.querySelector('#conn').dataset.state))"
            ".observe(document.querySelector('#conn'), {attributes: true}); }"
        )
        page.click("#stop")
        page.wait_for_selector("#conn[data-state=stopped]", timeout=30_000)
        # Between the click and the last event the page says it is finishing.
        states = page.evaluate("() => window.connStates")
        assert states[0] == "finishing" and states[-1] == "stopped", states
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


def resume_elsewhere(url: str, session: str, cookie: str) -> dict:
    """What a second tab or a program does: resume the session over a socket of its own,
    then stop it. Returns the ``ready`` event."""
    import asyncio

    from bench.wsclient import WsClient

    host, port = url.removeprefix("http://").split(":")

    async def run() -> dict:
        client = await WsClient.connect(host, int(port), cookie=cookie)
        try:
            client.send_json(
                {
                    "type": "start",
                    "language": "ko",
                    "sample_rate": 16000,
                    "encoding": "pcm_s16le",
                    "resume": {"session": session, "last_seq": 0},
                }
            )
            # The replay comes first (the page's own events, its "ready" among them).
            event: dict = {"type": ""}
            while not (event["type"] == "ready" and event.get("resumed")):
                _arrived, event = await client.receive(timeout=20)
                if event["type"] in ("error", "_closed"):
                    return event
            ready = event
            client.send_json({"type": "stop"})
            while event["type"] not in ("stopped", "_closed"):
                _arrived, event = await client.receive(timeout=20)
            return ready
        finally:
            await client.close()

    return asyncio.run(run())


def test_the_page_hands_its_session_over_and_does_not_reconnect(tmp_path):
    mic = write_wav(tmp_path / "quiet.wav", np.zeros(16000 * 30, dtype=np.float32))
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}",
    ]
    user = make_user("speaker")
    with (
        running_web(extra_env={"DATA_DIR": str(tmp_path / "data")}) as url,
        running_worker("stt"),  # takes the finish_live tasks the two ends queue
        chromium(args) as browser,
    ):
        page = browser.new_page()
        sign_in(page, url, user.username, PASSWORD)
        # A second tab of the same browser: the same session cookie.
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
        page.goto(url + "/")
        page.click("#start")
        page.wait_for_selector("#conn[data-state=connected]", timeout=20_000)
        session = page.locator("#session-link").get_attribute("href").strip("/").split("/")[-1]
        ready = off_loop(resume_elsewhere, url, session, cookie)
        assert ready["type"] == "ready" and ready["resumed"], ready
        assert ready["session"] == session
        page.wait_for_selector('#conn[data-state="continued elsewhere"]', timeout=15_000)
        page.wait_for_timeout(3000)  # a reconnect would have happened by now
        assert page.locator("#conn").get_attribute("data-state") == "continued elsewhere"
        assert page.locator("#start").is_enabled() and not page.locator("#stop").is_enabled()

    def status(session):
        return Transcript.objects.get(pk=session).status

    assert off_loop(status, session) in ("running", "done")
