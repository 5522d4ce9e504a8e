"""A live session's recording: the audio the consumer received, as a 16 kHz mono 16-bit WAV
file that grows as the session goes on.

The header's sizes are rewritten after every append, so the file is a playable WAV at every
moment: the transcript page can play a session still running, and a web process that dies
leaves a file holding everything written before. Sample ``k`` of the file is second
``k / 16000`` of the session's timeline, the one its segments' start and end are on; a
resumed session first brings the file to the point where the timeline goes on.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
HEADER_BYTES = 44
BYTES_PER_SAMPLE = 2
# A WAV file counts its bytes in 32 bits: about 37 hours at 16 kHz. A session that goes on
# past that keeps being transcribed; its recording stops there.
MAX_DATA_BYTES = 0xFFFFFFFF - 36


def _header(data_bytes: int, sample_rate: int = SAMPLE_RATE) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack(
            "<IHHIIHH",
            16,  # size of the fmt chunk
            1,  # PCM
            1,  # mono
            sample_rate,
            sample_rate * BYTES_PER_SAMPLE,
            BYTES_PER_SAMPLE,
            8 * BYTES_PER_SAMPLE,
        )
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class RecordingError(Exception):
    """The file is there but is not a recording this module wrote, or it is full."""


class LiveRecording:
    """Appends float32 samples in [-1, 1] to ``path``. Use from one thread at a time."""

    def __init__(self, path: Path | str, sample_rate: int = SAMPLE_RATE) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            self._file = open(self.path, "r+b")  # noqa: SIM115 (held open for the session)
            self._data_bytes = self._read_header()
            # A write cut short (the process died mid-append) leaves bytes the header does
            # not count, or half a sample: the header is the truth.
            self._file.truncate(HEADER_BYTES + self._data_bytes)
        else:
            self._file = open(self.path, "w+b")  # noqa: SIM115
            self._data_bytes = 0
            self._file.write(_header(0, sample_rate))
            self._file.flush()

    def _read_header(self) -> int:
        self._file.seek(0)
        head = self._file.read(HEADER_BYTES)
        if (
            len(head) < HEADER_BYTES
            or head[0:4] != b"RIFF"
            or head[8:16] != b"WAVEfmt "
            or head[36:40] != b"data"
        ):
            raise RecordingError(f"{self.path} is not a live recording")
        channels, rate = struct.unpack("<HI", head[22:28])
        bits = struct.unpack("<H", head[34:36])[0]
        if (channels, rate, bits) != (1, self.sample_rate, 8 * BYTES_PER_SAMPLE):
            raise RecordingError(f"{self.path} is {channels} ch, {rate} Hz, {bits} bit")
        declared = struct.unpack("<I", head[40:44])[0]
        present = self.path.stat().st_size - HEADER_BYTES
        usable = min(declared, max(present, 0))
        return usable - usable % BYTES_PER_SAMPLE

    @property
    def duration_s(self) -> float:
        return self._data_bytes / BYTES_PER_SAMPLE / self.sample_rate

    def append(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
        self._write_at_end(pcm.tobytes())

    def align(self, seconds: float) -> None:
        """Make the file exactly ``seconds`` long: silence added, or the tail cut."""
        wanted = round(max(seconds, 0.0) * self.sample_rate) * BYTES_PER_SAMPLE
        if wanted > self._data_bytes:
            missing = wanted - self._data_bytes
            chunk = bytes(min(missing, 1 << 20))
            while missing > 0:
                self._write_at_end(chunk[:missing])
                missing -= min(missing, len(chunk))
        elif wanted < self._data_bytes:
            self._file.truncate(HEADER_BYTES + wanted)
            self._data_bytes = wanted
            self._write_sizes()

    def _write_at_end(self, data: bytes) -> None:
        if self._data_bytes + len(data) > MAX_DATA_BYTES:
            raise RecordingError(f"{self.path} reached the largest size a WAV file can have")
        self._file.seek(HEADER_BYTES + self._data_bytes)
        self._file.write(data)
        self._data_bytes += len(data)
        self._write_sizes()

    def _write_sizes(self) -> None:
        self._file.seek(4)
        self._file.write(struct.pack("<I", 36 + self._data_bytes))
        self._file.seek(40)
        self._file.write(struct.pack("<I", self._data_bytes))
        # Into the OS, not onto the disk: a process that dies leaves it there; a machine
        # that dies loses the last moments, as it would of any file.
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> LiveRecording:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


# Reads ``length`` bytes at ``offset`` of a recording (fewer where it ends): a local file, or
# ranged reads of the stored object (transcription/storage.py), so that a worker on another
# host reads a span without a copy of the whole file.
Reader = Callable[[int, int], bytes]


def file_reader(path: Path | str) -> Reader:
    def read_at(offset: int, length: int) -> bytes:
        with open(path, "rb") as file:
            file.seek(offset)
            return file.read(length)

    return read_at


def _reader(source: Path | str | Reader) -> Reader:
    return source if callable(source) else file_reader(source)


def _data_info(read_at: Reader) -> tuple[int, int] | None:
    """The sample rate and the data bytes the header counts, or None for no recording."""
    head = read_at(0, HEADER_BYTES)
    if len(head) < HEADER_BYTES or head[0:4] != b"RIFF" or head[36:40] != b"data":
        return None
    return struct.unpack("<I", head[24:28])[0], struct.unpack("<I", head[40:44])[0]


def read_span(source: Path | str | Reader, start: float, end: float) -> np.ndarray | None:
    """Seconds ``start`` to ``end`` of the recording (a path, or a ``Reader``) as float32
    samples; None when it is missing, not a recording, or does not reach ``end`` yet. Reads
    while the consumer appends: the header counts only what was written. A 16 kHz mono
    16-bit WAV has its sample ``k`` at byte ``44 + 2k``: two small reads, whatever its size."""
    read_at = _reader(source)
    try:
        info = _data_info(read_at)
        if info is None:
            return None
        rate, data_bytes = info
        first = max(round(start * rate), 0)
        last = round(end * rate)
        if last > data_bytes // BYTES_PER_SAMPLE or last <= first:
            return None
        raw = read_at(HEADER_BYTES + first * BYTES_PER_SAMPLE, (last - first) * BYTES_PER_SAMPLE)
    except OSError:
        return None
    pcm = np.frombuffer(raw[: len(raw) - len(raw) % BYTES_PER_SAMPLE], dtype="<i2")
    return (pcm.astype(np.float32) / 32767.0).astype(np.float32)


def recorded_s(source: Path | str | Reader) -> float:
    """How many seconds the recording (a path, or a ``Reader``) holds (0 when there is none)."""
    try:
        info = _data_info(_reader(source))
    except OSError:
        return 0.0
    if info is None:
        return 0.0
    rate, data_bytes = info
    return data_bytes / BYTES_PER_SAMPLE / max(rate, 1)


def recording_name(transcript_id: str, when) -> str:
    """A live session's recording's name in storage."""
    return os.path.join("live", f"{when:%Y/%m/%d}", f"{transcript_id}.wav")
