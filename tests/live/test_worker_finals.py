"""Live finals through the worker: earlier finals as Whisper's prompt, the echo guard, and
word timings on the session's timeline. Real Whisper, PostgreSQL and Redis; the keyword
task is only recorded (its worker is not under test here)."""

from __future__ import annotations

import logging
import time
import uuid

import numpy as np
import pytest

from bench.cer import cer
from tests.factories import make_user
from transcription.live import store, worker
from transcription.live.jobs import UtteranceJob
from transcription.models import Segment, Transcript
from transcription.speech import utterance
from transcription.speech.audio import decode_audio
from transcription.speech.engine import SAMPLE_RATE
from transcription.speech.hallucination import compact

pytestmark = pytest.mark.slow

KO_SENTENCE = (
    "지난해 3월 김 전 장관의 동료인 장동련 홍익대 교수가 민간 자문단장으로 위촉되면서 "
    "본격적인 공모와 개발 작업에 들어갔다."
)


@pytest.fixture
def keyword_calls(monkeypatch):
    from keywords import tasks

    calls = []
    monkeypatch.setattr(tasks.extract_segment_keywords, "delay", calls.append)
    return calls


@pytest.fixture
def session(db):
    return Transcript.objects.create(
        owner=make_user("speaker"), source=Transcript.Source.LIVE, status=Transcript.Status.RUNNING
    )


def run_final(session, index: int, audio: np.ndarray, start: float, language: str):
    """Park ``audio`` as utterance ``index`` starting at ``start`` on the session's timeline,
    run the worker on it, and return the stored segment and the ``final`` event sent."""
    key = f"live:audio:test-{uuid.uuid4().hex}"
    store.put_audio(key, audio.astype("<f4").tobytes())
    job = UtteranceJob(
        session=str(session.pk),
        index=index,
        start=start,
        end=round(start + len(audio) / SAMPLE_RATE, 3),
        audio_key=key,
        language=language,
        dispatched_at=time.time(),
    )
    segment = worker.transcribe_utterance(job)
    events = store.replay(str(session.pk), 0)
    final = [e for e in events if e["type"] == "final" and e["utterance"] == index][-1]
    return segment, final


def halves(eval_clip, clip_id: str, cut_s: float):
    path, entry = eval_clip(clip_id)
    audio = decode_audio(path)
    cut = int(cut_s * SAMPLE_RATE)
    return audio[:cut], audio[cut:], entry


def words_of(text: str) -> list[str]:
    return [compact(word) for word in text.split() if compact(word)]


@pytest.mark.parametrize(
    "clip_id, cut_s",
    [
        # In the pause after "And so, my fellow Americans," (2.24-3.33 s).
        ("en_jfk_inaugural_11s", 2.8),
        # In the pause after "현재 백화점과 영화관 등은 오픈해 영업하고 있고" (3.76-4.02 s).
        ("ko_zeroth_104_003_0253", 3.89),
    ],
)
def test_a_final_read_with_the_previous_final_is_at_least_as_good(
    session, keyword_calls, eval_clip, monkeypatch, clip_id, cut_s
):
    first, second, entry = halves(eval_clip, clip_id, cut_s)
    language = entry["lang"]
    numerals = language == "ko"
    decode, prompts = utterance._decode, []

    def spy(audio, language, beam, prompt, words):
        prompts.append(prompt)
        return decode(audio, language, beam, prompt, words)

    monkeypatch.setattr(utterance, "_decode", spy)
    before, _ = run_final(session, 0, first, 0.0, language)
    after, final = run_final(session, 1, second, cut_s, language)
    # The first final had nothing before it; the second was read after the first.
    assert prompts == ["", before.text], prompts
    alone, _ = utterance.transcribe_clip(second, language)
    alone_text = " ".join(result.text for result in alone)

    assert before and after and final["text"] == after.text
    with_context = cer(entry["reference"], f"{before.text} {after.text}", numerals=numerals)
    without = cer(entry["reference"], f"{before.text} {alone_text}", numerals=numerals)
    assert with_context <= without, (before.text, after.text, alone_text)
    # Nothing of the prompt's end is written again at the start of the new final.
    said, prompt = words_of(after.text), words_of(before.text)
    for n in range(1, 4):
        assert said[:n] != prompt[-n:], (before.text, after.text)
    assert len(keyword_calls) == 2


