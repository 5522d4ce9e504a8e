"""Subtitle cues (transcription/web/subtitles.py): where sentences are cut, how lines are
broken, how long cues last, and ``cue_violations``, which the rest of these tests and the
readability benchmark trust to find what breaks the rules."""

from __future__ import annotations

import random

import pytest

from transcription.web.subtitles import Cue, build_cues, cue_violations, line_limit


def spoken(text: str, start: float, *, per_char=0.22, gap=0.06, pauses=None) -> list[dict]:
    """Whisper-style words for ``text``: each lasts ``per_char`` seconds a character, with
    ``gap`` between words and ``pauses[i]`` seconds before word ``i`` instead."""
    pauses = pauses or {}
    words, t = [], start
    for i, token in enumerate(text.split()):
        if i:
            t += pauses.get(i, gap)
        end = t + per_char * len(token)
        words.append(
            {"word": " " + token, "start": round(t, 3), "end": round(end, 3), "probability": 0.9}
        )
        t = end
    return words


def segment(text: str, words: list[dict] | None, start=None, end=None) -> dict:
    return {
        "start": words[0]["start"] if start is None else start,
        "end": words[-1]["end"] if end is None else end,
        "text": text,
        "words": words,
    }


def said(cues: list[Cue]) -> str:
    return " ".join(" ".join(cue.lines) for cue in cues)


KO = (
    "오늘 회의에서는 다음 분기 신제품 출시 일정과 마케팅 전략에 대해 논의하고, 각 부서의 "
    "예산 배분 문제를 함께 검토한 뒤 최종 결정을 내리도록 하겠습니다."
)
EN = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def test_a_25_second_korean_sentence_is_cut_at_its_clause():
    words = spoken(KO, 3.0, per_char=0.32, pauses={2: 0.6, 11: 0.9, 15: 1.4, 19: 0.5})
    assert words[-1]["end"] - words[0]["start"] > 24
    cues = build_cues([segment(KO, words)])
    assert [cue.lines for cue in cues] == [
        ["오늘 회의에서는 다음", "분기 신제품 출시"],
        ["일정과 마케팅 전략에 대해 논의하고,"],
        ["각 부서의 예산 배분", "문제를 함께 검토한"],
        ["뒤 최종 결정을 내리도록 하겠습니다."],
    ]
    assert cue_violations(cues) == []
    assert said(cues) == KO
    # Cues start and end on the words' own times.
    starts = {w["start"] for w in words}
    ends = {w["end"] for w in words}
    assert all(cue.start in starts and cue.end in ends for cue in cues)
    assert cues[2].start == words[11]["start"]  # after the 0.9 s pause that follows the comma


def test_english_is_cut_at_its_commas_with_balanced_lines():
    words = spoken(EN, 0.3, per_char=0.07, gap=0.08, pauses={2: 0.3, 5: 0.9, 14: 0.6})
    cues = build_cues([segment(EN, words)])
    assert [cue.lines for cue in cues] == [
        ["And so, my fellow Americans,"],
        ["ask not what your country can do for you,", "ask what you can do for your country."],
    ]
    assert cue_violations(cues) == []
    narrow = build_cues([segment(EN, words)], max_chars=20)
    assert cue_violations(narrow, max_chars=20) == []
    assert max(len(line) for cue in narrow for line in cue.lines) <= 20
    assert len(narrow) > len(cues)
    assert said(narrow) == EN
    # Two lines are balanced: broken near the middle, not where the first line is full.
    text = "The quarterly numbers look much better than we expected this time"
    (cue,) = build_cues([segment(text, spoken(text, 0.0, per_char=0.05))])
    top, bottom = cue.lines
    assert abs(len(top) - len(bottom)) <= 8, cue.lines
    assert len(top) <= len(bottom)


