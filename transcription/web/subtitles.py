"""Subtitle cues from transcript segments: short enough to read, cut where speech breaks.

Segments are whole sentences (up to about 30 s), too long for one subtitle. ``build_cues`` cuts
them by common subtitle practice (Netflix, BBC and EBU style guides):

- at most ``max_lines`` (2) lines a cue, each at most 42 characters for Latin text or 20 for
  Korean (a cue whose letters are at least half Hangul, or CJK); ``max_chars`` overrides both;
- a cue lasts at most ``max_duration`` (7 s) and at least ``min_duration`` (1 s): a short cue's
  end is extended toward the next cue's start (never more than the minimum asks), else it is
  merged with a neighbour, or the two are cut again elsewhere, when the result keeps the rules;
  only then does it start a little before its first word, never before the previous cue ends;
- a cue is cut at sentence punctuation first, then at clause punctuation, then (among cuts
  that need the fewest cues) at the longest pause between words, then nearest the middle;
  never inside a word unless the word alone is longer than a line, and not where a piece
  would be shorter than the minimum while another cut would not;
- no cue spans a pause of 2 s or more, cues never overlap and come in time order;
- inside a cue, text that does not fit one line is broken at spaces (Korean eojeol are
  space-separated) into lines as balanced as possible, the bottom one the longer on a tie;
- a cue holds one speaker's words (segments may name a ``speaker``): cues of two speakers
  are never merged, and each cue carries its speaker; with ``speaker_names``, the first cue
  of each change of speaker starts with ``Name:``, counted in the line it is on.

Word times come from ``timed_words.py``: Whisper's words where they still spell the text,
else the text spread over the segment's time.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from transcription.web.timed_words import TimedWord, field_of, timed_words

LATIN_CHARS = 42
WIDE_CHARS = 20  # Hangul and CJK: each character is about two Latin ones wide
PAUSE_SPLIT_S = 2.0  # a pause this long always ends a cue
# SRT and WebVTT write milliseconds: both ends of a cue may round by half a millisecond.
TIME_TOLERANCE_S = 0.0015

_SENTENCE_END = frozenset(".?!…。？！")
_CLAUSE_END = frozenset(",;:、，；：—–")
_CLOSERS = "\"'”’)]}»」』"
_PUNCT_BREAK_BONUS = 3  # characters of balance a line break after punctuation is worth
_GAP_STEP_S = 0.2  # pauses this close count as equally long when choosing a cut
_EPS = 1e-6  # float sums: 1.0 s built from word times may come out 0.9999999


@dataclass
class Cue:
    start: float
    end: float
    lines: list[str]
    speaker: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class _Draft:
    units: list[TimedWord]
    start: float
    end: float
    speaker: str | None = None

    @classmethod
    def of(cls, units: list[TimedWord], speaker: str | None = None) -> _Draft:
        return cls(units, units[0].start, max(u.end for u in units), speaker)


@dataclass(frozen=True)
class _Rules:
    max_chars: int | None
    max_duration: float
    min_duration: float
    max_lines: int


# Hangul syllables, jamo and compatibility jamo, kana, CJK ideographs.
_WIDE = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\u3040-\u30ff\u3400-\u9fff]")
_LETTER = re.compile(r"[^\W_]")


@functools.lru_cache(maxsize=8192)
def _letters(text: str) -> tuple[int, int]:
    """(letters and digits, of which Hangul or CJK) in ``text``."""
    return len(_LETTER.findall(text)), len(_WIDE.findall(text))


def _limit_of(letters: int, wide: int, max_chars: int | None) -> int:
    if max_chars:
        return max_chars
    return WIDE_CHARS if letters and wide * 2 >= letters else LATIN_CHARS


def line_limit(text: str, max_chars: int | None = None) -> int:
    """Characters a line may hold: ``max_chars`` when given, else 20 when at least half of the
    letters and digits of ``text`` are Hangul (or CJK), else 42."""
    return _limit_of(*_letters(text), max_chars)


def _units_limit(units: list[TimedWord], rules: _Rules) -> int:
    """``line_limit`` of the units' text, from each word's counts (words repeat)."""
    counts = [_letters(u.text) for u in units]
    return _limit_of(sum(c[0] for c in counts), sum(c[1] for c in counts), rules.max_chars)


def _join(units: list[TimedWord]) -> str:
    return "".join(u.text if k == 0 or u.glue else " " + u.text for k, u in enumerate(units))


def _cut_long(unit: TimedWord, rules: _Rules) -> list[TimedWord]:
    """A word longer than a line, hard cut into equal pieces that each fit one."""
    limit = line_limit(unit.text, rules.max_chars)
    if len(unit.text) <= limit:
        return [unit]
    count = math.ceil(len(unit.text) / limit)
    size = math.ceil(len(unit.text) / count)
    span, pieces = unit.end - unit.start, []
    for offset in range(0, len(unit.text), size):
        text = unit.text[offset : offset + size]
        piece = TimedWord(
            text,
            unit.start + span * offset / len(unit.text),
            unit.start + span * (offset + len(text)) / len(unit.text),
            glue=unit.glue or offset > 0,
        )
        pieces += _cut_long(piece, rules)
    return pieces


# --- cutting a segment into cues ------------------------------------------------------------


def _greedy_lines(units: list[TimedWord], width: int) -> list[list[TimedWord]]:
    """Fill lines up to ``width``: the fewest lines any breaking at spaces can give."""
    lines: list[list[TimedWord]] = []
    length = 0
    for unit in units:
        added = len(unit.text) + (0 if unit.glue else 1)
        if lines and length + added <= width:
            lines[-1].append(unit)
            length += added
        else:
            lines.append([unit])
            length = len(unit.text)
    return lines


def _strength(text: str) -> int:
    """2 after a sentence's end, 1 after a clause's, else 0."""
    text = text.rstrip(_CLOSERS)
    if text and text[-1] in _SENTENCE_END:
        return 2
    if text and text[-1] in _CLAUSE_END:
        return 1
    return 0


def _layout(units: list[TimedWord], rules: _Rules) -> list[str] | None:
    """The cue's lines: one when it fits, else the fewest, balanced; None when it cannot fit."""
    limit = _units_limit(units, rules)
    if any(len(u.text) > limit for u in units):
        return None
    fewest = _greedy_lines(units, limit)
    if len(fewest) > rules.max_lines:
        return None
    if len(fewest) == 1:
        return [_join(units)]
    if len(fewest) == 2:
        best: tuple | None = None
        for k in range(1, len(units)):
            top, bottom = _join(units[:k]), _join(units[k:])
            if max(len(top), len(bottom)) > limit:
                continue
            after_tag = units[k - 1].tag  # a name alone on a line, only when nothing else fits
            bonus = _PUNCT_BREAK_BONUS if _strength(units[k - 1].text) and not after_tag else 0
            key = (after_tag, max(len(top), len(bottom)) - bonus, len(top) > len(bottom))
            if best is None or key < best[0]:
                best = (key, [top, bottom])
        assert best is not None  # the greedy fill found one
        return best[1]
    # Three or more lines: the narrowest width that needs no more lines, filled greedily.
    width = max(len(u.text) for u in units)
    while len(_greedy_lines(units, width)) > len(fewest):
        width += 1
    return [_join(line) for line in _greedy_lines(units, width)]


