"""A recording in windows cut in pauses (batch/windows.py), and the pipeline working
through a long file window by window and slice by slice (issue 12: bounded work per upload)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cer import cer
from tests.audio_files import long_file_with_gaps
from transcription.batch.pipeline import transcribe_transcript
from transcription.batch.windows import CUT_GAP_S, AudioWindows, cut_point
from transcription.models import Transcript


def test_the_last_window_is_taken_whole():
    assert cut_point([(1.0, 3.0), (59.0, 60.0)], 60.0, last=True) == (
        [(1.0, 3.0), (59.0, 60.0)],
        60.0,
    )


def test_cut_in_the_latest_long_pause():
    regions = [(1.0, 10.0), (13.0, 20.0), (20.5, 40.0), (40.8, 59.9)]
    keep, cut = cut_point(regions, 60.0, last=False)
    assert keep == [(1.0, 10.0)] and cut == pytest.approx(11.5)


def test_silence_after_the_last_utterance_is_a_pause_to_cut_in():
    keep, cut = cut_point([(1.0, 10.0), (12.5, 50.0)], 60.0, last=False)
    assert keep == [(1.0, 10.0), (12.5, 50.0)]
    # Near the edge, where speech may begin just after the window.
    assert cut == pytest.approx(59.0)
    keep, cut = cut_point([], 60.0, last=False)
    assert keep == [] and cut == pytest.approx(59.0)


def test_speech_all_along_is_cut_in_the_widest_pause():
    regions = [(0.0, 20.0), (20.3, 40.0), (41.0, 59.9)]
    keep, cut = cut_point(regions, 60.0, last=False)
    assert keep == [(0.0, 20.0), (20.3, 40.0)] and cut == pytest.approx(40.5)


def test_every_cut_leaves_the_utterances_after_it_whole():
    rng = np.random.default_rng(1)
    for _ in range(200):
        edges = np.sort(rng.uniform(0, 120, 12))
        regions = [(float(a), float(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
        keep, cut = cut_point(regions, 120.0, last=False)
        assert 0 < cut <= 120.0
        assert all(end <= cut for _start, end in keep)
        assert all(start >= cut for start, _end in regions[len(keep) :])
        later = [start for start, _end in regions[len(keep) :]]
        if keep and later and later[0] - keep[-1][1] >= CUT_GAP_S:
            # A long pause: nothing joined across it is separated.
            assert later[0] - keep[-1][1] >= CUT_GAP_S


def test_windows_follow_each_other_without_loss():
    audio = np.arange(16000 * 250, dtype=np.float32)
    chunks = iter(np.array_split(audio, 17))
    reader = AudioWindows(chunks, start_s=5.0, window_s=60.0)
    seen = []
    while (window := reader.next()) is not None:
        assert window.audio.size >= 16000 * 60 or window.last
        cut = window.duration if window.last else 37.5
        seen.append(window.audio[: round(cut * 16000)])
        assert window.start == pytest.approx(5.0 + sum(s.size for s in seen[:-1]) / 16000)
        reader.consume(cut)
    assert np.array_equal(np.concatenate(seen), audio)
    assert reader.position == pytest.approx(5.0 + 250.0)


@pytest.mark.slow
@pytest.mark.django_db
def test_a_long_file_in_small_windows_and_slices_gives_the_same_text(
    media, settings, tmp_path, eval_clip
):
    from django.core.files.base import ContentFile

    ids = ["ko_zeroth_104_003_0019", "ko_zeroth_104_003_0193", "ko_zeroth_104_003_0253"]
    clips = [eval_clip(i)[0] for i in ids] * 3
    path, spans = long_file_with_gaps(tmp_path / "long.wav", clips, gap_s=3.0)

    def transcript() -> Transcript:
        row = Transcript.objects.create(source=Transcript.Source.UPLOAD, language="ko")
        row.audio.save("long.wav", ContentFile(path.read_bytes()))
        return row

    settings.STT_WINDOW_S = 600.0
    whole = transcribe_transcript(transcript().pk)
    assert whole.status == "done"

    # One-minute windows, and a slice that ends after every batch.
    settings.STT_WINDOW_S = 60.0
    sliced = transcript()
    slices = 0
    while True:
        result = transcribe_transcript(sliced.pk, task_id=sliced.task_id, slice_s=1e-9)
        slices += 1
        if result.status != "queued":
            break
        sliced = result
    assert result.status == "done" and slices > 3
    texts = [
        " ".join(t.segments.order_by("index").values_list("text", flat=True))
        for t in (whole, result)
    ]
    # Windows and slices pack utterances differently, and Whisper's wording moves a little
    # with its neighbours; nothing is lost or doubled.
    assert cer(texts[0], texts[1]) < 0.05, texts
    assert result.duration == pytest.approx(whole.duration, abs=0.01)
    starts = [s.start for s in result.segments.order_by("index")]
    assert starts == sorted(starts)
    # Every clip's speech has its segment, at its place in the file.
    assert all(any(a - 0.5 <= s <= b for s in starts) for a, b in spans)
