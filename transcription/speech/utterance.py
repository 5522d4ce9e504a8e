"""One live utterance through Whisper: the live path's decode, apart from the batch one.

The endpointer has already cut the stream at pauses, so an utterance is decoded whole as
one line, on the model the batch engine loads (``engine.get_model``).

A final is decoded with what the session said just before it as Whisper's prompt
(``context``): a sentence cut by a pause can then read on as one (``And so my fellow
Americans | ask not what your country ...``), and names keep their spelling.
A prompt has a price: on silence, noise or a very short blip, Whisper readily writes the
prompt back as the transcript, and with much better log-probability than its usual silence
phantoms, so the hallucination filter would keep it. Measured with whisper-base (int8, CPU)
on silence, low noise, the evaluation set's no-speech, fireplace and piano clips and blips,
with a Korean and an English prompt: 14 of 18 prompted decodes wrote (part of) the prompt
back, 2 more made a line up from its words. A prompted decode is therefore decoded again
without the prompt when it echoes it (``echoes_prompt``) or Whisper is unsure of it.

Partials are decoded without context: they are replaced by the final a moment later, and
their audio (the first second or two of an utterance) is where echoes are likeliest, so a
prompt would cost them a database read and often a second decode for nothing kept.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np
from django.conf import settings

from transcription.speech import engine
from transcription.speech.engine import SAMPLE_RATE, SegmentResult
from transcription.speech.hallucination import DEFAULT_CONFIG, compact
from transcription.speech.words import stored_word

log = logging.getLogger(__name__)

# Whisper's prompt holds at most 223 tokens (max_length // 2 - 1); the previous sentence or
# two carry the style and the names, and every further token costs decode time and gives an
# echo more to copy from.
PROMPT_MAX_TOKENS = 120
# An output echoes the prompt when at least this share of its letters are copied from the
# prompt in runs of at least ECHO_MIN_RUN letters (spaces and punctuation aside). Echoes
# measured with whisper-base copied 80-100% of their letters; shorter runs are chance (one
# Korean syllable such as 다 or 는 matches almost any prompt).
ECHO_SHARE = 0.6
ECHO_MIN_RUN = 3
# A prompted decode Whisper itself is unsure of is decoded again without the prompt even
# when it does not copy it: on audio without speech it makes text up from the prompt's
# material (``He wanted to make stew for me`` after a prompt about stew, on fireplace noise:
# no_speech_prob 0.28, avg_logprob -1.20). The hallucination filter's signs of weak evidence
# for a phantom (DEFAULT_CONFIG.phantom_*) tell it: prompted decodes of the evaluation set's
# speech scored no_speech_prob 0.00-0.10 and avg_logprob -0.13 to -0.49; echoes and made-up
# lines at least 0.28 and at most -0.79.

# The script a language is written in, for telling which earlier finals share the language
# of this one (finals carry no language of their own). Languages not listed are taken as
# written in Latin letters; a language in another script simply gets no context.
_SCRIPTS = {
    "ko": {"HANGUL"},
    "ja": {"HIRAGANA", "KATAKANA", "CJK"},
    "zh": {"CJK"},
    "yue": {"CJK"},
    **{code: {"CYRILLIC"} for code in ("ru", "uk", "be", "bg", "mk", "sr", "kk", "mn", "tt")},
    **{code: {"ARABIC"} for code in ("ar", "fa", "ur", "ps", "sd")},
    **{code: {"HEBREW"} for code in ("he", "yi")},
    "el": {"GREEK"},
    "th": {"THAI"},
    **{code: {"DEVANAGARI"} for code in ("hi", "mr", "ne", "sa")},
}
_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s+")

_pipeline = None
_pipeline_model = None


def transcribe_clip(
    audio: np.ndarray,
    language: str | None,
    *,
    offset: float = 0.0,
    end: float | None = None,
    beam_size: int | None = None,
    context: Sequence[str] = (),
    word_timestamps: bool = False,
) -> tuple[list[SegmentResult], str]:
    """One live utterance (at most ``VAD_MAX_UTTERANCE_S``) as a single segment.

    Returns the segments on the stream's timeline (``offset`` added) and the language
    used; ``language`` None or "auto" detects it on this utterance. ``context`` is the
    session's earlier finals, most recent last: those in the language used become the
    prompt (``build_prompt``), and an output that echoes it is decoded again without it.
    With ``word_timestamps`` each segment carries its words, shifted onto the timeline
    and kept inside the utterance (``offset`` to ``end``, by default the audio's end).
    """
    model = engine.get_model()
    duration = len(audio) / SAMPLE_RATE
    if duration <= 0:
        return [], language or ""
    if not language or language == "auto":
        language, _probability, _all = model.detect_language(audio)
    beam = beam_size or settings.WHISPER_BEAM_SIZE
    prompt = build_prompt(context, language, count_tokens=_token_counter(model)) if context else ""
    segments = _decode(audio, language, beam, prompt, word_timestamps)
    if prompt and _doubtful(segments, prompt):
        log.info("utterance at %.2f s: prompt echoed or unsure; decoded again without", offset)
        segments = _decode(audio, language, beam, "", word_timestamps)
    last = min(offset + duration, end) if end is not None else offset + duration
    results = [
        SegmentResult(
            start=round(offset, 3),
            end=round(offset + duration, 3),
            text=segment.text.strip(),
            avg_logprob=segment.avg_logprob,
            no_speech_prob=segment.no_speech_prob,
            compression_ratio=segment.compression_ratio,
            words=timeline_words(segment.words, offset, last) if word_timestamps else None,
        )
        for segment in segments
    ]
    return results, language


def _live_pipeline():
    """A batched pipeline of the live path's own on the process's model: the pipeline keeps
    state between calls (the last speech time of word alignment), not shared with batch."""
    global _pipeline, _pipeline_model
    model = engine.get_model()
    if _pipeline is None or _pipeline_model is not model:
        from faster_whisper import BatchedInferencePipeline

        _pipeline, _pipeline_model = BatchedInferencePipeline(model), model
    return _pipeline


def _decode(audio: np.ndarray, language: str, beam: int, prompt: str, words: bool) -> list:
    duration = len(audio) / SAMPLE_RATE
    segments, _info = _live_pipeline().transcribe(
        audio,
        language=language,
        clip_timestamps=[{"start": 0.0, "end": duration}],
        vad_filter=False,
        batch_size=1,
        beam_size=beam,
        # The endpointer already cut the utterance at pauses: one line per utterance.
        without_timestamps=True,
        # The batched pipeline tokenises the prompt as given; WhisperModel.transcribe puts
        # a space in front, as Whisper's training prompts had.
        initial_prompt=" " + prompt if prompt else None,
        word_timestamps=words,
    )
    return list(segments)


def _doubtful(segments: Sequence, prompt: str) -> bool:
    """Whether a prompted decode echoes its prompt or has only weak evidence."""
    weak = any(
        (segment.no_speech_prob or 0.0) >= DEFAULT_CONFIG.phantom_no_speech_prob
        or (segment.avg_logprob or 0.0) <= DEFAULT_CONFIG.phantom_max_logprob
        for segment in segments
    )
    return weak or echoes_prompt(" ".join(segment.text for segment in segments), prompt)


def echoes_prompt(text: str, prompt: str) -> bool:
    """Whether ``text`` is (mostly) the prompt written back: it is contained in the prompt,
    or at least ``ECHO_SHARE`` of its letters are copied from it in runs of
    ``ECHO_MIN_RUN`` letters or more. Compared on letters and digits only (case, spaces and
    punctuation differ between an echo and its prompt)."""
    said, before = compact(text), compact(prompt)
    if not said or not before:
        return False
    if said in before:
        return True
    matcher = difflib.SequenceMatcher(None, said, before, autojunk=False)
    copied = sum(
        block.size for block in matcher.get_matching_blocks() if block.size >= ECHO_MIN_RUN
    )
    return copied >= ECHO_SHARE * len(said)


def written_in(text: str, language: str) -> bool:
    """Whether ``text`` is written in ``language``'s script: at least a third of its letters
    (a Korean sentence often holds Latin terms such as GPU or API)."""
    scripts = _SCRIPTS.get(language, {"LATIN"})
    letters = [char for char in text if char.isalpha()]
    ours = sum(1 for char in letters if unicodedata.name(char, "").split(" ")[0] in scripts)
    return bool(letters) and ours * 3 >= len(letters)


def build_prompt(
    previous: Sequence[str],
    language: str,
    *,
    max_tokens: int = PROMPT_MAX_TOKENS,
    count_tokens: Callable[[str], int] = len,
) -> str:
    """Whisper's prompt from the session's earlier finals (most recent last): the last whole
    sentences written in ``language`` that fit in ``max_tokens`` (``count_tokens`` counts
    them, characters by default); when the latest sentence alone is too long, its last
    words."""
    sentences = [
        sentence
        for text in previous
        if written_in(text, language)
        for sentence in _SENTENCE_END.split(text.strip())
        if sentence
    ]
    chosen: list[str] = []
    for sentence in reversed(sentences):
        if count_tokens(" " + " ".join([sentence, *chosen])) > max_tokens:
            break
        chosen.insert(0, sentence)
    if not chosen and sentences:
        return _tail(sentences[-1], max_tokens, count_tokens)
    return " ".join(chosen)


def _tail(sentence: str, max_tokens: int, count_tokens: Callable[[str], int]) -> str:
    words = sentence.split()
    kept: list[str] = []
    for word in reversed(words):
        if count_tokens(" " + " ".join([word, *kept])) > max_tokens:
            break
        kept.insert(0, word)
    if kept:
        return " ".join(kept)
    # One word longer than the budget (a language written without spaces): its last letters.
    text = words[-1] if words else ""
    while text and count_tokens(" " + text) > max_tokens:
        text = text[1:]
    return text


def _token_counter(model) -> Callable[[str], int]:
    tokenizer = getattr(model, "hf_tokenizer", None)
    if tokenizer is None:
        return len
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def timeline_words(words: Sequence | None, offset: float, end: float) -> list[dict]:
    """faster-whisper's words as stored and sent: ``{"word", "start", "end",
    "probability"}`` with plain floats, shifted by ``offset`` and kept inside
    [``offset``, ``end``] (after rounding to hundredths), in order."""
    low = _inside(offset, offset, end)
    high = max(low, _inside(end, offset, end))
    out = []
    previous = low
    for word in words or ():
        start = min(max(round(float(word.start) + offset, 2), previous, low), high)
        stop = min(max(round(float(word.end) + offset, 2), start), high)
        out.append(stored_word(word.word, start, stop, word.probability))
        previous = stop
    return out


def _inside(value: float, low: float, high: float) -> float:
    """``value`` rounded to hundredths without leaving [low, high] (when they allow it)."""
    rounded = round(value, 2)
    if rounded < low:
        rounded = math.ceil(low * 100 - 1e-6) / 100
    if rounded > high:
        rounded = math.floor(high * 100 + 1e-6) / 100
    return rounded