def _duration(units: list[TimedWord]) -> float:
    return max(u.end for u in units) - units[0].start


def _at_least(seconds: float, minimum: float) -> bool:
    return seconds >= minimum - _EPS


def _fits(units: list[TimedWord], rules: _Rules) -> bool:
    if _duration(units) > rules.max_duration + _EPS:
        return False
    limit = _units_limit(units, rules)
    if any(len(u.text) > limit for u in units):
        return False
    return len(_greedy_lines(units, limit)) <= rules.max_lines


def _cues_needed(units: list[TimedWord], rules: _Rules) -> int:
    if len(units) == 1 or _fits(units, rules):
        return 1
    capacity = _units_limit(units, rules) * rules.max_lines
    return max(
        2,
        math.ceil(len(_join(units)) / capacity),
        math.ceil(_duration(units) / rules.max_duration),
    )


def _cut_score(units: list[TimedWord], k: int, rules: _Rules) -> tuple:
    left, right = units[:k], units[k:]
    before, after = units[k - 1], units[k]
    # The left piece may run on into the pause after it; the right one is what it is.
    long_enough = _at_least(after.start - left[0].start, rules.min_duration) + _at_least(
        _duration(right), rules.min_duration
    )
    strength = _strength(before.text)
    pause = round(max(0.0, after.start - before.end) / _GAP_STEP_S)
    left_chars, right_chars = len(_join(left)), len(_join(right))
    balance = min(left_chars, right_chars) / (left_chars + right_chars)
    needed = _cues_needed(left, rules) + _cues_needed(right, rules)
    # Inside a cut word, or between a speaker's name and their words, only when there is
    # nothing else (the word alone is the cue).
    return (not (after.glue or before.tag), long_enough, strength, -needed, pause, balance)


def _split(units: list[TimedWord], rules: _Rules) -> list[list[TimedWord]]:
    if len(units) == 1 or _fits(units, rules):
        return [units]
    k = max(range(1, len(units)), key=lambda k: _cut_score(units, k, rules))
    return _split(units[:k], rules) + _split(units[k:], rules)


