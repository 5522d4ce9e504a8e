"""Decoding uploaded and live audio into the 16 kHz mono float32 samples Whisper and VAD expect.

Everything goes through PyAV (FFmpeg's libraries in-process) rather than an ``ffmpeg``
subprocess: no binary to install on workers, errors arrive as exceptions instead of stderr
text, and samples stream straight into numpy without a pipe.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import IO

import av
import av.error
import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000

# A path, or an open binary file (e.g. a Django UploadedFile) that PyAV can read and seek.
Source = str | os.PathLike | IO[bytes]

# Headers can lie (a truncated upload, a broken muxer): never pre-allocate more than this many
# samples on their word; the buffer grows past it if the audio really is longer.
_MAX_PREALLOC_SAMPLES = SAMPLE_RATE * 60 * 60 * 6
# Recordings cut off mid-packet (browser MediaRecorder, interrupted uploads) have a few broken
# packets; skipping them keeps the rest. A file where this many fail in a row is not audio.
_MAX_CONSECUTIVE_BAD_PACKETS = 32
# Sample rates a recording can have. Below telephone quality nothing is left to recognise;
# a header claiming 1 Hz is an attack: resampled to 16 kHz, 175 KB of it became 87,000 s of
# audio and 16 GB of worker memory.
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 768_000


class AudioDecodeError(Exception):
    """The audio could not be decoded; the message is fit to show to the person who sent it."""


class NotAudioError(AudioDecodeError):
    """The file is not something we can take audio from (no audio track, unknown format)."""


# What people read when a file is not a recording (an upload's 400, a failed transcript).
SEND_INSTEAD = "send a recording such as wav, mp3, m4a, ogg, webm or mp4"
NOT_MEDIA = f"not an audio or video file that can be read; {SEND_INSTEAD}"


class AudioTooLongError(AudioDecodeError):
    """The decoded audio runs past the longest recording the caller takes."""


class AudioFrameError(ValueError):
    """A raw PCM frame from the live path is malformed (wrong length, NaN or infinite values)."""


@dataclass(frozen=True)
class AudioInfo:
    """What probing a file found. ``duration_s`` is None when the container does not say."""

    duration_s: float | None
    codec: str
    sample_rate: int
    channels: int
    container: str


def _open(source: Source) -> av.container.InputContainer:
    is_path = isinstance(source, (str, os.PathLike))
    if is_path and os.path.exists(source) and os.path.getsize(source) == 0:
        # FFmpeg would say "invalid data"; an empty upload deserves a plainer answer.
        raise NotAudioError("the file is empty (0 bytes)")
    # An upload that was already read (saved, hashed) sits at its end; decoding means all of it.
    _rewind(source)
    try:
        return av.open(source, mode="r", metadata_errors="ignore")
    except FileNotFoundError:
        # A missing file is the caller's bug, not a bad upload: let it surface as itself.
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        # FFmpeg's reason stays on the chained exception (the logs), not in the message.
        raise NotAudioError(NOT_MEDIA) from exc


def _reason(exc: BaseException) -> str:
    # FFmpeg errors carry errno, message and filename; the filename is noise to a user.
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc).strip() or type(exc).__name__


# FFmpeg also "opens" pictures and, going by a .txt name, text (as ANSI art): those are not
# recordings that lack a sound track, and saying so would confuse the person uploading.
_NON_MEDIA_FORMATS = {"tty", "image2", "apng", "gif", "webp"}


def _audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    if not container.streams.audio:
        name = container.format.name
        if name in _NON_MEDIA_FORMATS or name.endswith("_pipe"):
            kind = container.format.long_name or name
            raise NotAudioError(
                f"not an audio or video file (it looks like {kind}); {SEND_INSTEAD}"
            )
        raise NotAudioError("this file has no audio track; send a recording that has sound")
    try:
        return container.streams.best("audio") or container.streams.audio[0]
    except (av.error.FFmpegError, ValueError):
        return container.streams.audio[0]


def _duration_s(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def probe_audio(source: Source) -> AudioInfo:
    """Open the file and read only as far as the first decoded audio frame.

    Raises NotAudioError when the file is unreadable, has no audio track, or its audio
    track cannot be decoded, so an upload endpoint can refuse it before queueing any work.
    A valid file with zero samples is fine (an empty recording is not a bad request).
    """
    with _open(source) as container:
        stream = _audio_stream(container)
        ctx = stream.codec_context
        info = AudioInfo(
            duration_s=_duration_s(container, stream),
            codec=ctx.name,
            sample_rate=int(ctx.sample_rate or 0),
            channels=int(ctx.channels or 0),
            container=container.format.name,
        )
        # Headers alone accept too much (a truncated mp3, a codec this build lacks): decoding
        # one frame is the cheapest proof the audio is really there.
        frames = _frames(container, stream)
        try:
            first = next(frames, None)
        except AudioDecodeError as exc:
            raise NotAudioError(str(exc)) from exc
        finally:
            frames.close()
        rate = info.sample_rate or (first.sample_rate if first is not None else 0)
        if (rate or first is not None) and not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise NotAudioError(
                f"its sample rate of {rate} Hz is not a recording's "
                f"({MIN_SAMPLE_RATE:,}–{MAX_SAMPLE_RATE:,} Hz); save it again at a usual rate "
                "such as 16,000 or 48,000 Hz"
            )
    if info.duration_s is None:
        # Streams written on the fly (browser WebM, raw ADTS) carry no duration; reading the
        # packets' timing without decoding them is cheap and tells it.
        info = replace(info, duration_s=_packet_duration_s(source))
    return info


def _packet_duration_s(source: Source) -> float | None:
    """The audio stream's length by its packets' timestamps, or None when they carry none."""
    with _open(source) as container:
        stream = _audio_stream(container)
        if stream.time_base is None:
            return None
        end = None
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                stop = packet.pts + (packet.duration or 0)
                end = stop if end is None else max(end, stop)
        except av.error.FFmpegError:
            pass  # a truncated tail: the packets read so far still say how long it is
        if end is None:
            return None
        start = stream.start_time or 0
        return max(0.0, float((end - start) * stream.time_base))


def _frames(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> Iterator[av.AudioFrame]:
    decoded_any = False
    bad_in_a_row = 0
    last_error: BaseException | None = None
    try:
        # Demuxing only the audio stream means video packets are skipped, never decoded.
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                bad_in_a_row += 1
                last_error = exc
                if bad_in_a_row >= _MAX_CONSECUTIVE_BAD_PACKETS:
                    break
                continue
            bad_in_a_row = 0
            for frame in frames:
                decoded_any = True
                yield frame
    except av.error.FFmpegError as exc:
        # Demuxer errors mid-file (truncated container): keep what was decoded, if anything.
        last_error = exc
    if last_error is None:
        return
    if not decoded_any:
        raise AudioDecodeError(f"the audio track could not be decoded ({_reason(last_error)})")
    # Some audio came out: a few damaged packets should not cost the whole recording.
    logger.warning("audio decoded with errors, damaged packets skipped: %s", _reason(last_error))


def _resampler() -> av.AudioResampler:
    # By default swresample downmixes stereo as (L + R) / sqrt(2): 3 dB louder for a centred
    # voice, so a loud recording would clip. Capping the mixing matrix at 1.0 makes it the
    # plain average of the channels.
    return av.AudioResampler(
        format="flt", layout="mono", rate=SAMPLE_RATE, options={"rematrix_maxval": "1.0"}
    )


def _resampled(source: Source) -> Iterator[np.ndarray]:
    """Yield 16 kHz mono float32 pieces (one per resampler output frame), clipped to [-1, 1]."""
    with _open(source) as container:
        stream = _audio_stream(container)
        resampler = _resampler()
        for frame in _frames(container, stream):
            # Timestamps play no part in a plain conversion, and broken ones in odd files would
            # otherwise make the filter graph complain.
            frame.pts = None
            try:
                outputs = resampler.resample(frame)
            except ValueError:
                # The input format changed mid-stream (some AAC/MP3 streams switch rate or
                # layout): flush the old resampler and start a matching one.
                yield from _pieces(resampler.resample(None))
                resampler = _resampler()
                outputs = resampler.resample(frame)
            yield from _pieces(outputs)
        yield from _pieces(resampler.resample(None))


def _pieces(frames: list[av.AudioFrame]) -> Iterator[np.ndarray]:
    for frame in frames:
        samples = frame.to_ndarray().reshape(-1)
        if samples.size:
            # Lossy decoders overshoot full scale slightly; downstream code assumes [-1, 1].
            np.clip(samples, -1.0, 1.0, out=samples)
            yield samples


def iter_decode(
    source: Source,
    chunk_seconds: float = 30.0,
    *,
    start_s: float = 0.0,
    max_duration_s: float | None = None,
) -> Iterator[np.ndarray]:
    """Decode incrementally, yielding float32 chunks of ``chunk_seconds`` (the last may be short).

    Each yielded array is fresh and owned by the caller; at most one chunk is buffered, so a
    multi-hour file never sits in memory whole. Empty audio yields nothing. The first
    ``start_s`` seconds are decoded and dropped (resuming a file part way); past
    ``max_duration_s`` of audio AudioTooLongError is raised, headers notwithstanding.
    """
    if not chunk_seconds > 0 or not math.isfinite(chunk_seconds):
        raise ValueError(f"chunk_seconds must be a positive number, got {chunk_seconds!r}")
    chunk_len = max(1, round(chunk_seconds * SAMPLE_RATE))
    skip = max(0, round(start_s * SAMPLE_RATE))
    limit = None if max_duration_s is None else int(max_duration_s * SAMPLE_RATE)
    decoded = 0
    chunk = np.empty(chunk_len, dtype=np.float32)
    filled = 0
    for piece in _resampled(source):
        decoded += piece.size
        if limit is not None and decoded > limit:
            raise AudioTooLongError(
                f"the audio is longer than the limit of {format_duration(max_duration_s)}"
            )
        if skip:
            dropped = min(skip, piece.size)
            skip -= dropped
            piece = piece[dropped:]
        offset = 0
        while offset < piece.size:
            take = min(chunk_len - filled, piece.size - offset)
            chunk[filled : filled + take] = piece[offset : offset + take]
            filled += take
            offset += take
            if filled == chunk_len:
                yield chunk
                chunk = np.empty(chunk_len, dtype=np.float32)
                filled = 0
    if filled:
        yield chunk[:filled].copy()


def decode_audio(source: Source) -> np.ndarray:
    """Decode the whole audio track to one 16 kHz mono float32 array in [-1, 1].

    Raises NotAudioError / AudioDecodeError with a message fit for the uploader. A file with
    no samples gives an empty array. (The worker streams uploads with ``iter_decode``, which
    also enforces the length limit.)
    """
    estimate = 0
    duration = probe_audio(source).duration_s
    if duration and math.isfinite(duration) and duration > 0:
        # A little headroom for resampler rounding, so the estimate rarely needs to grow.
        estimate = min(int(duration * SAMPLE_RATE) + SAMPLE_RATE, _MAX_PREALLOC_SAMPLES)
    buffer = np.empty(max(estimate, SAMPLE_RATE), dtype=np.float32)
    filled = 0
    for piece in _resampled(source):
        if filled + piece.size > buffer.size:
            # resize() reallocates in place where it can, unlike concatenating a list of
            # pieces, which would briefly hold the audio twice.
            buffer.resize(max(buffer.size * 3 // 2, filled + piece.size), refcheck=False)
        buffer[filled : filled + piece.size] = piece
        filled += piece.size
    buffer.resize(filled, refcheck=False)
    return buffer


def format_duration(seconds: float) -> str:
    """``4 h``, ``2 h 30 min``, ``1 min 40 s``, ``9 s``: a length as people say it."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    if secs and not hours or not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


def _rewind(source: Source) -> None:
    seek = getattr(source, "seek", None)
    if callable(seek):
        seek(0)


def pcm_s16le_to_float32(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Convert little-endian signed 16-bit PCM bytes to float32 in [-1, 1)."""
    if len(data) % 2:
        raise AudioFrameError(
            f"16-bit PCM needs an even number of bytes, got {len(data)}: the frame was cut mid-sample"
        )
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32)
    samples *= 1.0 / 32768.0
    return samples


def f32le_to_float32(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Convert little-endian float32 PCM bytes (the browser client's format) to a float32 array.

    Rejects NaN and infinity: one such sample poisons every feature computed over the window.
    Finite values outside [-1, 1] are clipped, as a browser's gain stage can overshoot.
    """
    if len(data) % 4:
        raise AudioFrameError(
            f"float32 PCM needs a multiple of 4 bytes, got {len(data)}: the frame was cut mid-sample"
        )
    samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).sum())
        raise AudioFrameError(
            f"audio frame has {bad} NaN or infinite sample(s) out of {samples.size}"
        )
    np.clip(samples, -1.0, 1.0, out=samples)
    return samples
