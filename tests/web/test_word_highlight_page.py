"""The transcript page follows the recording word by word, in a real browser: ``jfk.wav`` of
the eval set as the transcript's audio, with the word timings faster-whisper gives for it
(tests/web/test_word_timings.py). The highlighted word must be the one whose [start, end)
holds the player's currentTime, paused or playing, and segments that arrive over the page's
socket while the transcript is made are followed too."""

from __future__ import annotations

import pytest
from django.core.files import File

from tests.browser import chromium, off_loop, sign_in
from tests.factories import PASSWORD, make_user
from tests.servers import running_web
from tests.web.test_word_timings import JFK_WORDS, jfk_transcript
from transcription.models import Transcript
from transcription.notify import ProgressNotifier, segment_payload

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JFK = "en_jfk_inaugural_11s"
# Chromium plays without a sound card and without a gesture from a person.
ARGS = ["--autoplay-policy=no-user-gesture-required", "--mute-audio"]

# What the page highlights now, read in the page at one instant with the player's time.
NOW = """() => {
    const player = document.getElementById('player');
    const words = document.querySelectorAll('#segments .word.current-word');
    const w = words[0];
    return {
        time: player.currentTime,
        paused: player.paused,
        count: words.length,
        word: w ? w.textContent : null,
        start: w ? parseFloat(w.dataset.start) : null,
        end: w ? parseFloat(w.dataset.end) : null,
        segment: w ? w.closest('.segment').id : null,
    };
}"""

# While playing: a sample every animation frame for ``ms`` milliseconds.
SAMPLE = """(ms) => new Promise((resolve) => {
    const player = document.getElementById('player');
    const samples = [];
    const until = performance.now() + ms;
    function sample() {
        const w = document.querySelector('#segments .word.current-word');
        samples.push({
            time: player.currentTime,
            word: w ? w.textContent : null,
            start: w ? parseFloat(w.dataset.start) : null,
            end: w ? parseFloat(w.dataset.end) : null,
        });
        if (performance.now() < until) requestAnimationFrame(sample); else resolve(samples);
    }
    requestAnimationFrame(sample);
})"""


def expected_word(time: float) -> str | None:
    for word, start, end, _p in JFK_WORDS:
        if start <= time < end:
            return word.strip()
    return None


def word_around(time: float, slack: float) -> str | None:
    """The word that holds ``time`` even ``slack`` seconds either side of it."""
    for word, start, end, _p in JFK_WORDS:
        if start <= time - slack and time + slack < end:
            return word.strip()
    return None


def with_jfk_audio(transcript: Transcript, path) -> Transcript:
    with open(path, "rb") as handle:
        transcript.audio.save(path.name, File(handle), save=True)
    return transcript


def pause_at(page, time: float) -> dict:
    """Seek the paused player to ``time`` and read the highlight once the seek is done."""
    page.evaluate(
        """(t) => new Promise((resolve) => {
            const player = document.getElementById('player');
            player.pause();
            player.addEventListener('seeked', () => setTimeout(resolve, 50), { once: true });
            player.currentTime = t;
        })""",
        time,
    )
    return page.evaluate(NOW)


def test_the_word_being_played_is_highlighted(eval_clip, media, tmp_path):
    path, _entry = eval_clip(JFK)
    user = make_user("listener")
    transcript = with_jfk_audio(jfk_transcript(user), path)
    with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium(ARGS) as browser:
        page = browser.new_page()
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + f"/transcripts/{transcript.pk}/")
        page.wait_for_function("document.getElementById('player').readyState >= 1")

        # The words are spans that keep the text exactly; the old-style segment is plain text.
        assert page.locator("#segments .word").count() == len(JFK_WORDS)
        assert page.locator("#segment-0 .text").text_content() == "And so my fellow Americans,"
        assert page.locator("#segment-2 .text").text_content() == "(박수)"
        assert page.locator("#segment-2 .word").count() == 0
        assert page.locator(".current-word").count() == 0

        # Paused at chosen times: exactly the word whose [start, end) holds the time.
        for time in (0.3, 1.0, 1.56, 5.9, 9.1, 10.3):
            now = pause_at(page, time)
            assert now["count"] == 1, now
            assert now["start"] <= now["time"] < now["end"], now
            assert now["word"] == expected_word(now["time"]), now
        # In the pause after "Americans," no word is spoken, so none is highlighted.
        now = pause_at(page, 2.5)
        assert (now["count"], now["segment"]) == (0, None), now

        # Clicking a word plays from it: its segment and the word are highlighted.
        page.locator("#segment-1 .word", has_text="country").first.click()
        page.wait_for_function(
            "!document.getElementById('player').paused"
            " && document.getElementById('player').currentTime > 5.9"
        )
        assert page.locator("#segment-1.playing").count() == 1

        # Playing: the highlight follows the time frame by frame, and moves on.
        samples = page.evaluate(SAMPLE, 2500)
        page.evaluate("document.getElementById('player').pause()")
        times = [s["time"] for s in samples]
        assert times[-1] - times[0] > 1.5, "the player did not play"
        seen = [s["word"] for s in samples if s["word"]]
        changes = [w for i, w in enumerate(seen) if i == 0 or w != seen[i - 1]]
        # From "country" on: can, do, for, you, (a pause) ask, what ... in turn, none skipped.
        order = [w.strip() for w, *_ in JFK_WORDS[9:]]
        assert len(changes) >= 4 and changes[0] in order[:3], changes
        first = order.index(changes[0])
        assert changes == order[first : first + len(changes)], changes
        # One frame's slack: the page and the sampler run in the same frame, in some order.
        slack = 0.1
        for s in samples:
            if s["word"] is None:
                assert word_around(s["time"], slack) is None, s
            else:
                assert s["start"] - slack <= s["time"] < s["end"] + slack, s

        # Once paused again, exact.
        now = page.evaluate(NOW)
        assert now["paused"]
        assert now["word"] == expected_word(now["time"]), now


def test_segments_that_arrive_over_the_socket_are_followed(eval_clip, media, tmp_path):
    path, _entry = eval_clip(JFK)
    user = make_user("watcher")
    # A transcription under way: only the first segment is stored yet.
    transcript = with_jfk_audio(
        jfk_transcript(user, status=Transcript.Status.RUNNING, third=False), path
    )
    payloads = [segment_payload(s) for s in transcript.segments.filter(index=1)]
    transcript.segments.filter(index=1).delete()
    with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium(ARGS) as browser:
        page = browser.new_page()
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + f"/transcripts/{transcript.pk}/")
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        assert page.locator("#segments .segment").count() == 1
        # The page's socket joins its group once the page has loaded; send until it shows.
        notifier = ProgressNotifier(transcript.pk)
        for _ in range(50):
            off_loop(notifier.segments, payloads)
            try:
                page.wait_for_selector("#segment-1 .word", timeout=200)
                break
            except Exception:  # noqa: BLE001 - Playwright's TimeoutError: not joined yet
                continue
        text = "ask not what your country can do for you, ask what you can do for your country."
        assert page.locator("#segment-1 .text").text_content() == text
        assert page.locator("#segments .word").count() == len(JFK_WORDS)
        assert page.locator("#segments .segment").count() == 2  # sent again, added once
        now = pause_at(page, 8.6)
        assert (now["word"], now["segment"]) == ("what", "segment-1"), now
        assert now["start"] <= now["time"] < now["end"], now
