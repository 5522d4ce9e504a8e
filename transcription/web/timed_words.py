"""A segment's words with their times, for cutting it into subtitle cues.

Whisper writes words (``{"word", "start", "end", "probability"}``, a leading space before
each new word) on the recording's timeline; ``timed_words`` turns them into space-separated
words (Korean eojeol) with times. When they no longer spell the segment's text (someone
corrected it), words that still match keep their times and a changed stretch shares the time
of the words it replaced; a segment without words spreads its text over its span by length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any


@dataclass
class TimedWord:
    """A space-separated word (eojeol) with its time; ``glue``: no space before it (a piece
    of a word cut because it was longer than a line); ``tag``: a speaker's name written
    before their words (``Name:``), never left alone at the end of a cue or line."""

    text: str
    start: float
    end: float
    glue: bool = False
    tag: bool = False


def field_of(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _heard_units(words: Any) -> list[TimedWord] | None:
    """Whisper's words joined into space-separated units; None when there are none or one
    has no usable time. A word without a leading space continues the previous one."""
    if not words or isinstance(words, (str, bytes)):
        return None
    units: list[TimedWord] = []
    for word in words:
        text = field_of(word, "word")
        start, end = _finite(field_of(word, "start")), _finite(field_of(word, "end"))
        if not isinstance(text, str) or start is None or end is None:
            return None
        parts = text.split()
        if not parts:
            continue
        if units:
            start = max(start, units[-1].start)
        end = max(start, end)
        if units and not text[0].isspace():
            units[-1].text += parts.pop(0)
            units[-1].end = max(units[-1].end, end)
        units.extend(TimedWord(part, start, end) for part in parts)
    return units or None


def _spread(tokens: list[str], start: float, end: float) -> list[TimedWord]:
    """Tokens over ``start``..``end`` in proportion to their length, a space between two
    counting as one character: the first starts at ``start``, the last ends at ``end``."""
    total = sum(len(token) for token in tokens) + len(tokens) - 1
    span, done, units = max(0.0, end - start), 0, []
    for token in tokens:
        units.append(
            TimedWord(
                token, start + span * done / total, start + span * (done + len(token)) / total
            )
        )
        done += len(token) + 1
    return units


def _align(tokens: list[str], heard: list[TimedWord], start: float, end: float) -> list[TimedWord]:
    """Times for corrected text: unchanged words keep theirs, a changed stretch shares the
    time of the words it replaced (or the gap where it was inserted)."""
    matcher = SequenceMatcher(None, [u.text for u in heard], tokens, autojunk=False)
    units: list[TimedWord] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            units += [
                TimedWord(token, h.start, h.end)
                for token, h in zip(tokens[j1:j2], heard[i1:i2], strict=True)
            ]
        elif tag in ("replace", "insert"):
            if i1 < i2:
                low, high = heard[i1].start, max(h.end for h in heard[i1:i2])
            else:
                low = heard[i1 - 1].end if i1 else min(start, heard[0].start)
                high = heard[i1].start if i1 < len(heard) else max(end, heard[-1].end)
            if units:
                low = max(low, units[-1].start)
            units += _spread(tokens[j1:j2], low, max(low, high))
        # "delete": words taken out leave their time as a pause.
    return units


def timed_words(segment: Any) -> list[TimedWord]:
    """The words of ``segment`` (``start``, ``end``, ``text`` and optionally ``words``) with
    times that never run backwards; none for a segment without text."""
    tokens = str(field_of(segment, "text", "") or "").split()
    if not tokens:
        return []
    start = _finite(field_of(segment, "start", 0.0)) or 0.0
    end = max(start, _finite(field_of(segment, "end", start)) or start)
    heard = _heard_units(field_of(segment, "words"))
    if heard is None:
        units = _spread(tokens, start, end)
    elif [u.text for u in heard] == tokens:
        units = heard
    else:
        units = _align(tokens, heard, start, end)
    for previous, unit in zip(units, units[1:], strict=False):
        # Overlapping word times (an insertion where none fit) must not run backwards.
        unit.start = max(unit.start, previous.start)
        unit.end = max(unit.end, unit.start)
    return units
