"""Live recordings (transcription/recording.py): a playable WAV at every moment, lined up
with the session's timeline on resume; and a transcript's audio going with it when deleted."""

from __future__ import annotations

import struct
import wave

import numpy as np
import pytest
from django.core.files.base import ContentFile

from tests.factories import make_transcript, make_user
from transcription.live.recording import HEADER_BYTES, LiveRecording, RecordingError, recording_name
from transcription.models import Transcript
from transcription.speech.audio import decode_audio

RATE = 16000


def tone(seconds: float, freq: float = 440.0, level: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def frames_of(path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (1, RATE, 2)
        raw = wav.readframes(wav.getnframes())
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32767.0


def test_the_file_is_a_complete_wav_after_every_append(tmp_path):
    path = tmp_path / "live" / "a.wav"
    recording = LiveRecording(path)
    assert frames_of(path).size == 0
    pieces = [tone(0.1), tone(0.25, 220.0), tone(0.05, 880.0)]
    for n, piece in enumerate(pieces, 1):
        recording.append(piece)
        # Read while the file is still open for writing: another process (the web page's
        # player) sees a whole WAV, every sample so far and no more.
        got = frames_of(path)
        want = np.concatenate(pieces[:n])
        assert got.size == want.size
        assert np.abs(got - want).max() < 1e-4
    assert recording.duration_s == pytest.approx(0.4)
    recording.close()
    # And a decoder other than the stdlib's reads it the same (PyAV, as the pipeline does).
    assert decode_audio(path).size == round(0.4 * RATE)


def test_samples_beyond_full_scale_are_clipped_not_wrapped(tmp_path):
    with LiveRecording(tmp_path / "loud.wav") as recording:
        recording.append(np.array([1.7, -3.0, 0.5, np.float32(-1.0)], np.float32))
    got = frames_of(tmp_path / "loud.wav")
    assert got.tolist() == pytest.approx([1.0, -1.0, 0.5, -1.0], abs=1e-4)


def test_reopening_goes_on_at_the_end(tmp_path):
    path = tmp_path / "s.wav"
    with LiveRecording(path) as recording:
        recording.append(tone(1.0))
    with LiveRecording(path) as recording:
        assert recording.duration_s == pytest.approx(1.0)
        recording.append(tone(0.5, 300.0))
    got = frames_of(path)
    assert got.size == round(1.5 * RATE)
    assert np.abs(got[RATE:] - tone(0.5, 300.0)).max() < 1e-4


def test_align_pads_with_silence_or_cuts_the_tail(tmp_path):
    path = tmp_path / "s.wav"
    with LiveRecording(path) as recording:
        recording.append(tone(1.0))
        recording.align(2.5)  # the timeline went on without audio reaching the file
        assert recording.duration_s == pytest.approx(2.5)
        recording.append(tone(0.5))
    got = frames_of(path)
    assert got.size == 3 * RATE
    assert not got[RATE : round(2.5 * RATE)].any()
    assert np.abs(got[round(2.5 * RATE) :] - tone(0.5)).max() < 1e-4
    with LiveRecording(path) as recording:
        recording.align(0.75)
    assert frames_of(path).size == round(0.75 * RATE)


def test_a_write_cut_short_is_dropped_on_reopen(tmp_path):
    path = tmp_path / "s.wav"
    with LiveRecording(path) as recording:
        recording.append(tone(0.5))
    # The process died after writing samples but before the header counted them: an odd
    # byte too, half a sample.
    with open(path, "ab") as handle:
        handle.write(b"\x01\x02\x03")
    with LiveRecording(path) as recording:
        assert recording.duration_s == pytest.approx(0.5)
        recording.append(tone(0.25, 330.0))
    got = frames_of(path)
    assert got.size == round(0.75 * RATE)
    assert path.stat().st_size == HEADER_BYTES + 2 * got.size
    assert np.abs(got[round(0.5 * RATE) :] - tone(0.25, 330.0)).max() < 1e-4


def test_a_header_that_overstates_the_data_is_trusted_only_as_far_as_the_file_goes(tmp_path):
    path = tmp_path / "s.wav"
    with LiveRecording(path) as recording:
        recording.append(tone(0.5))
    with open(path, "r+b") as handle:
        handle.seek(40)
        handle.write(struct.pack("<I", 10**9))
    with LiveRecording(path) as recording:
        assert recording.duration_s == pytest.approx(0.5)


def test_a_file_of_another_kind_is_refused(tmp_path):
    other = tmp_path / "other.wav"
    other.write_bytes(b"ID3" + bytes(100))
    with pytest.raises(RecordingError):
        LiveRecording(other)
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(bytes(400))
    with pytest.raises(RecordingError, match="2 ch"):
        LiveRecording(stereo)
    assert other.read_bytes()[:3] == b"ID3"  # left as it was


def test_a_full_recording_refuses_more_and_stays_whole(tmp_path, monkeypatch):
    import transcription.live.recording as module

    monkeypatch.setattr(module, "MAX_DATA_BYTES", 2 * RATE)  # one second
    path = tmp_path / "s.wav"
    with LiveRecording(path) as recording:
        recording.append(tone(0.75))
        with pytest.raises(RecordingError, match="largest size"):
            recording.append(tone(0.5))
    assert frames_of(path).size == round(0.75 * RATE)


def test_recording_names_are_dated_and_per_session():
    import datetime as dt

    name = recording_name("0b5f", dt.datetime(2026, 11, 25, 9, 30))
    assert name == "live/2026/11/25/0b5f.wav"


# --- the audio goes with its transcript ---------------------------------------------------


def stored(owner, name: str) -> Transcript:
    transcript = make_transcript(owner, source=Transcript.Source.LIVE)
    transcript.audio.save(name, ContentFile(b"RIFF...."), save=True)
    return transcript


@pytest.mark.django_db(transaction=True)
def test_deleting_a_transcript_any_way_deletes_its_audio(media):
    owner = make_user("talker")
    one, two, three = (stored(owner, f"{n}.wav") for n in ("one", "two", "three"))
    paths = [media / t.audio.name for t in (one, two, three)]
    assert all(path.exists() for path in paths)
    one.delete()  # the API and the history page
    assert not paths[0].exists() and paths[1].exists()
    Transcript.objects.filter(pk=two.pk).delete()  # the admin's bulk delete
    assert not paths[1].exists() and paths[2].exists()
    owner.delete()  # a user deleted with everything they owned
    assert not paths[2].exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_delete_keeps_the_audio(media):
    from django.db import transaction

    transcript = stored(make_user("talker"), "kept.wav")
    path, pk = media / transcript.audio.name, transcript.pk

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        transcript.delete()
        raise Abort
    assert path.exists()
    assert Transcript.objects.filter(pk=pk).exists()