def test_an_echo_of_the_previous_final_on_silence_is_decoded_again_without_it(
    session, keyword_calls, caplog
):
    Segment.objects.create(transcript=session, index=0, start=0.0, end=9.0, text=KO_SENTENCE)
    silence = np.zeros(3 * SAMPLE_RATE, dtype=np.float32)
    with caplog.at_level(logging.INFO, logger="transcription.speech.utterance"):
        segment, final = run_final(session, 1, silence, 10.0, "ko")
    assert "decoded again without" in caplog.text
    said = set(words_of(final["text"]))
    assert not said & {word for word in words_of(KO_SENTENCE) if len(word) >= 2}, final["text"]
    if segment is not None:
        assert segment.text == final["text"]


def test_final_words_are_on_the_session_timeline_in_order_and_spell_the_text(
    session, keyword_calls, eval_clip
):
    path, entry = eval_clip("en_jfk_inaugural_11s")
    audio = decode_audio(path)
    start = 61.25  # a minute into the session
    segment, final = run_final(session, 4, audio, start, "en")
    words = final["words"]

    assert segment is not None and words
    assert segment.words == words
    assert "".join(word["word"] for word in words).strip() == final["text"]
    assert words[0]["word"].startswith(" ")
    for word in words:
        assert set(word) == {"word", "start", "end", "probability"}
        assert all(isinstance(word[k], float) for k in ("start", "end", "probability"))
        assert final["start"] <= word["start"] <= word["end"] <= final["end"]
        assert word["start"] == round(word["start"], 2)
        assert 0.0 <= word["probability"] <= 1.0
    for previous, word in zip(words, words[1:], strict=False):
        assert word["start"] >= previous["end"]
    # The words follow the speech (in the clip from about 0.3 s to 10.7 s), not the
    # utterance's edges: shifted by the session offset, not piled at its start.
    assert abs(words[0]["start"] - (start + 0.3)) < 1.0, words[:2]
    assert abs(words[-1]["end"] - (start + 10.7)) < 1.0, words[-2:]
    ask = next(word for word in words if compact(word["word"]) == "ask")
    # "ask" is said at about 3.0 s; word timings from cross-attention move by a few tenths
    # between CPUs (2.76 s on one machine, over 2.9 s on another).
    assert start + 2.5 < ask["start"] < start + 4.0, ask


def test_audio_lost_with_redis_is_read_from_the_recording(session, keyword_calls, eval_clip, media):
    """The job's audio key is gone (Redis restarted empty) but the recording holds the
    utterance: the worker transcribes it from there instead of giving up."""
    from transcription.live.recording import LiveRecording

    path, entry = eval_clip("ko_picovoice_leopard_test_ko")
    audio = decode_audio(path)
    session.audio = f"live/{session.pk}.wav"
    session.save()
    with LiveRecording(media / session.audio.name) as recording:
        recording.append(np.concatenate([np.zeros(SAMPLE_RATE, np.float32), audio]))
    job = UtteranceJob(
        session=str(session.pk),
        index=0,
        start=1.0,
        end=round(1.0 + len(audio) / SAMPLE_RATE, 3),
        audio_key=f"live:audio:gone-{uuid.uuid4().hex}",
        language="ko",
        dispatched_at=time.time(),
    )
    segment = worker.transcribe_utterance(job)
    assert segment is not None and segment.index == 0
    assert cer(entry["reference"], segment.text) < 0.3, segment.text
