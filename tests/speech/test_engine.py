"""Joining utterances into spans, packing spans into shared Whisper windows, and placing the
words back; speech left without words is decoded again."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bench.cer import cer
from tests.audio_files import long_file_with_gaps
from transcription.speech import engine
from transcription.speech.audio import decode_audio
from transcription.speech.spans import (
    PACK_GAP_S,
    Placement,
    Span,
    frame_spans,
    join_regions,
    pack_regions,
    pack_spans,
    window_audio,
)
from transcription.speech.words import Evidence, Word


def line(start, end, text):
    return SimpleNamespace(
        start=start,
        end=end,
        text=text,
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        compression_ratio=1.2,
    )


def test_utterances_fill_windows_in_order_with_gaps_counted():
    regions = [(0.0, 10.0), (12.0, 20.0), (25.0, 35.0), (40.0, 75.0), (80.0, 81.0)]
    # 10 + 2 + 8 = 20 fits in 28; adding 2 + 10 would not. A 35 s utterance goes alone.
    assert pack_regions(regions, 28.0, 2.0) == [
        [(0.0, 10.0), (12.0, 20.0)],
        [(25.0, 35.0)],
        [(40.0, 75.0)],
        [(80.0, 81.0)],
    ]
    assert pack_regions(regions, 0, 2.0) == [[region] for region in regions]
    assert pack_regions([], 28.0, 2.0) == []


def test_the_silence_between_packed_spans_may_depend_on_the_two():
    regions = [(0.0, 10.0), (12.0, 20.0), (25.0, 33.0)]
    # Real audio already around the speech: 1 s of zeros between them is enough.
    assert pack_regions(regions, 28.0, lambda a, b: 1.0) == [regions]
    audio = np.arange(40 * 16000, dtype=np.float32)
    window, layout = window_audio(audio, regions[:2], lambda a, b: 0.5)
    assert window.size == (10 + 0.5 + 8) * 16000
    assert [(p.start, p.end) for p in layout] == [(0.0, 10.0), (10.5, 18.5)]
    assert window[int(10.5 * 16000)] == 12 * 16000  # the second span's first sample


def word(text, start, end, probability=0.9):
    return SimpleNamespace(word=text, start=start, end=end, probability=probability)


def line_with_words(words):
    return SimpleNamespace(
        start=words[0].start,
        end=words[-1].end,
        text="".join(w.word for w in words),
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        compression_ratio=1.2,
        words=words,
    )


def test_utterances_apart_by_short_pauses_are_decoded_together():
    regions = [(0.0, 2.0), (2.8, 5.0), (6.5, 9.0), (9.5, 20.0), (20.5, 31.0), (31.2, 36.0)]
    spans = join_regions(regions, pause_s=1.0, max_s=28.0)
    # 1.5 s is a long pause; a span 6.5-36 would pass 28 s, so the last one starts anew.
    assert [span.bounds for span in spans] == [(0.0, 5.0), (6.5, 31.0), (31.2, 36.0)]
    assert spans[0].regions == ((0.0, 2.0), (2.8, 5.0))
    assert [s.bounds for s in join_regions(regions, 0.0, 28.0)] == regions
    # One utterance longer than the limit is still a span of its own.
    assert [s.bounds for s in join_regions([(0.0, 30.0), (30.2, 31.0)], 1.0, 28.0)] == [
        (0.0, 30.0),
        (30.2, 31.0),
    ]


def test_words_go_to_the_span_they_were_spoken_in():
    # Two spans packed 2 s apart; Whisper wrote one line across the gap.
    layout = [Placement((5.0, 9.0), 0.0, 4.0), Placement((20.0, 23.0), 6.0, 9.0)]
    across = line_with_words(
        [
            word(" 하나", 0.2, 1.0),
            word(" 둘", 3.5, 4.3),
            word(" 셋", 6.4, 7.0),
            word(" 넷", 4.6, 4.9),
        ]
    )
    placed = engine._place_words([across], layout)
    first, second = placed[(5.0, 9.0)], placed[(20.0, 23.0)]
    # " 둘" overhangs its span's end: it is clamped into it. " 넷" lies in the gap, nearer
    # the first span. " 셋" is shifted from the window to the recording.
    assert [(w.text, round(w.start, 6), round(w.end, 6)) for w in first] == [
        (" 하나", 5.2, 6.0),
        (" 둘", 8.5, 9.0),
        (" 넷", 9.0, 9.0),
    ]
    assert [(w.text, round(w.start, 6), round(w.end, 6)) for w in second] == [(" 셋", 20.4, 21.0)]


def spans_with_words(texts_per_second):
    spans = [Span(i * 10.0, i * 10.0 + 5.0, ((i * 10.0, i * 10.0 + 5.0),)) for i in range(4)]
    evidence = Evidence(-0.2, 0.01, 1.2)
    words = {
        span.bounds: [
            Word(" " + "가" * rate, span.start + k, span.start + k + 1, 0.9, evidence)
            for k in range(5)
        ]
        if rate
        else []
        for span, rate in zip(spans, texts_per_second, strict=True)
    }
    return spans, words


def test_a_packed_span_with_missing_or_cut_text_is_short():
    spans, words = spans_with_words([6, 6, 6, 6])
    assert engine._short(words, spans) == set()
    spans, words = spans_with_words([6, 2, 0, 6])
    assert engine._short(words, spans) == {spans[1].bounds, spans[2].bounds}


def test_each_decoded_line_goes_to_exactly_one_clip_even_where_clips_touch():
    # Packed windows are laid end to end, so one clip ends where the next begins; a line's
    # start can come back a rounding error below its clip's start.
    clips = [{"start": 0.0, "end": 16.000000000000004}, {"start": 16.000000000000004, "end": 30.0}]
    lines = [line(0.0, 8.0, "a"), line(8.0, 16.0, "b"), line(15.999999999999998, 20.0, "c")]
    first, second = engine._by_clip(lines, clips)
    assert [x.text for x in first] == ["a", "b"] and [x.text for x in second] == ["c"]
    # A line a little before the first clip still belongs to it.
    assert [len(x) for x in engine._by_clip([line(-0.01, 1.0, "d")], clips)] == [1, 0]


@pytest.mark.slow
@pytest.mark.parametrize("pad_ms", [200, 400])
def test_packed_and_unpacked_decoding_agree_on_a_long_file(eval_clip, tmp_path, settings, pad_ms):
    settings.VAD_SPEECH_PAD_MS = pad_ms
    clips = [eval_clip("ko_zeroth_104_003_0193"), eval_clip("ko_zeroth_104_003_0280")] * 2
    path, spans = long_file_with_gaps(tmp_path / "long.wav", [c[0] for c in clips], gap_s=3.0)
    reference = "".join(c[1]["reference_nospace"] for c in clips)
    with open(path, "rb") as handle:
        audio = decode_audio(handle)
    regions = engine.speech_regions(audio)
    assert len(regions) == len(spans)

    def run(window_s):
        settings.STT_PACK_WINDOW_S = window_s
        batches = list(engine.transcribe_regions(audio, regions, "ko"))
        return [segment for batch in batches for segment in batch.segments]

    packed, alone = run(28.0), run(0)
    assert pack_regions(regions, 28.0, PACK_GAP_S) != [[r] for r in regions]
    for segments in (packed, alone):
        text = "".join(s.text for s in segments)
        assert cer(reference, text, numerals=True) < 0.2, text
        for segment in segments:
            # Every line lies inside one utterance: none spans the silence between two. (The
            # margin is the 0.5 s with the default pad; a longer pad widens it.)
            margin = max(0.5, pad_ms / 1000 + 0.3)
            assert any(s - margin <= segment.start <= segment.end <= e + margin for s, e in spans)
    assert np.isclose(
        len("".join(s.text for s in packed)), len("".join(s.text for s in alone)), rtol=0.15
    )


def _damaged(segments, keep_until):
    """Whisper's lines with every word after ``keep_until`` (window time) gone, as when it
    ends a packed window early."""
    out = []
    for segment in segments:
        words = [w for w in segment.words if w.start <= keep_until]
        if words:
            out.append(
                SimpleNamespace(
                    start=segment.start,
                    end=words[-1].end,
                    text="".join(w.word for w in words),
                    avg_logprob=segment.avg_logprob,
                    no_speech_prob=segment.no_speech_prob,
                    compression_ratio=segment.compression_ratio,
                    words=words,
                )
            )
    return out


def test_spans_are_decoded_with_the_audio_around_them_as_plain_whisper_frames_it():
    spans = join_regions(
        [(0.5, 4.0), (4.6, 9.0), (12.0, 15.0), (16.5, 20.0), (50.0, 79.9)], 1.0, 28.0
    )
    assert [s.bounds for s in spans] == [(0.5, 9.0), (12.0, 15.0), (16.5, 20.0), (50.0, 79.9)]
    frames = frame_spans(spans, pad_s=0.2, until_s=81.0)
    # 0.4 s of audio before the speech (the spans hold 0.2 of VAD padding); 3.4 s of silence
    # after the first span is long, so 0.4 s after its speech too.
    assert frames[(0.5, 9.0)] == pytest.approx((0.3, 9.2))
    # 1.9 s of silence before the next speech is short: kept whole, up to the next clip.
    assert frames[(12.0, 15.0)] == pytest.approx((11.8, 16.3))
    assert frames[(16.5, 20.0)] == pytest.approx((16.3, 20.2))
    # A span of 29.9 s nearly fills a Whisper window: 0.1 s of audio is added, not 1.5 s.
    assert frames[(50.0, 79.9)] == pytest.approx((49.9, 79.9))
    # Clips never overlap and always hold their span.
    ordered = [frames[s.bounds] for s in spans]
    assert all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:], strict=False))
    assert all(c[0] <= s.start and c[1] >= s.end for c, s in zip(ordered, spans, strict=True))


def test_framed_spans_pack_into_the_windows_they_would_fill_unframed():
    spans = join_regions([(0.0, 9.0), (12.0, 21.0), (24.0, 32.0), (35.0, 40.0)], 1.0, 28.0)
    frames = frame_spans(spans, pad_s=0.2, until_s=41.0)
    windows, gap = pack_spans(spans, frames, pad_s=0.2, window_s=28.0)
    # Unframed: 9 + 2 + 9 = 20 fits, adding 2 + 8 would not; then 8 + 2 + 5.
    assert pack_regions([s.bounds for s in spans], 28.0, PACK_GAP_S) == [
        [(0.0, 9.0), (12.0, 21.0)],
        [(24.0, 32.0), (35.0, 40.0)],
    ]
    assert windows == [
        [frames[(0.0, 9.0)], frames[(12.0, 21.0)]],
        [frames[(24.0, 32.0)], frames[(35.0, 40.0)]],
    ]
    # 0.2 s of audio after the first speech and 0.2 s before the second: 1.6 s of zeros.
    assert gap(frames[(0.0, 9.0)], frames[(12.0, 21.0)]) == pytest.approx(1.6)


def test_a_short_silence_at_the_end_is_decoded_up_to_the_end_or_the_cut():
    spans = join_regions([(0.0, 6.0)], 1.0, 28.0)
    # At the start of the audio there is nothing before; 1.5 s of silence to the end.
    assert frame_spans(spans, 0.2, until_s=7.3)[(0.0, 6.0)] == pytest.approx((0.0, 7.3))
    # A window cut 1 s after the span (the rest is the next window's): up to the cut.
    assert frame_spans(spans, 0.2, until_s=6.8)[(0.0, 6.0)] == pytest.approx((0.0, 6.8))
    # Without padding the same 0.4 s of audio is given around the speech.
    spans = join_regions([(1.0, 6.0)], 1.0, 28.0)
    assert frame_spans(spans, 0.0, until_s=20.0)[(1.0, 6.0)] == pytest.approx((0.6, 6.4))


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["ko_zeroth_104_003_0294", "ko_picovoice_leopard_test_ko"])
def test_a_one_sentence_file_reads_as_plain_faster_whisper_reads_it(eval_clip, settings, clip):
    """With whisper-base a word turns on where the audio begins and ends: decoded from their
    speech with 0.2 s of padding, these clips came back 90.5% and 92.3% similar to plain
    faster-whisper (``속이 짧게`` for ``소비자에게``). Framed as faster-whisper frames
    speech, they read the same, case and punctuation kept."""
    from bench.readability_report import similarity

    path, entry = eval_clip(clip)
    with open(path, "rb") as handle:
        audio = decode_audio(handle)
    regions = engine.speech_regions(audio)
    segments = [s for b in engine.transcribe_regions(audio, regions, "ko") for s in b.segments]
    text = " ".join(s.text for s in segments)
    plain, _info = engine.get_model().transcribe(
        str(path),
        language="ko",
        beam_size=settings.WHISPER_BEAM_SIZE,
        vad_filter=True,
        word_timestamps=True,
    )
    plain_text = " ".join(s.text.strip() for s in plain)
    assert similarity(text, plain_text) >= 0.95, (text, plain_text)


@pytest.mark.slow
def test_speech_whisper_dropped_from_a_packed_window_is_decoded_again(
    eval_clip, tmp_path, settings, monkeypatch
):
    settings.STT_PACK_WINDOW_S = 28.0
    clips = [eval_clip("ko_zeroth_104_003_0019"), eval_clip("ko_zeroth_104_003_0280")]
    path, _spans = long_file_with_gaps(tmp_path / "two.wav", [c[0] for c in clips], gap_s=3.0)
    reference = "".join(c[1]["reference_nospace"] for c in clips)
    with open(path, "rb") as handle:
        audio = decode_audio(handle)
    regions = engine.speech_regions(audio)
    assert len(pack_regions(regions, 28.0, PACK_GAP_S)) == 1  # one window

    def run():
        return [s for b in engine.transcribe_regions(audio, regions, "ko") for s in b.segments]

    whole = run()
    real_decode, calls = engine._decode, []

    def decode_dropping_the_rest(audio_, clips_, language, size):
        calls.append(clips_)
        segments = real_decode(audio_, clips_, language, size)
        # The first (packed) decode stops 5 s into the window: the end of the first
        # clip and all of the second are lost, as Whisper sometimes does.
        return _damaged(segments, keep_until=5.0) if len(calls) == 1 else segments

    monkeypatch.setattr(engine, "_decode", decode_dropping_the_rest)
    repaired = run()
    assert len(calls) == 3  # packed; the empty span alone; the first span's tail alone

    def words_of(segments):
        return sum(len(s.text.split()) for s in segments)

    text = "".join(s.text for s in repaired)
    assert words_of(repaired) >= 0.95 * words_of(whole), (text, [s.text for s in whole])
    assert cer(reference, text, numerals=True) < 0.2, text
    for segment in repaired:
        starts = [w["start"] for w in segment.words]
        assert starts == sorted(starts)
        assert all(segment.start - 0.01 <= s <= segment.end + 0.01 for s in starts)


@pytest.mark.slow
def test_a_sentence_with_pauses_comes_back_whole_with_word_timings(eval_clip):
    path, entry = eval_clip("en_jfk_inaugural_11s")
    with open(path, "rb") as handle:
        audio = decode_audio(handle)
    regions = engine.speech_regions(audio)
    assert len(regions) >= 3  # the speaker pauses between the clauses
    segments = [s for b in engine.transcribe_regions(audio, regions, "en") for s in b.segments]
    text = " ".join(s.text for s in segments)
    # One sentence, as plain faster-whisper writes it, not "ASK NOT! / What your country..."
    assert len(segments) == 1, [s.text for s in segments]
    assert text.count(".") + text.count("!") + text.count("?") == 1, text
    assert "ask not what your country" in text.lower()
    words = segments[0].words
    assert "".join(w["word"] for w in words).strip() == segments[0].text
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(w["end"] >= w["start"] for w in words)
    assert regions[0][0] - 0.01 <= starts[0] and words[-1]["end"] <= regions[-1][1] + 0.01