def _runs(units: list[TimedWord]) -> list[list[TimedWord]]:
    """Units cut at every pause of ``PAUSE_SPLIT_S`` or more."""
    runs: list[list[TimedWord]] = []
    heard_until = -math.inf
    for unit in units:
        if runs and unit.start - heard_until < PAUSE_SPLIT_S:
            runs[-1].append(unit)
        else:
            runs.append([unit])
        heard_until = max(heard_until, unit.end)
    return runs


# --- cues across the transcript -------------------------------------------------------------


def _joinable(first: _Draft, second: _Draft) -> bool:
    if first.speaker != second.speaker:
        return False
    return second.units[0].start - max(u.end for u in first.units) < PAUSE_SPLIT_S


def _try_merge(drafts: list[_Draft], k: int, rules: _Rules) -> bool:
    """Absorb the short cue ``k`` into a neighbour, or cut the two again so that neither is
    short. The nearer neighbour is tried first. True when ``drafts`` changed."""
    pairs = [pair for pair in ((k - 1, k), (k, k + 1)) if pair[0] >= 0 and pair[1] < len(drafts)]
    pairs.sort(key=lambda p: drafts[p[1]].start - drafts[p[0]].end)
    for i, j in pairs:
        first, second = drafts[i], drafts[j]
        if not _joinable(first, second):
            continue
        units = first.units + second.units
        end = max(first.end, second.end)
        if _fits(units, rules) and end - first.start <= rules.max_duration + _EPS:
            drafts[i : j + 1] = [_Draft(units, first.start, end, first.speaker)]
            return True
        pieces = _split(units, rules)
        if len(pieces) != 2 or len(pieces[0]) == len(first.units):
            continue  # the same cut again would change nothing
        following = drafts[j + 1].start if j + 1 < len(drafts) else math.inf
        head, tail = _Draft.of(pieces[0], first.speaker), _Draft.of(pieces[1], first.speaker)
        head.start = min(head.start, first.start)
        room = min(following, tail.start + rules.min_duration) - tail.start
        if _at_least(tail.start - head.start, rules.min_duration) and _at_least(
            room, rules.min_duration
        ):
            head.end = min(head.end, tail.start)
            tail.end = min(max(tail.end, tail.start + rules.min_duration), following)
            drafts[i : j + 1] = [head, tail]
            return True
    return False


def _settle(drafts: list[_Draft], rules: _Rules) -> list[_Draft]:
    """Time order, no overlaps, no cue longer than the maximum or (where avoidable) shorter
    than the minimum."""
    drafts.sort(key=lambda d: d.start)
    for previous, draft in zip(drafts, drafts[1:], strict=False):
        if draft.start < previous.end:
            previous.end = max(previous.start, draft.start)
    for draft in drafts:
        # Only a single word heard for longer than the maximum: keep its end, where it is said.
        draft.start = max(draft.start, draft.end - rules.max_duration)
    # Every merge removes a cue and every re-cut a short one without making another, so
    # this ends; the budget only guards against a mistake in that reasoning.
    k, budget = 0, 4 * len(drafts) + 16
    while k < len(drafts):
        draft = drafts[k]
        if _at_least(draft.end - draft.start, rules.min_duration):
            k += 1
            continue
        following = drafts[k + 1].start if k + 1 < len(drafts) else math.inf
        draft.end = max(draft.end, min(draft.start + rules.min_duration, following))
        if _at_least(draft.end - draft.start, rules.min_duration):
            k += 1
            continue
        if budget > 0 and _try_merge(drafts, k, rules):
            budget -= 1
            k = max(0, k - 1)
            continue
        _borrow(drafts, k, rules)
        k += 1
    for previous, draft in zip(drafts, drafts[1:], strict=False):
        # A safety net: nothing above should leave an overlap.
        draft.start = max(draft.start, previous.end)
        draft.end = max(draft.end, draft.start)
    return drafts


def _borrow(drafts: list[_Draft], k: int, rules: _Rules) -> None:
    """A short cue that no neighbour could take in starts a little before its first word:
    in the pause before it, then in time the previous cue can spare; last, the next cue
    starts a little after its first word, as far as it can spare."""
    draft = drafts[k]
    earliest = drafts[k - 1].end if k else 0.0
    draft.start = min(draft.start, max(earliest, draft.end - rules.min_duration))
    for neighbour in (k - 1, k + 1):
        need = rules.min_duration - (draft.end - draft.start)
        if need <= _EPS or not 0 <= neighbour < len(drafts):
            continue
        # Reached here, the cue already touches both neighbours.
        other = drafts[neighbour]
        take = min(need, other.end - other.start - rules.min_duration)
        if take <= 0:
            continue
        if neighbour < k:
            other.end -= take
            draft.start = other.end
        else:
            other.start += take
            draft.end = other.start


