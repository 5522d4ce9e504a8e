"""Files built to cost a worker far more than their size: refused at upload, and guarded
again in the worker (issue 12, items 1 and 2), plus the truncated file that used to end
``done`` without a word of warning."""

from __future__ import annotations

import math
import struct
import subprocess

import av
import numpy as np
import pytest
from django.core.files.base import ContentFile

from tests.audio_files import write_wav
from tests.tools import require_tool
from transcription.batch.pipeline import transcribe_transcript, truncation_warning
from transcription.models import Transcript
from transcription.speech.audio import (
    AudioTooLongError,
    NotAudioError,
    decode_audio,
    iter_decode,
    probe_audio,
)

pytestmark = pytest.mark.django_db


def one_hertz_wav(tmp_path, eval_clip):
    """An eval clip at 8 kHz whose ``fmt `` chunk then says 1 Hz (and 2 bytes a second):
    175 KB that claimed 87,430 s and grew the stt worker past 16 GB."""
    clip, _ = eval_clip("ko_picovoice_leopard_test_ko")
    path = tmp_path / "one_hertz.wav"
    sox = require_tool("sox")
    subprocess.run([sox, str(clip), "-r", "8000", "-c", "1", "-b", "16", str(path)], check=True)
    data = bytearray(path.read_bytes())
    fmt = data.index(b"fmt ")
    # fmt chunk: id, size, format, channels, then the sample rate and byte rate.
    struct.pack_into("<II", data, fmt + 12, 1, 2)
    path.write_bytes(bytes(data))
    return path


def hours_of_opus(path, hours: float):
    """Real Ogg Opus silence at 6 kbit/s: one minute encoded, its packets then repeated
    with later timestamps (encoding ten hours frame by frame would take minutes)."""
    minute = path.with_suffix(".minute.ogg")
    frame = 960  # 60 ms at 16 kHz
    with av.open(str(minute), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=16000, layout="mono")
        stream.bit_rate = 6000
        stream.codec_context.options = {"frame_duration": "60", "application": "voip"}
        silence = np.zeros((1, frame), dtype=np.int16)
        for i in range(1000):
            samples = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
            samples.sample_rate, samples.pts = 16000, i * frame
            out.mux(stream.encode(samples))
        out.mux(stream.encode(None))
    with av.open(str(minute)) as source:
        template = source.streams.audio[0]
        packets = [p for p in source.demux(template) if p.size]
        span = packets[-1].pts + packets[-1].duration - packets[0].pts
        repeats = math.ceil(hours * 3600 / float(span * template.time_base))
        with av.open(str(path), "w", format="ogg") as out:
            stream = out.add_stream_from_template(template)
            for repeat in range(repeats):
                for packet in packets:
                    copy = av.Packet(bytes(packet))
                    copy.pts = copy.dts = packet.pts + repeat * span
                    copy.duration, copy.time_base, copy.stream = (
                        packet.duration,
                        packet.time_base,
                        stream,
                    )
                    out.mux(copy)
    minute.unlink()
    return path


def post(client, path):
    # The refusals' wording is checked in English (the interface's default is Korean).
    with open(path, "rb") as handle:
        return client.post("/api/transcripts/", {"file": handle}, headers={"Accept-Language": "en"})


def test_a_wav_claiming_one_hertz_is_refused_at_upload(owner_client, media, tmp_path, eval_clip):
    path = one_hertz_wav(tmp_path, eval_clip)
    assert path.stat().st_size < 200_000
    response = post(owner_client, path)
    assert response.status_code == 400, response.content
    assert "1 Hz" in response.json()["error"]
    assert not Transcript.objects.exists()
    # The worker refuses it too, should one reach it some other way (an older upload).
    with pytest.raises(NotAudioError):
        decode_audio(path)


def test_ten_hours_of_opus_is_refused_at_upload(owner_client, media, tmp_path, settings):
    path = hours_of_opus(tmp_path / "ten_hours.ogg", 10)
    assert path.stat().st_size < settings.UPLOAD_MAX_MB * 1024 * 1024
    assert probe_audio(path).duration_s > 10 * 3600 - 1
    response = post(owner_client, path)
    assert response.status_code == 413, response.content
    error = response.json()["error"]
    assert "10 h" in error and "limit is 4 h" in error
    assert not Transcript.objects.exists()


def test_the_duration_limit_is_a_setting(owner_client, media, tmp_path, settings):
    path = write_wav(tmp_path / "minute.wav", np.zeros(16000 * 60, dtype=np.float32))
    settings.UPLOAD_MAX_DURATION_S = 59
    assert post(owner_client, path).status_code == 413
    settings.UPLOAD_MAX_DURATION_S = 61
    assert post(owner_client, path).status_code == 202


