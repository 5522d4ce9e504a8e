from __future__ import annotations

import base64
import io
import struct
import wave

import av
import numpy as np
import pytest

from transcription.speech.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    AudioFrameError,
    NotAudioError,
    decode_audio,
    f32le_to_float32,
    iter_decode,
    pcm_s16le_to_float32,
    probe_audio,
)

KO_CLIP = "ko_zeroth_104_003_0294"
FILE_CLIPS = [
    "ko_zeroth_104_003_0294",  # flac
    "ko_picovoice_leopard_test_ko",  # wav
    "en_librispeech_1089-134686-0001",  # flac
    "nonspeech_goldberg_piano_cc0",  # wav
]


def encode(path, samples, *, fmt, codec, rate, layout="mono", video=None, audio=True):
    """Write 16 kHz mono float samples with PyAV, resampled to the encoder's rate and layout."""
    seconds = samples.size / SAMPLE_RATE
    with av.open(str(path), "w", format=fmt) as out:
        if video:
            vstream = out.add_stream(video, rate=25)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        if audio:
            astream = out.add_stream(codec, rate=rate, layout=layout)
            resampler = av.AudioResampler(
                format=astream.codec_context.format.name, layout=layout, rate=rate
            )
            channels = 2 if layout == "stereo" else 1
            frames = []
            for i in range(0, samples.size, 1600):
                # The same signal in every channel, built here: the resampler's own upmix
                # would lower each channel by 3 dB.
                planes = np.repeat(samples[None, i : i + 1600], channels, axis=0)
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(planes), format="fltp", layout=layout
                )
                frame.sample_rate = SAMPLE_RATE
                frames += resampler.resample(frame)
            frames += resampler.resample(None)
            for frame in [*frames, None]:
                out.mux(astream.encode(frame))
        if video:
            for i in range(int(seconds * 25)):
                picture = np.full((48, 64, 3), i % 255, dtype=np.uint8)
                out.mux(vstream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            out.mux(vstream.encode(None))


@pytest.fixture(scope="module")
def ko_samples(eval_clip):
    return decode_audio(eval_clip(KO_CLIP)[0])


@pytest.mark.parametrize("clip_id", FILE_CLIPS)
def test_eval_files_decode_to_16k_mono_float32(eval_clip, clip_id):
    path, entry = eval_clip(clip_id)
    samples = decode_audio(path)
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert samples.size / SAMPLE_RATE == pytest.approx(entry["duration_s"], abs=0.05)
    assert -1.0 <= samples.min() < 0 < samples.max() <= 1.0
    info = probe_audio(path)
    assert info.duration_s == pytest.approx(entry["duration_s"], abs=0.05)
    assert (info.sample_rate, info.channels) == (16000, 1)
    assert info.container in {"flac", "wav"}


def test_whole_manifest_durations(eval_manifest, eval_clip):
    for entry in eval_manifest:
        samples = decode_audio(eval_clip(entry["id"])[0])
        assert samples.size / SAMPLE_RATE == pytest.approx(entry["duration_s"], abs=0.05)


def test_iter_decode_chunks_add_up_to_decode_audio(eval_clip, ko_samples):
    chunks = list(iter_decode(eval_clip(KO_CLIP)[0], chunk_seconds=2.0))
    assert [c.size for c in chunks[:-1]] == [2 * SAMPLE_RATE] * (len(chunks) - 1)
    assert 0 < chunks[-1].size <= 2 * SAMPLE_RATE
    assert all(c.dtype == np.float32 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), ko_samples)
    with pytest.raises(ValueError, match="chunk_seconds"):
        next(iter_decode(eval_clip(KO_CLIP)[0], chunk_seconds=0))


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "rate", "layout", "video", "container"),
    [
        ("clip.mp3", "mp3", "libmp3lame", 44100, "stereo", None, "mp3"),
        ("clip.m4a", "ipod", "aac", 44100, "stereo", None, "mov,mp4,m4a,3gp,3g2,mj2"),
        ("clip.ogg", "ogg", "libopus", 48000, "mono", None, "ogg"),
        ("clip.webm", "webm", "libopus", 48000, "stereo", None, "matroska,webm"),
        ("clip.mp4", "mp4", "aac", 48000, "stereo", "libx264", "mov,mp4,m4a,3gp,3g2,mj2"),
    ],
)
def test_compressed_formats_decode_back(
    tmp_path, ko_samples, name, fmt, codec, rate, layout, video, container
):
    path = tmp_path / name
    encode(path, ko_samples, fmt=fmt, codec=codec, rate=rate, layout=layout, video=video)
    info = probe_audio(path)
    assert info.container == container
    assert (info.sample_rate, info.channels) == (rate, 2 if layout == "stereo" else 1)
    samples = decode_audio(path)
    assert samples.dtype == np.float32
    assert np.abs(samples).max() <= 1.0
    # Encoder priming and padding (AAC adds about 1024 samples) make lossy files a little longer.
    assert samples.size / SAMPLE_RATE == pytest.approx(ko_samples.size / SAMPLE_RATE, abs=0.1)
    # Lossy, but still the same recording: loudness within 10 %.
    rms = float(np.sqrt(np.mean(samples**2)))
    assert rms == pytest.approx(float(np.sqrt(np.mean(ko_samples**2))), rel=0.1)


