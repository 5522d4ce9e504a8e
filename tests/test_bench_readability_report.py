"""The readability benchmark's scoring and report (bench/readability_report.py) on hand-made
segments whose figures are known: similarity, sentences, pauses spanned, word timings, where
the text ends, error rates against a baseline, and each target's verdict."""

from __future__ import annotations

import pytest

from bench.readability_report import (
    JFK_ID,
    baseline_of,
    end_gap,
    error_rate,
    joined_text,
    long_pauses,
    report,
    sentence_count,
    similarity,
    spanning_segments,
    summarise_file,
    timing_violations,
    worse_than,
)


def words(text: str, start: float, step: float = 0.5) -> list[dict]:
    """Whisper-style words (leading space) one ``step`` apart from ``start``."""
    return [
        {
            "word": " " + w,
            "start": start + i * step,
            "end": start + (i + 1) * step,
            "probability": 0.9,
        }
        for i, w in enumerate(text.split())
    ]


def seg(start: float, end: float, text: str, with_words: bool = True) -> dict:
    return {
        "start": start,
        "end": end,
        "text": text,
        "words": words(text, start) if with_words else None,
    }


# --- text ------------------------------------------------------------------------------


def test_joined_text_puts_single_spaces_between_segments():
    assert joined_text([seg(0, 1, " Hello,  there."), seg(1, 2, "How are you? ")]) == (
        "Hello, there. How are you?"
    )
    assert joined_text([]) == ""


def test_similarity_keeps_case_and_punctuation():
    assert similarity("Ask not.", "Ask not.") == 1.0
    assert similarity("", "") == 1.0
    assert similarity("abc", "") == 0.0
    # Two letters' case and one mark differ in 10 characters: 3 edits.
    assert similarity("ASK not! x", "Ask not, x") == pytest.approx(1 - 3 / 10)
    assert similarity("ask not", "ask not.") == pytest.approx(1 - 1 / 8)


def test_sentences_are_counted_by_their_ending_punctuation():
    fragments = "And so my fellow Americans! ASK NOT! What your country can do for you! Ask what."
    assert sentence_count(fragments) == 4
    whole = "And so my fellow Americans, ask not what your country can do for you, ask what."
    assert sentence_count(whole) == 1
    assert sentence_count("It cost 3.5 dollars in the U.S.A today") == 1  # no ending mark
    assert sentence_count("One. And a fragment") == 2
    assert sentence_count("빨리 가자. 어디로?") == 2
    assert sentence_count("   ") == 0


def test_error_rate_is_cer_for_korean_and_wer_for_english():
    korean = error_rate("ko", "ko", "이천십팔년완공", "2018년 완공.")
    assert korean["metric"] == "cer" and korean["ref_units"] == 7
    assert korean["edits_asis"] > 0 and korean["edits_numerals"] == 0
    english = error_rate("en", "en", "HE HOPED THERE WOULD BE STEW", "He hoped there'd be stew!")
    # he hoped [there would -> thered] be stew: one substitution and one deletion.
    assert english == {"metric": "wer", "ref_units": 6, "edits_asis": 2, "edits_numerals": 2}
    assert error_rate("none", "ko", "", "감사합니다") == {}


# --- timing ----------------------------------------------------------------------------


def test_the_text_ends_at_its_last_word_or_at_a_segment_without_words():
    with_words = [seg(0.0, 9.0, "one two three")]  # words end at 1.5 s
    assert end_gap(5.0, with_words) == pytest.approx(3.5)
    without = [seg(0.0, 4.5, "one two three", with_words=False)]
    assert end_gap(5.0, without) == pytest.approx(0.5)
    assert end_gap(5.0, []) == pytest.approx(5.0)  # nothing written: all of it is missing
    assert end_gap(None, with_words) is None


def test_long_pauses_lie_between_clips_speech():
    spans = [(1.0, 5.0), (6.5, 9.0), (11.0, 14.0), (19.0, 20.0)]
    assert long_pauses(spans) == [(9.0, 11.0), (14.0, 19.0)]  # 1.5 s is short
    assert long_pauses(spans, min_pause_s=1.0) == [(5.0, 6.5), (9.0, 11.0), (14.0, 19.0)]


def test_a_segment_spans_a_pause_when_it_starts_before_and_ends_after_it():
    pauses = [(9.0, 11.0)]
    segments = [
        seg(6.5, 9.2, "ends inside the pause"),
        seg(10.8, 14.0, "starts inside the pause"),
        seg(8.0, 11.5, "runs across it"),
    ]
    found = spanning_segments(segments, pauses)
    assert [hit["segment"] for hit in found] == [2]
    assert found[0]["pause"] == [9.0, 11.0]


