"""Character error rate for Korean, as the evaluation README asks.

References are Hangul only with numbers spelled out, so hypotheses are compared
without whitespace and punctuation, once as they are and once with Arabic
numerals read as Sino-Korean numbers (``2018년`` -> ``이천십팔년``).
"""

from __future__ import annotations

import re
import unicodedata

_DIGITS = "영일이삼사오육칠팔구"
_SMALL_UNITS = ["", "십", "백", "천"]
_LARGE_UNITS = ["", "만", "억", "조"]


def sino_korean(number: int) -> str:
    """1 -> 일, 10 -> 십, 2018 -> 이천십팔, 30000 -> 삼만."""
    if number == 0:
        return "영"
    groups = []
    while number:
        groups.append(number % 10000)
        number //= 10000
    words = []
    for power in range(len(groups) - 1, -1, -1):
        group = groups[power]
        if not group:
            continue
        text = ""
        for position in range(3, -1, -1):
            digit = group // 10**position % 10
            if digit:
                # 십, 백, 천 are read without 일 in front (십 not 일십), except in the ones place.
                text += ("" if digit == 1 and position else _DIGITS[digit]) + _SMALL_UNITS[position]
        if power == 1 and text == "일":
            text = ""  # 만 rather than 일만
        words.append(text + _LARGE_UNITS[power])
    return "".join(words)


def read_numerals(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    return re.sub(r"\d+", lambda m: sino_korean(int(m.group())), text)


def normalise(text: str, *, numerals: bool = False) -> str:
    if numerals:
        text = read_numerals(text)
    return "".join(
        ch
        for ch in unicodedata.normalize("NFC", text)
        if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    ).lower()


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def char_edits(reference: str, hypothesis: str) -> tuple[int, int, int]:
    """The normalised reference's length and the edits to the hypothesis, as written and
    with Arabic numerals read as Sino-Korean (the benchmarks total these over many files:
    a CER is total edits over total reference characters). With no reference, every
    character of the hypothesis counts as an edit."""
    ref = normalise(reference)
    edits = []
    for numerals in (False, True):
        hyp = normalise(hypothesis, numerals=numerals)
        edits.append(edit_distance(ref, hyp) if ref else len(hyp))
    return len(ref), edits[0], edits[1]


def cer(reference: str, hypothesis: str, *, numerals: bool = False) -> float:
    ref = normalise(reference)
    hyp = normalise(hypothesis, numerals=numerals)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)