def test_file_objects_decode_like_paths(tmp_path, ko_samples):
    path = tmp_path / "clip.webm"
    encode(path, ko_samples, fmt="webm", codec="libopus", rate=48000)
    expected = decode_audio(path)
    np.testing.assert_array_equal(decode_audio(io.BytesIO(path.read_bytes())), expected)
    with open(path, "rb") as handle:
        assert probe_audio(handle).codec == "opus"
        handle.seek(0)
        np.testing.assert_array_equal(decode_audio(handle), expected)


def test_django_upload_already_read_to_the_end(tmp_path, ko_samples):
    from django.core.files.uploadedfile import SimpleUploadedFile

    path = tmp_path / "clip.ogg"
    encode(path, ko_samples, fmt="ogg", codec="libopus", rate=48000)
    upload = SimpleUploadedFile("clip.ogg", path.read_bytes(), content_type="audio/ogg")
    upload.read()  # e.g. hashed or saved before decoding
    assert probe_audio(upload).codec == "opus"
    np.testing.assert_array_equal(decode_audio(upload), decode_audio(path))


def test_44k_stereo_is_resampled_to_16k_mono(tmp_path):
    seconds, rate = 2.0, 44100
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "stereo.wav"
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(np.stack([tone, tone])), format="fltp", layout="stereo"
        )
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert (probe_audio(path).sample_rate, probe_audio(path).channels) == (44100, 2)
    samples = decode_audio(path)
    assert samples.size == pytest.approx(seconds * SAMPLE_RATE, abs=32)
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / samples.size
    assert peak_hz == pytest.approx(440, abs=2)
    # Channels are averaged: identical ones give the same tone, not one 3 dB louder
    # (swresample's default), which would clip loud recordings.
    assert np.abs(samples[1000:-1000]).max() == pytest.approx(0.5, abs=0.02)


def test_empty_wav_gives_empty_array(tmp_path):
    path = tmp_path / "empty.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
    samples = decode_audio(path)
    assert samples.dtype == np.float32
    assert samples.shape == (0,)
    assert list(iter_decode(path)) == []
    assert probe_audio(path).codec == "pcm_s16le"