def test_word_timings_pass_when_inside_their_segment_and_in_order():
    segments = [seg(0.0, 2.0, "one two three"), seg(2.0, 3.0, "four")]
    assert timing_violations(segments) == []
    # 5 ms before the segment is within the 10 ms tolerance.
    segments[1]["words"][0]["start"] = 1.995
    assert timing_violations(segments) == []


def test_word_timings_outside_out_of_order_or_missing_are_each_found():
    outside = [seg(0.0, 1.0, "one two three")]  # the third word starts at 1.0, its end
    outside[0]["words"][2]["start"] = 1.02
    assert len(timing_violations(outside)) == 1 and "outside" in timing_violations(outside)[0]
    backwards = [seg(0.0, 2.0, "one two"), seg(2.0, 3.0, "three")]
    backwards[0]["words"][1]["start"] = 0.0
    backwards[0]["words"][0]["start"] = 0.3
    found = timing_violations(backwards)
    assert len(found) == 1 and "before the word before it" in found[0]
    missing = [seg(0.0, 1.0, "words", with_words=False), seg(1.0, 2.0, "  ", with_words=False)]
    assert timing_violations(missing) == ["segment 0 has text and no word timings"]


# --- one file and the report -----------------------------------------------------------


def record(
    id_: str,
    kind: str,
    platform: list[dict],
    plain: list[dict],
    reference: str = "",
    speech_end_s: float | None = None,
    **extra,
) -> dict:
    return {
        "id": id_,
        "kind": kind,
        "language": "en" if kind == "en" else "ko",
        "reference": reference,
        "duration_s": 10.0,
        "speech_end_s": speech_end_s,
        "platform": {"wall_s": 2.0, "status": "done", "segments": platform},
        "plain": {"wall_s": 2.5, "status": "done", "segments": plain},
        **extra,
    }


def test_a_file_is_flagged_for_lost_words_an_early_end_and_unlike_text():
    plain = [seg(0.0, 6.0, "one two three four five six seven eight nine ten")]
    good = summarise_file(
        record("en1", "en", plain, plain, reference="ONE TWO THREE", speech_end_s=5.5)
    )
    assert good["word_ratio"] == 1.0 and good["similarity"] == 1.0
    assert not (good["flag_words"] or good["flag_end"] or good["flag_similarity"])
    assert good["platform"]["end_gap_s"] == pytest.approx(0.5)
    cut = [seg(0.0, 6.0, "one two three four five six seven eight nine")]  # 90%, ends 4.5 s
    bad = summarise_file(record("en1", "en", cut, plain, reference="ONE", speech_end_s=5.6))
    assert bad["word_ratio"] == pytest.approx(0.9) and bad["flag_words"]
    assert bad["platform"]["end_gap_s"] == pytest.approx(1.1) and bad["flag_end"]
    assert bad["similarity"] < 0.95 and bad["flag_similarity"]


def test_no_speech_clips_are_only_judged_by_their_words():
    row = summarise_file(record("quiet", "none", [], [seg(0, 2, "Thank you.")], speech_end_s=3.0))
    assert not (row["flag_words"] or row["flag_end"] or row["flag_similarity"])
    assert row["platform"]["words"] == 0 and row["plain"]["words"] == 2


def test_the_error_rate_is_compared_with_the_baseline_per_file():
    first = summarise_file(record("ko1", "ko", [seg(0, 2, "가나다라")], [], reference="가나다마"))
    baseline = baseline_of([first], "abc1234", {})
    assert baseline["files"]["ko1"]["rate_asis"] == pytest.approx(0.25)
    same = summarise_file(record("ko1", "ko", [seg(0, 2, "가나다라")], [], "가나다마"), baseline)
    assert same["baseline"]["rate_asis"] == pytest.approx(0.25) and not same["flag_cer"]
    worse = summarise_file(record("ko1", "ko", [seg(0, 2, "가나")], [], "가나다마"), baseline)
    assert worse["flag_cer"]
    assert worse_than(
        {"rate_asis": 0.2, "rate_numerals": 0.3}, {"rate_asis": 0.2, "rate_numerals": 0.2}
    )
    assert not worse_than({"rate_asis": 0.1, "rate_numerals": None}, {"rate_asis": 0.2})


JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you."


def run_rows(jfk_text: str, long_segments: list[dict], quiet_text: str, srt: dict | None):
    jfk = [seg(0.0, 8.0, jfk_text)]
    reference = "가나다"
    records = [
        record(JFK_ID, "en", jfk, [seg(0.0, 8.0, JFK_TEXT)], reference=JFK_TEXT, speech_end_s=7.5),
        record("ko1", "ko", [seg(0.0, 1.0, reference)], [seg(0.0, 1.0, reference)], reference),
        record("quiet", "none", [seg(0.0, 1.0, quiet_text)] if quiet_text else [], []),
        record(
            "long_ko",
            "long",
            long_segments,
            long_segments,
            reference="가나다라",
            pauses=[[3.0, 6.0]],
            srt=srt,
        ),
    ]
    rows = [summarise_file(r) for r in records]
    baseline = baseline_of(rows, "base123", {})
    return [summarise_file(r, baseline) for r in records]


