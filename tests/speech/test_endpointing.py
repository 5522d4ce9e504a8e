"""The live-path endpointer, on real recordings, without a socket."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable

import numpy as np
import pytest

from tests.audio_files import RATE, speech_bounds
from transcription.speech.audio import AudioFrameError, decode_audio
from transcription.speech.endpointing import (
    Endpointer,
    EndpointerConfig,
    Event,
    Partial,
    Pause,
    Resumed,
    SpeechStarted,
    Utterance,
)
from transcription.speech.engine import VadConfig

KOREAN = [
    "ko_zeroth_104_003_0019",
    "ko_zeroth_104_003_0193",
    "ko_zeroth_104_003_0253",
    "ko_zeroth_104_003_0280",
    "ko_zeroth_104_003_0294",
    "ko_picovoice_leopard_test_ko",
]
NO_SPEECH = [
    "nonspeech_fireplace_cc0_30s",
    "nonspeech_goldberg_piano_cc0",
    "nonspeech_picovoice_leopard_empty",
]


# --- helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(eval_clip):
    """Decoded samples of an evaluation clip, decoded once per module."""

    @functools.cache
    def samples(clip_id: str) -> np.ndarray:
        path, _entry = eval_clip(clip_id)
        audio = decode_audio(path)
        audio.flags.writeable = False
        return audio

    return samples


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.float32)


def run(
    stream: np.ndarray,
    config: EndpointerConfig | None = None,
    sizes: Iterable[int] | None = None,
) -> list[Event]:
    """Feed the stream in chunks of the given sizes (the rest in one go), then flush."""
    endpointer = Endpointer(config or EndpointerConfig())
    events: list[Event] = []
    offset = 0
    for size in sizes or ():
        if offset >= stream.size:
            break
        events += endpointer.feed(stream[offset : offset + size])
        offset += size
    events += endpointer.feed(stream[offset:])
    events += endpointer.flush()
    return events


def random_sizes(seed: int, low: int, high: int) -> Iterable[int]:
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.integers(low, high + 1))


def utterances(events: list[Event]) -> list[Utterance]:
    return [e for e in events if isinstance(e, Utterance)]


def sample(seconds: float) -> int:
    return round(seconds * RATE)


def signature(events: list[Event]) -> list[tuple]:
    """Everything about the events, audio included, in a form that compares with ==."""
    out = []
    for event in events:
        audio = getattr(event, "audio", None)
        out.append((event, None if audio is None else audio.tobytes()))
    return out


def check_invariants(events: list[Event], stream: np.ndarray) -> None:
    """What every event list must satisfy, whatever the audio."""
    started: dict[int, SpeechStarted] = {}
    finished: dict[int, Utterance] = {}
    paused: dict[int, Pause] = {}
    previous_end = 0.0
    for event in events:
        if isinstance(event, SpeechStarted):
            assert event.utterance_id not in started
            assert event.utterance_id == len(started) + 1, "ids are consecutive from 1"
            started[event.utterance_id] = event
        elif isinstance(event, Partial):
            assert event.utterance_id in started and event.utterance_id not in finished
            assert event.start == started[event.utterance_id].at
            assert np.array_equal(event.audio, stream[sample(event.start) : sample(event.end)])
        elif isinstance(event, Pause):
            assert event.utterance_id in started and event.utterance_id not in finished
            assert event.start == started[event.utterance_id].at < event.end
            first = sample(event.start)
            assert 0 < event.audio.size <= sample(event.end) - first
            assert np.array_equal(event.audio, stream[first : first + event.audio.size])
            paused[event.utterance_id] = event
        elif isinstance(event, Resumed):
            assert paused.pop(event.utterance_id, None) is not None, "Resumed follows a Pause"
        else:
            assert event.utterance_id in started and event.utterance_id not in finished
            pause = paused.pop(event.utterance_id, None)
            if event.reason == "silence" and pause is not None:
                # The pause announced exactly this end, and its audio is how the utterance
                # begins (what it lacks is the rest of the pad): work begun on it stands.
                assert pause.end == event.end
                assert np.array_equal(pause.audio, event.audio[: pause.audio.size])
            assert event.start == started[event.utterance_id].at
            assert event.reason in {"silence", "max_length", "flush"}
            # Utterances never overlap, and their audio is the stream's, sample for sample.
            assert previous_end <= event.start < event.end <= stream.size / RATE
            assert np.array_equal(event.audio, stream[sample(event.start) : sample(event.end)])
            previous_end = event.end
            finished[event.utterance_id] = event
    assert started.keys() == finished.keys(), "every SpeechStarted is closed by an Utterance"


def energy_frames(audio: np.ndarray, frame_s: float = 0.02) -> np.ndarray:
    frame = sample(frame_s)
    frames = audio[: audio.size // frame * frame].reshape(-1, frame).astype(np.float64)
    return np.sqrt((frames**2).mean(axis=1))


def trimmed_speech(audio: np.ndarray) -> np.ndarray:
    first, last = speech_bounds(audio)
    return audio[sample(first) : sample(last)]


# --- chunking --------------------------------------------------------------------


@pytest.mark.parametrize(
    "clip_id",
    ["ko_zeroth_104_003_0019", "ko_picovoice_leopard_test_ko", "en_jfk_inaugural_11s"],
)
def test_events_do_not_depend_on_chunking(clip, clip_id):
    stream = np.concatenate([silence(0.7), clip(clip_id), silence(0.3)])
    whole = run(stream)
    assert utterances(whole), "the clip has speech"
    check_invariants(whole, stream)
    for sizes in (
        random_sizes(seed=1, low=1, high=9000),
        random_sizes(seed=2, low=1, high=700),
        iter([511, 513, 1, 1, 1, 1023, 1025, 3, 320, 4000] * 1000),
        iter([320] * 10_000),  # 20 ms, the browser's smallest
    ):
        assert signature(run(stream, sizes=sizes)) == signature(whole)


def test_one_sample_at_a_time(clip):
    stream = clip("ko_picovoice_leopard_test_ko")
    assert signature(run(stream, sizes=iter([1] * stream.size))) == signature(run(stream))


# --- utterances on the stream's timeline -------------------------------------------


def test_three_clips_separated_by_silence_give_three_utterances(clip):
    ids = ["ko_zeroth_104_003_0019", "ko_zeroth_104_003_0193", "ko_picovoice_leopard_test_ko"]
    pieces, spans, position = [silence(2.0)], [], 2.0
    for clip_id in ids:
        audio = clip(clip_id)
        first, last = speech_bounds(audio)
        spans.append((position + first, position + last))
        pieces += [audio, silence(2.0)]
        position += audio.size / RATE + 2.0
    stream = np.concatenate(pieces)

    events = run(stream, sizes=random_sizes(seed=3, low=320, high=4000))
    check_invariants(events, stream)
    found = utterances(events)
    assert [u.reason for u in found] == ["silence"] * 3
    for utterance, (first, last) in zip(found, spans, strict=True):
        assert abs(utterance.start - first) < 0.5, (utterance, first)
        assert abs(utterance.end - last) < 0.5, (utterance, last)
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    assert [s.at for s in starts] == [u.start for u in found]


def test_pauses_announce_the_end_a_lasting_silence_gives(clip):
    ids = ["ko_zeroth_104_003_0019", "ko_zeroth_104_003_0193", "ko_picovoice_leopard_test_ko"]
    stream = np.concatenate([silence(1.0)] + [p for i in ids for p in (clip(i), silence(1.5))])
    config = EndpointerConfig(pause_events=True)
    events = run(stream, config, sizes=random_sizes(seed=5, low=320, high=4000))
    check_invariants(events, stream)
    found = utterances(events)
    assert [u.reason for u in found] == ["silence"] * 3
    for utterance in found:
        # Each utterance was announced by a pause with its very end, and the pause came
        # min_silence_ms - speech_pad_ms before the utterance could be closed.
        pauses = [
            e for e in events if isinstance(e, Pause) and e.utterance_id == utterance.utterance_id
        ]
        assert pauses and pauses[-1].end == utterance.end
        # The pause came pause_ms (100) after the speech, speech_pad_ms (200) before the end:
        # its audio lacks the last 100 ms of the pad.
        assert utterance.audio.size - pauses[-1].audio.size == sample(0.1)
    # Read speech has short pauses inside sentences: those are taken back by Resumed.
    resumed = [e for e in events if isinstance(e, Resumed)]
    assert len([e for e in events if isinstance(e, Pause)]) == len(found) + len(resumed)
    # Without pause_events the events are the same, minus Pause and Resumed.
    plain = run(stream, EndpointerConfig(), sizes=random_sizes(seed=5, low=320, high=4000))
    assert signature(plain) == signature([e for e in events if not isinstance(e, (Pause, Resumed))])


@pytest.mark.parametrize("pause_ms", [200, 300])
def test_a_pause_no_shorter_than_the_pad_carries_the_whole_utterance(clip, pause_ms):
    stream = np.concatenate([silence(1.0), clip("ko_zeroth_104_003_0193"), silence(1.5)])
    events = run(stream, EndpointerConfig(pause_events=True, pause_ms=pause_ms))
    check_invariants(events, stream)
    (utterance,) = utterances(events)
    last = [e for e in events if isinstance(e, Pause)][-1]
    assert last.end == utterance.end
    assert np.array_equal(last.audio, utterance.audio)


def test_a_pause_as_long_as_the_silence_rule_never_comes(clip):
    stream = np.concatenate([silence(1.0), clip("ko_zeroth_104_003_0193"), silence(1.5)])
    config = EndpointerConfig(pause_events=True, pause_ms=500)
    events = run(stream, config)
    assert not [e for e in events if isinstance(e, (Pause, Resumed))]
    assert len(utterances(events)) == 1
    with pytest.raises(ValueError, match="pause_ms"):
        EndpointerConfig(pause_events=True, pause_ms=0)


def test_long_speech_is_cut_at_quiet_points_below_max_length(clip):
    # 45 s of speech with no pause long enough to end an utterance: every clip is trimmed
    # to its speech and they follow one another directly.
    speech = np.concatenate([trimmed_speech(clip(c)) for c in KOREAN] * 2)
    stream = np.ascontiguousarray(speech[: sample(45.0)])
    config = EndpointerConfig(max_utterance_s=10.0)

    events = run(stream, config, sizes=random_sizes(seed=4, low=320, high=8000))
    check_invariants(events, stream)
    found = utterances(events)
    assert len(found) >= 5
    assert all(u.duration <= 10.0 for u in found), [u.duration for u in found]
    cuts = [u for u in found if u.reason == "max_length"]
    assert len(cuts) >= 4

    energy = energy_frames(stream)
    median = np.median(energy)
    for utterance in cuts:
        # The 20 ms around the cut is far quieter than the typical frame: a pause, not a word.
        around = stream[sample(utterance.end - 0.01) : sample(utterance.end + 0.01)]
        level = np.sqrt(np.mean(around.astype(np.float64) ** 2))
        assert level < 0.5 * median, (utterance.end, level, median)

    # The rest after a cut starts the next utterance at once: no gap, no overlap.
    for before, after in zip(found, found[1:], strict=False):
        if before.reason == "max_length":
            assert after.start == before.end
    # Nothing lost: every frame with speech energy lies inside an utterance.
    loud = np.flatnonzero(energy > 0.05 * energy.max())
    covered = np.zeros(energy.size, dtype=bool)
    for utterance in found:
        covered[int(utterance.start / 0.02) : int(np.ceil(utterance.end / 0.02))] = True
    assert covered[loud].all()
    joined = np.concatenate([u.audio for u in found])
    assert joined.size == sample(found[-1].end) - sample(found[0].start)

    # The cut search looks at a few seconds of history: still independent of chunking.
    assert signature(run(stream, config)) == signature(events)


def test_partials_grow_about_once_a_second(clip):
    stream = np.concatenate([silence(1.0), clip("ko_zeroth_104_003_0019"), silence(1.0)])
    events = run(stream, sizes=iter([4000] * 1000))  # 250 ms, as the browser sends
    check_invariants(events, stream)
    (final,) = utterances(events)
    partials = [e for e in events if isinstance(e, Partial)]
    assert len(partials) >= int(final.duration) - 2
    assert {p.utterance_id for p in partials} == {final.utterance_id}
    assert all(p.start == final.start for p in partials)
    ends = [p.end for p in partials]
    assert ends[0] - final.start == pytest.approx(1.0, abs=0.1)
    gaps = np.diff(ends)
    assert (gaps >= 0.9).all() and (gaps <= 1.5).all(), gaps
    # Each partial is a prefix of the next and of the final utterance.
    for partial in partials:
        assert np.array_equal(final.audio[: partial.audio.size], partial.audio)
    assert all(a.audio.size < b.audio.size for a, b in zip(partials, partials[1:], strict=False))


def test_partials_can_be_turned_off(clip):
    events = run(clip("ko_zeroth_104_003_0294"), EndpointerConfig(partial_interval_s=0))
    assert not [e for e in events if isinstance(e, Partial)]
    assert len(utterances(events)) == 1


def test_flush_mid_utterance_keeps_what_was_said(clip):
    audio = clip("ko_zeroth_104_003_0280")
    first, _last = speech_bounds(audio)
    stop = sample(first + 4.0)  # well inside the sentence
    endpointer = Endpointer(EndpointerConfig())
    events = endpointer.feed(audio[:stop])
    assert endpointer.in_speech
    assert not utterances(events)
    events += endpointer.flush()
    check_invariants(events, audio[:stop])
    (final,) = utterances(events)
    assert final.reason == "flush"
    assert final.end == stop / RATE
    assert not endpointer.in_speech
    assert endpointer.flush() == []

    # The stream may go on after a flush: the timeline continues where it stopped.
    later = endpointer.feed(audio) + endpointer.flush()
    (again,) = utterances(later)
    assert again.utterance_id == final.utterance_id + 1
    assert again.start >= stop / RATE
    assert np.array_equal(again.audio, audio[sample(again.start) - stop : sample(again.end) - stop])


def test_reset_drops_buffered_audio_silently(clip):
    audio = clip("ko_zeroth_104_003_0280")
    endpointer = Endpointer(EndpointerConfig())
    endpointer.feed(audio[: sample(4.0)])
    assert endpointer.in_speech
    endpointer.reset()
    assert not endpointer.in_speech
    assert endpointer.buffered_s == 0
    assert endpointer.position_s == 4.0
    assert endpointer.flush() == []


def test_trailing_pad_longer_than_the_silence_that_ends_speech(clip):
    # min_silence < speech_pad: the utterance is decided before its trailing pad has arrived,
    # and speech that comes back meanwhile splits the gap between the two utterances.
    stream = clip("en_jfk_inaugural_11s")
    config = EndpointerConfig(min_silence_ms=100, speech_pad_ms=400)
    events = run(stream, config)
    check_invariants(events, stream)
    assert len(utterances(events)) >= 4
    assert signature(run(stream, config, sizes=random_sizes(5, 1, 2000))) == signature(events)


def test_bursts_shorter_than_min_speech_are_ignored(clip):
    stream = np.concatenate([silence(0.5), clip("ko_picovoice_leopard_test_ko"), silence(1.0)])
    assert len(utterances(run(stream))) == 1
    # Speech counts as a burst when it lasts less than min_speech_ms: with a minimum longer
    # than the whole sentence, not even a SpeechStarted comes out.
    config = EndpointerConfig(min_speech_ms=5000, max_utterance_s=20.0)
    assert run(stream, config) == []


# --- nothing to hear ---------------------------------------------------------------


@pytest.mark.parametrize("clip_id", NO_SPEECH)
def test_no_speech_clips_give_no_events(clip, clip_id):
    stream = clip(clip_id)
    assert run(stream, sizes=random_sizes(seed=6, low=320, high=4000)) == []


def test_silence_only_stream_gives_nothing_and_holds_little(clip):
    endpointer = Endpointer(EndpointerConfig())
    for _ in range(240):  # a minute in 250 ms chunks
        assert endpointer.feed(silence(0.25)) == []
        # Only the pre-roll (the speech pad) and the unread tail of a window are kept.
        assert endpointer.buffered_s <= 0.2 + 0.032 + 1e-9
        assert endpointer.backlog_s < 0.032
    assert endpointer.flush() == []
    assert endpointer.position_s == 60.0


def test_memory_stays_bounded_by_the_utterance(clip):
    speech = np.concatenate([trimmed_speech(clip(c)) for c in KOREAN])
    endpointer = Endpointer(EndpointerConfig(max_utterance_s=5.0))
    most = 0.0
    for offset in range(0, speech.size, 4000):
        endpointer.feed(speech[offset : offset + 4000])
        most = max(most, endpointer.buffered_s)
    assert most <= 5.0 + 0.25 + 0.032


# --- configuration and input ---------------------------------------------------------


def test_config_from_settings(settings):
    settings.VAD_THRESHOLD = 0.6
    settings.VAD_MIN_SILENCE_MS = 700
    settings.VAD_SPEECH_PAD_MS = 100
    settings.VAD_MIN_SPEECH_MS = 200
    settings.VAD_MAX_UTTERANCE_S = 15.0
    config = EndpointerConfig.from_settings(partial_interval_s=0.5)
    assert config == EndpointerConfig(
        threshold=0.6,
        min_silence_ms=700,
        speech_pad_ms=100,
        min_speech_ms=200,
        max_utterance_s=15.0,
        partial_interval_s=0.5,
    )
    assert config.effective_neg_threshold == pytest.approx(0.45)
    assert Endpointer().config == EndpointerConfig.from_settings()
    assert Endpointer(VadConfig(threshold=0.4)).config.threshold == 0.4


@pytest.mark.parametrize(
    "bad",
    [
        {"threshold": 0.0},
        {"threshold": 1.0},
        {"neg_threshold": 0.7},
        {"min_silence_ms": 0},
        {"speech_pad_ms": -1},
        {"max_utterance_s": 0.5},
        {"max_utterance_s": float("inf")},
        {"partial_interval_s": 0.01},
        {"cut_search_s": 0},
    ],
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        EndpointerConfig(**bad)


def test_bad_input_is_refused():
    endpointer = Endpointer(EndpointerConfig())
    with pytest.raises(AudioFrameError):
        endpointer.feed(np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(AudioFrameError):
        endpointer.feed(np.zeros((2, 100), dtype=np.float32))
    with pytest.raises(ValueError):
        Endpointer(EndpointerConfig(), sample_rate=48000)
    assert endpointer.feed(np.zeros(0, dtype=np.float32)) == []
    # float64 input is converted, not refused.
    assert endpointer.feed(np.zeros(1000, dtype=np.float64)) == []


# --- cost ----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_s", [0.02, 0.25])
def test_cost_per_second_of_audio(clip, chunk_s):
    stream = np.concatenate(
        [np.concatenate([clip(c), silence(1.0)]) for c in KOREAN + NO_SPEECH[:1]]
    )
    chunk = sample(chunk_s)
    endpointer = Endpointer(EndpointerConfig())
    endpointer.feed(silence(1.0))  # the model is loaded once per process, not per stream
    started = time.process_time()
    for offset in range(0, stream.size, chunk):
        endpointer.feed(stream[offset : offset + chunk])
    endpointer.flush()
    per_second_ms = (time.process_time() - started) / (stream.size / RATE) * 1000
    print(f"endpointer: {per_second_ms:.2f} ms CPU per second of audio in {chunk_s} s chunks")
    assert per_second_ms < 50