def test_a_stream_without_a_declared_length_is_measured(tmp_path):
    # Browser MediaRecorder WebM and raw ADTS say nothing of their length in the header.
    path = tmp_path / "clip.aac"
    with av.open(str(path), "w", format="adts") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(100):
            samples = av.AudioFrame.from_ndarray(
                np.zeros((1, 1600), dtype=np.float32), format="fltp", layout="mono"
            )
            samples.sample_rate, samples.pts = 16000, i * 1600
            out.mux(stream.encode(samples))
        out.mux(stream.encode(None))
    assert probe_audio(path).duration_s == pytest.approx(10.0, abs=0.2)


def test_the_worker_stops_decoding_at_the_limit(tmp_path):
    # A header may understate the length; the decoded samples are counted as they come.
    path = write_wav(tmp_path / "minute.wav", np.zeros(16000 * 60, dtype=np.float32))
    with pytest.raises(AudioTooLongError, match="30 s"):
        list(iter_decode(path, max_duration_s=30))
    assert sum(chunk.size for chunk in iter_decode(path, max_duration_s=61)) == 16000 * 60


def test_an_upload_longer_than_the_limit_fails_in_the_worker(media, settings, tmp_path):
    path = write_wav(tmp_path / "minute.wav", np.zeros(16000 * 60, dtype=np.float32))
    row = Transcript.objects.create(source=Transcript.Source.UPLOAD, language="ko")
    row.audio.save("minute.wav", ContentFile(path.read_bytes()))
    settings.UPLOAD_MAX_DURATION_S = 30
    done = transcribe_transcript(row.pk)
    assert (done.status, done.error_code) == ("failed", Transcript.ErrorCode.TOO_LONG)
    assert "limit" in done.error


def truncated_m4a(path, seconds: float, keep: float):
    """An M4A whose index (written first, as phones and ``faststart`` do) describes
    ``seconds`` of audio, cut to its first ``keep`` share of bytes: an upload cut off in
    transfer. Quiet noise, so the cut removes real packets."""
    whole = path.with_suffix(".whole.m4a")
    rng = np.random.default_rng(0)
    with av.open(str(whole), "w", format="ipod", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(int(seconds * 10)):
            noise = (rng.standard_normal((1, 1600)) * 0.01).astype(np.float32)
            samples = av.AudioFrame.from_ndarray(noise, format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 16000, i * 1600
            out.mux(stream.encode(samples))
        out.mux(stream.encode(None))
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    whole.unlink()
    return path


def test_a_truncated_file_ends_done_with_a_warning(media, tmp_path):
    path = truncated_m4a(tmp_path / "cut.m4a", seconds=60, keep=0.25)
    declared = probe_audio(path).duration_s
    assert declared == pytest.approx(60.0, abs=0.1)
    row = Transcript.objects.create(
        source=Transcript.Source.UPLOAD, language="ko", duration=declared
    )
    row.audio.save("cut.m4a", ContentFile(path.read_bytes()))
    done = transcribe_transcript(row.pk)
    assert done.status == "done"
    assert done.duration < 20
    assert "truncated" in done.warning and "1 min long" in done.warning
    assert Transcript.objects.get(pk=row.pk).warning == done.warning


def test_whole_files_get_no_warning():
    assert truncation_warning(60.0, 59.9) == ""
    assert truncation_warning(None, 10.0) == ""
    # Short files: a few seconds of difference is encoder padding, not a cut.
    assert truncation_warning(6.0, 2.0) == ""
    assert truncation_warning(600.0, 100.0).startswith("the file holds 1 min 40 s")


def peak_rss_mb(command: list[str], env: dict[str, str]) -> float:
    """Run ``command`` to its end, sampling its resident memory every 20 ms."""
    import os
    import time

    import psutil

    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    watched, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    assert process.wait() == 0, process.stderr.read().decode()[-2000:]
    return peak / 2**20


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_memory_stays_flat_in_the_files_length(tmp_path):
    # Decoded whole, an hour of audio is 230 MB of samples and VAD's copies on top; read in
    # windows, the worker holds ten minutes at a time whatever the length.
    import sys

    from tests.celery_workers import test_database_url
    from tests.conftest import REPO_ROOT

    env = {"DATABASE_URL": test_database_url(), "UPLOAD_MAX_DURATION_S": str(11 * 3600)}
    peaks = {}
    for name, hours in (("short", 0.2), ("long", 1.2)):
        path = hours_of_opus(tmp_path / f"{name}.ogg", hours)
        command = [sys.executable, str(REPO_ROOT / "manage.py"), "transcribe", str(path)]
        command += ["--no-keywords", "--format", "txt"]
        peaks[name] = peak_rss_mb(command, env)
    assert peaks["long"] < 1536
    assert peaks["long"] - peaks["short"] < 100, peaks