def test_a_segment_without_words_is_spread_over_its_time():
    text = (
        "지난 분기 매출은 전년 대비 크게 늘었지만 물류 비용이 함께 올라서 영업이익은 "
        "기대에 미치지 못했습니다"
    )
    cues = build_cues([segment(text, None, start=10.0, end=22.0)])
    assert len(cues) >= 2
    assert cue_violations(cues) == []
    assert said(cues) == text
    assert cues[0].start == 10.0 and cues[-1].end == 22.0
    # Time in proportion to the characters shown: no cue gets far more than its share.
    total = len(text.replace(" ", ""))
    for cue in cues:
        share = sum(len(line.replace(" ", "")) for line in cue.lines) / total
        assert cue.end - cue.start == pytest.approx(12.0 * share, abs=0.8)
    # Missing words and an empty list are the same thing.
    assert build_cues([segment(text, [], start=10.0, end=22.0)]) == cues


def test_a_corrected_segment_keeps_the_times_of_the_words_that_still_match():
    heard = "엔비디아 에이치 백 서버를 다음 달까지 두 배로 증설합니다. 판교 사무실에서 그 일정을 다시 논의하겠습니다."
    words = spoken(heard, 5.0, per_char=0.2, pauses={9: 1.5})
    corrected = heard.replace("에이치 백", "H100")
    assert corrected.split() != [w["word"].strip() for w in words]
    cues = build_cues([segment(corrected, words)])
    assert said(cues) == corrected
    assert cue_violations(cues) == []
    # The cut falls in the 1.5 s pause, on the heard times (spreading the text evenly over
    # the segment would put both elsewhere).
    first, second = cues
    assert first.end == words[8]["end"]
    assert second.start == words[9]["start"]
    assert first.start == words[0]["start"]
    # A correction that rewrote everything: the words' span, spread evenly.
    cues = build_cues([segment("전혀 다른 문장으로 바꿨습니다", words)])
    assert (cues[0].start, cues[-1].end) == (words[0]["start"], words[-1]["end"])


def test_a_word_longer_than_a_line_is_cut_and_nothing_else_is():
    long_word = "대한민국정보통신기술진흥센터산업기술평가관리원연구개발사업단"  # 30 characters
    text = f"담당 기관은 {long_word} 입니다"
    cues = build_cues([segment(text, spoken(text, 0.0, per_char=0.12))])
    assert cue_violations(cues) == []
    lines = [line for cue in cues for line in cue.lines]
    assert all(len(line) <= 20 for line in lines)
    tokens = [token for line in lines for token in line.split()]
    pieces = [token for token in tokens if token not in ("담당", "기관은", "입니다")]
    assert len(tokens) - len(pieces) == 3  # the other words are whole
    assert "".join(pieces) == long_word and len(pieces) == 2  # cut once, in its middle
    assert [len(piece) for piece in pieces] == [15, 15]

    url = "https://example.com/reports/2024/quarterly/summary-final-version.pdf"  # 68
    cues = build_cues([segment(f"see {url} today", None, start=0.0, end=4.0)])
    assert cue_violations(cues) == []
    assert all(len(line) <= 42 for cue in cues for line in cue.lines)
    tokens = [token for cue in cues for line in cue.lines for token in line.split()]
    assert tokens[0] == "see" and tokens[-1] == "today"
    assert "".join(tokens[1:-1]) == url and len(tokens) == 4


def test_a_pause_of_two_seconds_always_ends_a_cue():
    def cues_with_pause(seconds: float) -> list[Cue]:
        text = "Yes, I know that it works."
        return build_cues([segment(text, spoken(text, 1.0, per_char=0.06, pauses={3: seconds}))])

    assert [cue.lines for cue in cues_with_pause(1.9)] == [["Yes, I know that it works."]]
    split = cues_with_pause(2.0)
    assert [cue.lines for cue in split] == [["Yes, I know"], ["that it works."]]
    assert split[0].end <= split[1].start - 1.0  # the short first cue grew, but not across
    assert cue_violations(split) == []