def test_text_file_named_wav_is_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("회의록: 이것은 오디오가 아닙니다\n" * 50, encoding="utf-8")
    with pytest.raises(NotAudioError, match="not an audio or video file"):
        probe_audio(path)
    with pytest.raises(NotAudioError):
        decode_audio(path)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        # FFmpeg opens these as "tty" text and as pictures, which have no audio track; the
        # message must still say it is not a recording at all.
        ("notes.txt", b"hello\n" * 100),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(500)),
        ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(500)),
    ],
)
def test_text_and_pictures_are_not_audio(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(NotAudioError, match="not an audio or video file"):
        probe_audio(path)


def test_random_bytes_are_not_audio(tmp_path):
    path = tmp_path / "random.mp3"
    path.write_bytes(np.random.default_rng(0).bytes(64 * 1024))
    with pytest.raises(NotAudioError) as excinfo:
        probe_audio(path)
    assert isinstance(excinfo.value, AudioDecodeError)
    assert str(excinfo.value)  # a message fit for a 400 answer


def test_zero_byte_file_is_not_audio(tmp_path):
    path = tmp_path / "upload.m4a"
    path.write_bytes(b"")
    with pytest.raises(NotAudioError, match="empty"):
        probe_audio(path)


def test_video_without_audio_track(tmp_path, ko_samples):
    path = tmp_path / "silent-film.mp4"
    encode(
        path,
        ko_samples[: SAMPLE_RATE * 2],
        fmt="mp4",
        codec=None,
        rate=None,
        video="libx264",
        audio=False,
    )
    with pytest.raises(NotAudioError, match="no audio track"):
        probe_audio(path)
    with pytest.raises(NotAudioError, match="no audio track"):
        decode_audio(path)


def test_missing_file_is_a_caller_error_not_a_bad_upload(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe_audio(tmp_path / "nowhere.wav")


def test_pcm_s16le_frames():
    data = struct.pack("<4h", 0, 16384, -32768, 32767)
    samples = pcm_s16le_to_float32(data)
    assert samples.dtype == np.float32
    np.testing.assert_allclose(samples, [0.0, 0.5, -1.0, 32767 / 32768])
    assert pcm_s16le_to_float32(b"").size == 0
    with pytest.raises(AudioFrameError, match="even number of bytes, got 7"):
        pcm_s16le_to_float32(data[:7])


def test_f32le_frames():
    values = np.array([0.0, 0.25, -1.0, 1.5], dtype="<f4")
    samples = f32le_to_float32(values.tobytes())
    assert samples.dtype == np.float32
    np.testing.assert_array_equal(samples, [0.0, 0.25, -1.0, 1.0])  # overshoot clipped
    assert f32le_to_float32(b"").size == 0
    with pytest.raises(AudioFrameError, match="multiple of 4 bytes, got 6"):
        f32le_to_float32(values.tobytes()[:6])
    for bad in (np.nan, np.inf, -np.inf):
        poisoned = np.array([0.1, bad, 0.2], dtype="<f4").tobytes()
        with pytest.raises(AudioFrameError, match="NaN or infinite"):
            f32le_to_float32(poisoned)


def test_frame_helpers_accept_browser_base64_payload():
    # What the browser client sends: base64 of little-endian float32 at 16 kHz.
    tone = np.sin(np.linspace(0, 20, SAMPLE_RATE // 10)).astype("<f4")
    payload = base64.b64encode(tone.tobytes()).decode("ascii")
    np.testing.assert_array_equal(f32le_to_float32(base64.b64decode(payload)), tone)


def test_long_file_keeps_sample_positions(tmp_path, ko_samples):
    # Long-form material as the eval README suggests: the clip at known offsets with digital
    # silence between, written as 16-bit WAV. Offsets must survive decoding to the sample.
    offsets_s = [0, 150, 290]
    total = np.zeros(300 * SAMPLE_RATE, dtype=np.float32)
    for offset in offsets_s:
        start = offset * SAMPLE_RATE
        total[start : start + ko_samples.size] = ko_samples
    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((total * 32767).astype("<i2").tobytes())
    samples = decode_audio(path)
    assert samples.size == total.size
    assert samples.flags.owndata  # one array, no view into a larger buffer
    np.testing.assert_allclose(samples, total, atol=1 / 16384)
    chunks = list(iter_decode(path, chunk_seconds=60))
    assert [c.size for c in chunks] == [60 * SAMPLE_RATE] * 5


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "rate"),
    [("cut.webm", "webm", "libopus", 48000), ("cut.mp3", "mp3", "libmp3lame", 44100)],
)
def test_truncated_upload_keeps_what_arrived(tmp_path, ko_samples, name, fmt, codec, rate):
    # A browser recording or upload cut off half way: the first half is still a recording.
    whole = tmp_path / f"whole.{fmt}"
    encode(whole, ko_samples, fmt=fmt, codec=codec, rate=rate)
    data = whole.read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    samples = decode_audio(path)
    assert 0.3 < samples.size / ko_samples.size < 0.7
