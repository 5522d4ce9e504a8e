"""Packing utterances into shared Whisper windows, and placing the lines back."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bench.cer import cer
from tests.audio_files import long_file_with_gaps
from transcription.speech import engine
from transcription.speech.audio import decode_audio
from transcription.speech.engine import Placement, pack_regions


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


def test_lines_go_to_the_utterance_they_cover_and_straddlers_are_suspect():
    placements = [Placement((5.0, 9.0), 0.0, 4.0), Placement((20.0, 23.0), 6.0, 9.0)]
    first, second, in_gap = line(0.0, 4.1, "하나"), line(6.1, 9.0, "둘"), line(4.3, 4.6, "셋")
    by_region, suspect = engine._assign([first, in_gap, second], placements)
    assert by_region == {(5.0, 9.0): [first, in_gap], (20.0, 23.0): [second]}
    assert suspect == set()

    across = line(2.0, 8.0, "하나 둘")
    _by_region, suspect = engine._assign([across], placements)
    assert suspect == {(5.0, 9.0), (20.0, 23.0)}


def test_an_utterance_with_missing_or_cut_text_is_suspect():
    placements = [Placement((float(i), i + 5.0), i * 7.0, i * 7.0 + 5.0) for i in range(4)]
    full = "가" * 30  # 6 letters a second
    by_region = {p.region: [line(p.start, p.end, full)] for p in placements}
    assert engine._truncated(by_region, placements) == set()
    by_region[placements[1].region] = [line(7.0, 12.0, "가" * 10)]
    by_region[placements[2].region] = []
    assert engine._truncated(by_region, placements) == {placements[1].region, placements[2].region}


def test_an_utterance_whose_lines_stop_well_before_its_speech_ends_is_suspect():
    # Whisper ended the packed window after the first clause: the letters per second look
    # normal, but the last 2.5 s of speech have no line.
    placements = [Placement((float(i), i + 9.0), i * 11.0, i * 11.0 + 9.0) for i in range(3)]
    by_region = {p.region: [line(p.start + 0.3, p.end - 0.4, "가" * 45)] for p in placements}
    assert engine._truncated(by_region, placements, pad_s=0.2) == set()
    cut = placements[1]
    by_region[cut.region] = [line(cut.start + 0.3, cut.end - 2.7, "가" * 35)]
    assert engine._truncated(by_region, placements, pad_s=0.2) == {cut.region}
    # The same at the start: the first line begins 2 s into the speech.
    by_region[cut.region] = [line(cut.start + 2.2, cut.end - 0.3, "가" * 35)]
    assert engine._truncated(by_region, placements, pad_s=0.2) == {cut.region}


def test_placed_lines_stay_inside_their_utterance():
    placement = Placement((30.0, 36.0), 10.0, 16.0)
    placed = engine._place([line(10.4, 12.0, "앞"), line(12.0, 16.5, "뒤")], placement)
    assert [(p.start, p.end, p.text) for p in placed] == [(30.0, 32.0, "앞"), (32.0, 36.0, "뒤")]


def test_each_decoded_line_goes_to_exactly_one_clip_even_where_clips_touch():
    # Packed windows are laid end to end, so one clip ends where the next begins; a line's
    # start can come back a rounding error below its clip's start.
    clips = [{"start": 0.0, "end": 16.000000000000004}, {"start": 16.000000000000004, "end": 30.0}]
    lines = [line(0.0, 8.0, "a"), line(8.0, 16.0, "b"), line(15.999999999999998, 20.0, "c")]
    first, second = engine._by_clip(lines, clips)
    assert [x.text for x in first] == ["a", "b"] and [x.text for x in second] == ["c"]
    # A line a little before the first clip still belongs to it.
    assert [len(x) for x in engine._by_clip([line(-0.01, 1.0, "d")], clips)] == [1, 0]


def test_a_line_is_clamped_into_its_own_utterance():
    assert engine._clamp(9.8, 12.4, (10.0, 12.0)) == (10.0, 12.0)
    assert engine._clamp(11.0, 10.5, (10.0, 12.0)) == (11.0, 11.0)


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
    assert pack_regions(regions, 28.0, engine.PACK_GAP_S) != [[r] for r in regions]
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