def test_short_cues_grow_merge_or_borrow_but_never_overlap():
    # Alone: extended to the minimum, no further.
    (cue,) = build_cues([segment("네.", [{"word": " 네.", "start": 4.0, "end": 4.3}])])
    assert (cue.start, cue.end) == (4.0, 5.0)
    # Followed closely: merged with the next sentence.
    yes = segment("네.", [{"word": " 네.", "start": 4.0, "end": 4.3}])
    then = segment("그렇게 하죠.", spoken("그렇게 하죠.", 4.5))
    (cue,) = build_cues([yes, then])
    assert cue.lines == ["네. 그렇게 하죠."]
    assert (cue.start, cue.end) == (4.0, then["end"])
    # Between two full cues with no gap: still a second on screen, nothing overlaps.
    before = spoken(KO, 0.0, per_char=0.3)
    short = [{"word": " 네.", "start": before[-1]["end"], "end": before[-1]["end"] + 0.3}]
    after = spoken(KO, short[0]["end"], per_char=0.3)
    segments = [segment(KO, before), segment("네.", short), segment(KO, after)]
    cues = build_cues(segments)
    assert cue_violations(cues) == []
    assert said(cues) == f"{KO} 네. {KO}"
    # Without any of that, the word alone would be a 0.3 s cue.
    assert cue_violations([Cue(short[0]["start"], short[0]["end"], ["네."])]) != []


def test_long_cues_are_capped_and_overlapping_segments_are_not_shown_together():
    # One word "heard" for 9 s (Whisper stretches a word over silence): its last 7 s.
    (cue,) = build_cues([segment("음", [{"word": " 음", "start": 1.0, "end": 10.0}])])
    assert (cue.start, cue.end) == (3.0, 10.0)
    text = "We will review the schedule again next week with the supplier and the shipping team"
    cues = build_cues([segment(text, spoken(text, 0.0, per_char=0.1))], max_duration=3.0)
    assert len(cues) >= 3 and cue_violations(cues, max_duration=3.0) == []
    first = segment("The supplier changed the date.", spoken("The supplier changed the date.", 0.0))
    second = segment("Again.", [{"word": " Again.", "start": first["end"] - 0.4, "end": 8.0}])
    cues = build_cues([second, first])  # out of order, and overlapping in time
    assert said(cues) == "The supplier changed the date. Again."
    assert cue_violations(cues) == []


def test_the_line_limit_follows_the_share_of_hangul():
    assert line_limit("엔비디아 H100 서버 증설") == 20  # 8 Hangul of 12 letters and digits
    assert line_limit("GPU 서버 the quarterly review") == 42
    assert line_limit("会议将在下周举行") == 20
    assert line_limit("한국어", max_chars=30) == 30
    # The limit is the cue's own: a 30-character Korean line breaks it, an English one not.
    korean, english = "가" * 21, "a" * 21
    assert cue_violations([Cue(0.0, 2.0, [korean])]) != []
    assert cue_violations([Cue(0.0, 2.0, [english])]) == []
    assert cue_violations([Cue(0.0, 2.0, [korean])], max_chars=30) == []


def test_cue_violations_names_each_broken_rule():
    cues = [
        Cue(0.0, 2.0, ["one", "two", "three"]),
        Cue(2.0, 10.0, ["x" * 43]),
        Cue(10.0, 10.5, ["short"]),
        Cue(10.4, 12.0, ["overlaps"]),
        Cue(9.0, 11.0, ["out of order"]),
        Cue(20.0, 19.0, ["backwards"]),
        Cue(30.0, 31.0, ["", "blank"]),
        {"start": 40.0, "end": 41.0, "text": "   "},
    ]
    problems = cue_violations(cues)
    expected = [
        "cue 1 (0.000-2.000 s): 3 lines, more than 2",
        "cue 2 (2.000-10.000 s): line 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' has 43 "
        "characters, over 42",
        "cue 2 (2.000-10.000 s): lasts 8.000 s, longer than 7.0 s",
        "cue 3 (10.000-10.500 s): lasts 0.500 s, shorter than 1.0 s",
        "cue 4 (10.400-12.000 s): overlaps the cue before it, which ends 10.500",
        "cue 5 (9.000-11.000 s): starts before the cue before it",
        "cue 6 (20.000-19.000 s): ends before it starts",
        "cue 7 (30.000-31.000 s): an empty line",
        "cue 8 (40.000-41.000 s): no text",
    ]
    assert problems == expected
    assert cue_violations(cues[:1], max_lines=3) == []
    # Millisecond rounding in SRT/VTT is tolerated, a hundredth of a second is not.
    assert cue_violations([Cue(0.0, 0.9995, ["a"]), Cue(0.999, 2.0, ["b"])]) == []
    assert cue_violations([Cue(0.0, 0.99, ["a"])]) != []
    assert cue_violations([Cue(0.0, 1.0, ["a"]), Cue(0.99, 2.0, ["b"])]) != []


