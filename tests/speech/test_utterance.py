"""The live utterance decode: its prompt from earlier finals, the echo guard, word timings.

The echo strings below are what whisper-base (int8, CPU) really wrote on silence, noise and
blips when given the prompt they echo (faster-whisper's batched pipeline, beam 5).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from transcription.speech import engine, utterance
from transcription.speech.audio import decode_audio
from transcription.speech.hallucination import compact, filter_segments
from transcription.speech.utterance import (
    build_prompt,
    echoes_prompt,
    timeline_words,
    written_in,
)

KO_PROMPT = (
    "지난해 3월 김 전 장관의 동료인 장동련 홍익대 교수가 민간 자문단장으로 위촉되면서 "
    "본격적인 공모와 개발 작업에 들어갔다."
)
EN_PROMPT = "He hoped there would be stew for dinner, turnips and carrots and bruised potatoes."


@pytest.mark.parametrize(
    "prompt, echo",
    [
        (KO_PROMPT, " 김 전 장관의 동료인 장동련"),
        (KO_PROMPT, " 공모와 개발 작업에 들어갔다."),
        (KO_PROMPT, " 동료인 장동련 홍익대 교수"),
        (KO_PROMPT, " 장관"),
        (EN_PROMPT, " He hoped there would be stew for dinner"),
        (EN_PROMPT, " He hoped he would eat stew for dinner, turnips and carrots."),
        (EN_PROMPT, " He hoped he would be stewed for dinner,"),
        (EN_PROMPT, "HE HOPED THERE WOULD BE STEW"),
    ],
)
def test_real_echoes_of_the_prompt_are_detected(prompt, echo):
    assert echoes_prompt(echo, prompt)


@pytest.mark.parametrize(
    "prompt, text",
    [
        # Whisper's silence phantoms without the prompt's words: the filter's business.
        (KO_PROMPT, " 오오오"),
        (KO_PROMPT, " 네."),
        # Real next sentences of the evaluation clips.
        (KO_PROMPT, " 테마파크 및 아파트 등의 공사는 2018년 완공을 목표로 진행되어 왔다."),
        (EN_PROMPT, " and fat mutton pieces to be ladled out in thick, peppered flour fat"),
        (" And so my fellow Americans", " ask not what your country can do for you"),
        # Made up from the prompt's material, not copied: the no-speech rule's case.
        (EN_PROMPT, " He wanted to make stew for me, so I decided to make stew for him."),
        (EN_PROMPT, ""),
        ("", " 네."),
        (KO_PROMPT, " ..."),
    ],
)
def test_text_that_does_not_copy_the_prompt_is_no_echo(prompt, text):
    assert not echoes_prompt(text, prompt)


def test_scripts_tell_the_language_of_earlier_finals():
    assert written_in("GPU 서버를 켰다", "ko")  # Latin terms inside Korean
    assert written_in("안녕하세요.", "ko")
    assert not written_in("OK.", "ko")
    assert written_in("OK.", "en")
    assert not written_in("안녕하세요", "en")
    assert written_in("東京に行きます", "ja")
    assert not written_in("...", "en")


def test_the_prompt_is_the_last_whole_sentences_that_fit():
    finals = ["첫 문장입니다. 둘째 문장입니다.", "OK.", "셋째 문장이고", "넷째입니다."]
    # "OK." is not Korean; a final without punctuation is a sentence of its own.
    assert build_prompt(finals, "ko") == "첫 문장입니다. 둘째 문장입니다. 셋째 문장이고 넷째입니다."
    assert build_prompt(finals, "ko", max_tokens=22) == "셋째 문장이고 넷째입니다."
    assert build_prompt(finals, "en") == "OK."
    assert build_prompt([], "ko") == ""
    # The latest sentence alone is too long: its last words.
    assert build_prompt(["one two three four five"], "en", max_tokens=12) == "four five"
    assert build_prompt(["가나다라마바사"], "ko", max_tokens=4) == "마바사"


@pytest.mark.slow
def test_the_prompt_is_counted_in_whisper_tokens_and_stays_well_under_its_limit():
    model = engine.get_model()
    count = utterance._token_counter(model)
    finals = [KO_PROMPT] * 10
    prompt = build_prompt(finals, "ko", count_tokens=count)
    assert 0 < count(" " + prompt) <= utterance.PROMPT_MAX_TOKENS < 223
    assert prompt.endswith("작업에 들어갔다.")
    assert prompt.startswith("지난해")  # whole sentences


def test_words_go_onto_the_timeline_as_plain_rounded_numbers_inside_the_utterance():
    words = [
        SimpleNamespace(
            word=" 안녕",
            start=np.float64(-0.02),
            end=np.float64(0.4),
            probability=np.float32(0.91234),
        ),
        SimpleNamespace(
            word="하세요.", start=np.float64(0.4), end=np.float64(1.3), probability=np.float64(0.5)
        ),
        SimpleNamespace(
            word=" 네", start=np.float64(1.1), end=np.float64(2.9), probability=np.float64(0.2)
        ),
    ]
    out = timeline_words(words, 10.004, 12.0)
    assert out == [
        {"word": " 안녕", "start": 10.01, "end": 10.4, "probability": 0.912},
        {"word": "하세요.", "start": 10.4, "end": 11.3, "probability": 0.5},
        {"word": " 네", "start": 11.3, "end": 12.0, "probability": 0.2},
    ]
    assert all(type(value) in (str, float) for word in out for value in word.values())
    assert timeline_words(None, 0.0, 1.0) == []


# --- real Whisper ----------------------------------------------------------------------


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * engine.SAMPLE_RATE), dtype=np.float32)


def _click() -> np.ndarray:
    # A short blip: a 20 ms tap between quarter seconds of silence.
    tap = np.hanning(320).astype(np.float32) * 0.5
    return np.concatenate([_silence(0.25), tap, _silence(0.25)])


@pytest.fixture(scope="module")
def no_speech(eval_clip):
    fireplace, _ = eval_clip("nonspeech_fireplace_cc0_30s")
    empty, _ = eval_clip("nonspeech_picovoice_leopard_empty")
    return {
        "silence_3s": _silence(3.0),
        "picovoice_empty": decode_audio(empty),
        "fireplace_10s": decode_audio(fireplace)[: 10 * engine.SAMPLE_RATE],
        "click": _click(),
    }


def _prompt_words(prompt: str) -> set[str]:
    return {compact(word) for word in prompt.split() if len(compact(word)) >= 2}


def _final_text(audio: np.ndarray, language: str, context: list[str]) -> str:
    results, _ = utterance.transcribe_clip(audio, language, context=context)
    duration = len(audio) / engine.SAMPLE_RATE
    kept = filter_segments(results, speech_spans=[(0.0, duration)])
    return " ".join(result.text for result in kept)


@pytest.mark.slow
@pytest.mark.parametrize(
    "language, prompt", [("ko", KO_PROMPT), ("en", EN_PROMPT)], ids=["ko", "en"]
)
def test_a_prompt_echoed_on_silence_noise_or_a_blip_never_becomes_the_final(
    no_speech, language, prompt
):
    # Unguarded, this model writes the prompt back on these clips (the guard's reason).
    echoed = []
    for name, audio in no_speech.items():
        segments = utterance._decode(audio, language, 5, prompt, False)
        if echoes_prompt(" ".join(s.text for s in segments), prompt):
            echoed.append(name)
    assert len(echoed) >= 2, echoed
    # Guarded: none of the prompt's words in any final.
    for name, audio in no_speech.items():
        text = _final_text(audio, language, [prompt])
        said = {compact(word) for word in text.split()}
        assert not said & _prompt_words(prompt), (name, text)