def speaker_name(segment: Any) -> str | None:
    """The name of a segment's ``speaker`` (a string, or a row whose ``str`` is its name) on
    one line, or None."""
    value = field_of(segment, "speaker")
    name = " ".join(str(value).split()) if value is not None else ""
    return name or None


def build_cues(
    segments: Iterable[Any],
    *,
    max_chars: int | None = None,
    max_duration: float = 7.0,
    min_duration: float = 1.0,
    max_lines: int = 2,
    speaker_names: bool = False,
) -> list[Cue]:
    """Subtitle cues for ``segments`` (rows, dicts or objects with ``start``, ``end``,
    ``text`` and optionally ``words`` and ``speaker``), by the rules in this module's
    docstring; ``speaker_names`` writes ``Name:`` where the speaker changes. Segments without
    text give no cue. Raises ValueError for limits that cannot hold together."""
    if max_chars is not None and (isinstance(max_chars, bool) or int(max_chars) < 1):
        raise ValueError(f"max_chars must be a positive whole number, got {max_chars!r}")
    if not 0 < max_duration < math.inf:
        raise ValueError(f"max_duration must be a positive number of seconds, got {max_duration}")
    if not 0 <= min_duration <= max_duration:
        raise ValueError(
            f"min_duration must be between 0 and max_duration ({max_duration}), got {min_duration}"
        )
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    rules = _Rules(
        int(max_chars) if max_chars is not None else None,
        float(max_duration),
        float(min_duration),
        int(max_lines),
    )
    drafts = []
    previous: str | None = None
    for segment in segments:
        words = timed_words(segment)
        if not words:
            continue
        speaker = speaker_name(segment)
        if speaker_names and speaker and speaker != previous:
            words.insert(0, TimedWord(f"{speaker}:", words[0].start, words[0].start, tag=True))
        previous = speaker
        units = [piece for unit in words for piece in _cut_long(unit, rules)]
        for run in _runs(units):
            drafts += [_Draft.of(piece, speaker) for piece in _split(run, rules)]
    cues = []
    for draft in _settle(drafts, rules):
        lines = _layout(draft.units, rules)
        if lines is None:  # cannot happen for a cut piece; never lose text over it
            limit = _units_limit(draft.units, rules)
            lines = [_join(line) for line in _greedy_lines(draft.units, limit)]
        cues.append(Cue(round(draft.start, 3), round(draft.end, 3), lines, draft.speaker))
    return cues


def cue_violations(
    cues: Iterable[Any],
    *,
    max_chars: int | None = None,
    max_duration: float = 7.0,
    min_duration: float = 1.0,
    max_lines: int = 2,
) -> list[str]:
    """What in ``cues`` (``Cue`` objects, or anything with ``start``, ``end`` and ``lines``
    or ``text``) breaks the rules, one readable line each; empty when nothing does.

    The line limit of a cue is chosen from its own text as ``build_cues`` does. Times are
    compared with a tolerance of ``TIME_TOLERANCE_S`` (1.5 ms), the rounding of the
    millisecond timestamps SRT and WebVTT write; lengths and line counts have none. A pause
    inside a cue cannot be checked here (cues carry no word times).
    """
    problems = []
    previous: tuple[float, float] | None = None
    for number, cue in enumerate(cues, start=1):
        start, end = float(field_of(cue, "start")), float(field_of(cue, "end"))
        lines = field_of(cue, "lines")
        if lines is None:
            lines = str(field_of(cue, "text", "") or "").split("\n")
        where = f"cue {number} ({start:.3f}-{end:.3f} s)"
        if not any(line.strip() for line in lines):
            problems.append(f"{where}: no text")
        elif any(not line.strip() for line in lines):
            problems.append(f"{where}: an empty line")
        if len(lines) > max_lines:
            problems.append(f"{where}: {len(lines)} lines, more than {max_lines}")
        limit = line_limit(" ".join(lines), max_chars)
        for line in lines:
            if len(line) > limit:
                problems.append(f"{where}: line {line!r} has {len(line)} characters, over {limit}")
        if end < start - TIME_TOLERANCE_S:
            problems.append(f"{where}: ends before it starts")
        elif end - start > max_duration + TIME_TOLERANCE_S:
            problems.append(f"{where}: lasts {end - start:.3f} s, longer than {max_duration} s")
        elif end - start < min_duration - TIME_TOLERANCE_S:
            problems.append(f"{where}: lasts {end - start:.3f} s, shorter than {min_duration} s")
        if previous is not None:
            if start < previous[0] - TIME_TOLERANCE_S:
                problems.append(f"{where}: starts before the cue before it")
            elif start < previous[1] - TIME_TOLERANCE_S:
                problems.append(
                    f"{where}: overlaps the cue before it, which ends {previous[1]:.3f}"
                )
        previous = (start, end)
    return problems