def test_limits_that_cannot_hold_are_refused():
    with pytest.raises(ValueError, match="min_duration"):
        build_cues([], max_duration=2.0, min_duration=3.0)
    with pytest.raises(ValueError, match="max_chars"):
        build_cues([], max_chars=0)
    with pytest.raises(ValueError, match="max_duration"):
        build_cues([], max_duration=float("nan"))
    assert build_cues([{"start": 0, "end": 1, "text": "  "}]) == []


# --- generated transcripts ------------------------------------------------------------------

KO_WORDS = [*KO.replace(",", "").replace(".", "").split(), "삼성전자의", "평택에", "판교"]
EN_WORDS = EN.replace(",", "").replace(".", "").split() + ["supplier", "shipping", "schedule"]
LONG_WORDS = [
    "https://example.com/reports/2024/q3/summary.pdf",
    "정보통신기술진흥센터산업기술평가원",
]


def generated_transcript(seed: int) -> list[dict]:
    """Sentences of up to 30 s in Korean, English or both: words of realistic length, short
    gaps, now and then a hesitation or a long pause, punctuation, a word longer than a line;
    some segments have no words, some were corrected after Whisper wrote them."""
    rng = random.Random(seed)
    vocabulary = rng.choice([KO_WORDS, EN_WORDS, KO_WORDS + EN_WORDS])
    t, segments = rng.uniform(0, 3), []
    for _ in range(rng.randint(1, 12)):
        words: list[dict] = []
        length = rng.uniform(0.3, 30.0)
        while not words or words[-1]["end"] - words[0]["start"] < length:
            token = rng.choice(LONG_WORDS) if rng.random() < 0.01 else rng.choice(vocabulary)
            token += rng.choices(["", ",", ".", "?"], weights=[88, 7, 4, 1])[0]
            roll = rng.random()
            gap = (
                rng.uniform(0.0, 0.15)
                if roll < 0.85
                else rng.uniform(0.3, 1.5)
                if roll < 0.97
                else rng.uniform(2.0, 4.0)
            )
            start = t + gap if words else t
            end = start + 0.1 + len(token) * rng.uniform(0.05, 0.12)
            words.append({"word": " " + token, "start": start, "end": end, "probability": 0.9})
            t = end
        item = segment("".join(w["word"] for w in words).strip(), words)
        kind = rng.random()
        if kind < 0.15:
            item["words"] = None
        elif kind < 0.3:
            tokens = item["text"].split()
            tokens[rng.randrange(len(tokens))] = rng.choice(["수정된", "corrected", "H100"])
            item["text"] = " ".join(tokens)
            item["edited"] = True
        segments.append(item)
        t += rng.choice([rng.uniform(0.0, 0.3), rng.uniform(0.3, 1.5), rng.uniform(2.0, 6.0)])
    return segments


RULES = [{}, {"max_chars": 16, "max_duration": 4.0}, {"max_chars": 60, "max_duration": 10.0}]


@pytest.mark.parametrize("rules", RULES, ids=["default", "narrow", "wide"])
def test_generated_transcripts_keep_every_rule(rules):
    for seed in range(60):
        segments = generated_transcript(seed)
        cues = build_cues(segments, **rules)
        assert cue_violations(cues, **rules) == [], seed
        # Nothing lost, nothing reordered (a word cut in pieces joins up again).
        shown = "".join(line for cue in cues for line in cue.lines).replace(" ", "")
        assert shown == "".join(s["text"] for s in segments).replace(" ", ""), seed
        # No cue is on screen across a pause of 2 s or more between heard words.
        heard = sorted(
            (w["start"], w["end"])
            for s in segments
            if s["words"] and not s.get("edited")
            for w in s["words"]
        )
        pauses, until = [], -1.0
        for start, end in heard:
            if until >= 0 and start - until >= 2.0:
                pauses.append((until, start))
            until = max(until, end)
        for before, after in pauses:
            assert not any(c.start < before and c.end > after for c in cues), (seed, before)