META = {"commit": "abc", "model": "base", "beam_size": 5, "cores": 2, "baseline_commit": "base123"}
GOOD_LONG = [seg(1.0, 3.0, "가나"), seg(6.0, 8.0, "다라")]


def verdicts(result: dict) -> dict[str, str]:
    return {t["target"].split(":")[0]: t["result"] for t in result["targets"]}


def test_every_target_passes_on_a_good_run(capsys):
    rows = run_rows(JFK_TEXT, GOOD_LONG, "", {"available": True, "cues": 2, "violations": []})
    result = report(rows, META)
    found = verdicts(result)
    assert found.pop("make bench-batch still meets its targets") == "N/A"
    assert set(found.values()) == {"PASS"}, result["targets"]
    assert len(found) == 8
    assert result["time_ratio"] == pytest.approx(0.8)
    assert "PASS  jfk.wav is 1 or 2 sentences" in capsys.readouterr().out


def test_each_target_fails_when_its_figure_is_off():
    fragments = "And so my fellow Americans! Ask not! What your country can do! For you."
    across = [seg(1.0, 7.0, "가나 다라", with_words=False)]  # spans 3-6 s, no word timings
    srt = {"available": True, "cues": 1, "violations": ["cue 1 lasts 8 s"]}
    found = verdicts(report(run_rows(fragments, across, "감사합니다", srt), META))
    assert found["jfk.wav is 1 or 2 sentences"] == "FAIL"
    assert found["long files"] == "FAIL"
    assert found["zero words on the no-speech clips"] == "FAIL"
    assert found["word timings"] == "FAIL"
    assert found["SRT of the long files passes the cue rules (build_cues + cue_violations)"] == (
        "FAIL"
    )
    assert found["every eval clip >= 95% similar to plain (case, punctuation kept)"] == "FAIL"


ERROR_RATE_TARGET = "eval clips' error rate, each language's clips together, no worse than base123"


def test_the_error_rate_target_takes_each_languages_clips_together():
    """One clip worse and another better by more: the language's clips together are better,
    and the target passes, naming the worse clip for information."""
    records = [
        record("ko1", "ko", [seg(0, 2, "가나다라")], [], "가나다라"),
        record("ko2", "ko", [seg(0, 2, "마바")], [], "마바사아"),
        record("en1", "en", [seg(0, 2, "one two")], [], "one two"),
    ]
    baseline = baseline_of(
        [
            summarise_file(record("ko1", "ko", [seg(0, 2, "가나다마")], [], "가나다라")),
            summarise_file(record("ko2", "ko", [seg(0, 2, "마바사")], [], "마바사아")),
            summarise_file(record("en1", "en", [seg(0, 2, "one two")], [], "one two")),
        ],
        "base123",
        {},
    )
    rows = [summarise_file(r, baseline) for r in records]
    assert [r["flag_cer"] for r in rows] == [False, True, False]
    target = next(t for t in report(rows, META)["targets"] if t["target"] == ERROR_RATE_TARGET)
    # Korean: 2 edits over 8 letters now, 2 over 8 before; English: the same.
    assert target["result"] == "PASS", target
    assert "per file (info) worse: ko2" in target["detail"]
    rows[1] = summarise_file(record("ko2", "ko", [seg(0, 2, "마")], [], "마바사아"), baseline)
    target = next(t for t in report(rows, META)["targets"] if t["target"] == ERROR_RATE_TARGET)
    assert target["result"] == "FAIL" and "worse: cer" in target["detail"], target


def test_lost_words_and_a_worse_error_rate_fail_and_a_missing_srt_helper_is_not_available():
    rows = run_rows(JFK_TEXT, GOOD_LONG, "", {"available": False})
    ko = next(r for r in rows if r["id"] == "ko1")
    ko.update(word_ratio=0.5, flag_words=True, flag_cer=True)
    ko["platform"].update(edits_asis=1, edits_numerals=1)  # 1 of 3 letters wrong, before 0
    found = verdicts(report(rows, META))
    assert (
        found[
            "every file has >= 95% of plain's words and text ending <= 1 s before its last speech"
        ]
        == "FAIL"
    )
    assert found[ERROR_RATE_TARGET] == "FAIL"
    assert (
        found["SRT of the long files passes the cue rules (build_cues + cue_violations)"] == "N/A"
    )
