"""Words with timings: speech left without words, splicing a second decode in, sentences."""

from __future__ import annotations

from transcription.speech.words import (
    Evidence,
    Word,
    ends_sentence,
    join,
    sentences,
    speech_without_words,
    splice,
)

EVIDENCE = Evidence(-0.2, 0.01, 1.2)


def w(text, start, end):
    return Word(text, start, end, 0.9, EVIDENCE)


def test_speech_after_the_last_word_is_found_and_pauses_are_not():
    words = [w(" 하나", 1.0, 1.5), w(" 둘", 1.6, 2.0), w(" 셋", 4.0, 4.5)]
    speech = [(1.0, 2.1), (3.9, 8.0)]
    # 2.0-4.0 is a pause (0.1 s of speech in it); 4.5-8.0 is 3.5 s of speech without words.
    assert speech_without_words(words, (0.8, 8.2), speech, 1.0) == [(4.5, 8.2)]
    # Speech before the first word counts too; less than the threshold does not.
    assert speech_without_words(words[1:], (0.2, 4.6), [(0.2, 2.0), (3.9, 4.6)], 1.0) == [
        (0.2, 1.6)
    ]
    assert speech_without_words(words, (0.8, 5.2), speech, 1.0) == []
    # No words at all: the whole span, if it holds speech.
    assert speech_without_words([], (0.0, 3.0), [(0.5, 2.5)], 1.0) == [(0.0, 3.0)]
    assert speech_without_words([], (0.0, 3.0), [], 1.0) == []


def test_a_second_decode_is_spliced_in_order_without_doubling_the_cut_word():
    first = [w(" 지난해", 0.5, 1.0), w(" 3월", 1.0, 1.4), w(" 김", 1.4, 1.8)]
    # The stretch began inside " 김": the second decode hears it again.
    found = [w(" 김", 1.8, 2.0), w(" 전", 2.0, 2.3), w(" 장관의", 2.3, 2.9)]
    merged = splice(first, found)
    assert join(merged) == "지난해 3월 김 전 장관의"
    assert merged[2] is first[2]  # the first decode's copy is kept
    assert splice(first, []) == first
    # Two different words stay, even when they read the same later on.
    later = [w(" 김", 6.0, 6.4)]
    assert join(splice(first, later)) == "지난해 3월 김 김"


def test_sentences_end_at_sentence_punctuation_not_at_commas():
    words = [
        w(" And", 0.1, 0.3),
        w(" so,", 0.3, 0.6),
        w(" ask", 3.1, 3.4),
        w(" not.", 3.4, 4.0),
        w(" 그는", 5.0, 5.3),
        w(' "걸어갔다."', 5.3, 6.0),
        w(" 그리고", 6.5, 7.0),
    ]
    assert [join(s) for s in sentences(words)] == ["And so, ask not.", '그는 "걸어갔다."', "그리고"]
    assert ends_sentence(" 왔다?") and ends_sentence(" done.)") and not ends_sentence(" 3,")


def test_a_very_long_sentence_is_cut_at_its_longest_pause():
    words = [w(f" 말{i}", i * 1.0, i * 1.0 + 0.8) for i in range(20)]  # 0.2 s between words
    words[12] = w(" 말12", 12.6, 13.4)  # a 0.8 s pause before it
    pieces = sentences(words, max_s=15.0)
    assert [len(p) for p in pieces] == [12, 8]
    assert all(p[-1].end - p[0].start <= 15.0 for p in pieces)
    # Without pauses (all words touch) it is still cut, near the middle.
    touching = [w(f" 말{i}", i * 1.0, (i + 1) * 1.0) for i in range(32)]
    pieces = sentences(touching, max_s=15.0)
    assert all(p[-1].end - p[0].start <= 15.0 for p in pieces) and len(pieces) >= 3
    assert sum(len(p) for p in pieces) == 32
