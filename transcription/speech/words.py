"""Words with timings: the unit the batch engine checks coverage with and cuts sentences from.

Whisper decodes a stretch of speech into lines whose bounds fall where its timestamp tokens
did, which is where it paused, not where sentences end. With ``word_timestamps`` every word
carries its own start and end (cross-attention alignment), so the engine can

* see speech that has no words (Whisper stopped early, or skipped a clause) and decode that
  stretch again, and
* cut the words of a stretch into segments at sentence ends, whatever lines Whisper made.

Plain functions over plain data; the engine feeds them faster-whisper's segments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Sentence-ending punctuation of the languages we serve (Latin, CJK full-width, ellipsis).
SENTENCE_END = frozenset(".?!。？！…")
# Closing quotes and brackets may follow the punctuation: `said "yes."`
CLOSERS = "\"'”’)]}」』»"
# A sentence longer than this is still cut, at its longest pause between words.
SEGMENT_MAX_S = 15.0
# ... but never at a pause shorter than this (a cut between two words spoken together).
MIN_CUT_PAUSE_S = 0.15


@dataclass(frozen=True)
class Evidence:
    """Whisper's figures for the line a word came from (the hallucination filter reads them)."""

    avg_logprob: float | None
    no_speech_prob: float | None
    compression_ratio: float | None


@dataclass(frozen=True)
class Word:
    """One word on the recording's timeline. ``text`` is as Whisper writes it: with its
    leading space, so a run of words joins back into the line."""

    text: str
    start: float
    end: float
    probability: float
    evidence: Evidence

    def as_dict(self) -> dict:
        return stored_word(self.text, self.start, self.end, self.probability)


def stored_word(text: str, start: float, end: float, probability: float) -> dict:
    """A word as ``Segment.words`` stores it and the API and events send it: plain floats,
    times to 10 ms, probability to 3 places (batch and live alike)."""
    return {
        "word": text,
        "start": round(float(start), 2),
        "end": round(float(end), 2),
        "probability": round(float(probability), 3),
    }


def evidence_of(segment) -> Evidence:
    return Evidence(
        getattr(segment, "avg_logprob", None),
        getattr(segment, "no_speech_prob", None),
        getattr(segment, "compression_ratio", None),
    )


def letters(text: str) -> int:
    return sum(1 for char in text if char.isalnum())


def ends_sentence(text: str) -> bool:
    stripped = text.rstrip().rstrip(CLOSERS)
    return bool(stripped) and stripped[-1] in SENTENCE_END


def join(words: Sequence[Word]) -> str:
    return "".join(word.text for word in words).strip()


def speech_without_words(
    words: Sequence[Word],
    bounds: tuple[float, float],
    speech: Iterable[tuple[float, float]],
    least_s: float,
) -> list[tuple[float, float]]:
    """Stretches of ``bounds`` between consecutive words (and before the first, after the
    last) that hold at least ``least_s`` of ``speech`` (VAD's speech, pads taken off): speech
    Whisper wrote nothing for. Each stretch runs from the word before to the word after."""
    speech = [(s, e) for s, e in speech if e > s]
    edges = [bounds[0], *(x for word in words for x in (word.start, word.end)), bounds[1]]
    holes = []
    for index in range(0, len(edges), 2):
        gap_start, gap_end = edges[index], edges[index + 1]
        if gap_end - gap_start < least_s:
            continue
        covered = sum(max(0.0, min(gap_end, e) - max(gap_start, s)) for s, e in speech)
        if covered >= least_s:
            holes.append((gap_start, gap_end))
    return holes


def splice(words: list[Word], found: Sequence[Word]) -> list[Word]:
    """``words`` with the words of a second decode of a stretch between two of them added in
    time order. A word at either edge of ``found`` that repeats its neighbour (the stretch
    was cut through a word the first decode had) is dropped."""
    if not found:
        return words
    merged = sorted([*words, *found], key=lambda word: (word.start, word.end))
    out: list[Word] = []
    originals = {id(word) for word in words}
    for word in merged:
        if out and _same(out[-1], word) and (id(out[-1]) in originals) != (id(word) in originals):
            if id(word) in originals:
                out[-1] = word  # keep the first decode's copy: it is in context
            continue
        out.append(word)
    return out


def _same(a: Word, b: Word) -> bool:
    def bare(text: str) -> str:
        return "".join(char for char in text.lower() if char.isalnum())

    return bare(a.text) == bare(b.text) and bare(a.text) != "" and b.start < a.end + 0.5


def sentences(words: Sequence[Word], max_s: float = SEGMENT_MAX_S) -> list[list[Word]]:
    """The words cut into sentences at sentence-ending punctuation; a sentence longer than
    ``max_s`` is cut again at its longest pause between words (until none is longer, or no
    pause is left to cut at)."""
    out: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        current.append(word)
        if ends_sentence(word.text):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return [piece for sentence in out for piece in _cut_long(sentence, max_s)]


def _cut_long(words: list[Word], max_s: float) -> list[list[Word]]:
    if len(words) < 2 or words[-1].end - words[0].start <= max_s:
        return [words]

    # The longest pause wins; among near-equal pauses, a comma and then the middle.
    def score(index: int) -> tuple[float, bool, float]:
        pause = words[index + 1].start - words[index].end
        comma = words[index].text.rstrip().endswith((",", "、", "，", ";", ":"))
        middle = -abs((words[index].end - words[0].start) - (words[-1].end - words[index].end))
        return (round(pause, 1), comma, middle)

    index = max(range(len(words) - 1), key=score)
    if words[index + 1].start - words[index].end < MIN_CUT_PAUSE_S and not score(index)[1]:
        # Spoken without a break: cut where it halves the time rather than not at all.
        index = max(range(len(words) - 1), key=lambda i: score(i)[2])
    return _cut_long(words[: index + 1], max_s) + _cut_long(words[index + 1 :], max_s)
