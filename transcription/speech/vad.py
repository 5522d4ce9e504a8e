"""Silero VAD for streams: the process's one ONNX session, its window sizes, and the sample
buffer a stream's tail lives in (endpointing.py runs them; the batch path uses
faster-whisper's own VAD on whole files)."""

from __future__ import annotations

import threading

import numpy as np

SAMPLE_RATE = 16_000
# Silero VAD v6 (as shipped with faster-whisper) takes 512-sample windows at 16 kHz, each
# preceded by the last 64 samples of the window before it.
WINDOW = 512
CONTEXT = 64
# Audio is taken in slices of this many windows: one ONNX call per slice keeps the per-call
# overhead low, and a huge chunk (the original client sends seconds at once) never has to
# sit in the buffer whole before the VAD has looked at it.
_WINDOWS_PER_CALL = 32
# Sub-frames used to place a max-length cut inside the chosen window (4 ms at 16 kHz).
_SUBFRAME = 64


_session_lock = threading.Lock()
_session = None


def vad_session():
    """The process's Silero ONNX session, loaded once and shared by every stream.

    It is faster-whisper's own (``get_vad_model``), so a worker that also runs the batch VAD
    holds one copy. ``InferenceSession.run`` is thread-safe and keeps no state between calls:
    each stream passes its own recurrent state in and takes it back out.
    """
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                from faster_whisper.vad import get_vad_model

                _session = get_vad_model().session
    return _session


class SampleBuffer:
    """The tail of the stream, addressed by absolute sample index.

    Appending is amortised O(1): the kept part is moved to the front only when the array is
    full, and the array doubles only when the kept part fills more than half of it.
    """

    def __init__(self, capacity: int = 4 * SAMPLE_RATE) -> None:
        self._data = np.empty(capacity, dtype=np.float32)
        self._origin = 0  # absolute index of _data[0]
        self._lo = 0  # first kept sample, as an index into _data
        self._hi = 0  # one past the last sample, as an index into _data

    @property
    def first(self) -> int:
        return self._origin + self._lo

    @property
    def end(self) -> int:
        return self._origin + self._hi

    def __len__(self) -> int:
        return self._hi - self._lo

    def append(self, samples: np.ndarray) -> None:
        n = samples.size
        if self._hi + n > self._data.size:
            kept = self._hi - self._lo
            if 2 * (kept + n) > self._data.size:
                data = np.empty(2 * (kept + n), dtype=np.float32)
            else:
                data = self._data
            data[:kept] = self._data[self._lo : self._hi]
            self._data = data
            self._origin += self._lo
            self._lo, self._hi = 0, kept
        self._data[self._hi : self._hi + n] = samples
        self._hi += n

    def discard_before(self, index: int) -> None:
        self._lo = min(max(self._lo, index - self._origin), self._hi)

    def view(self, start: int, stop: int) -> np.ndarray:
        if start < self.first or stop > self.end or start > stop:
            # A bug in the bookkeeping, not bad input: never hand out the wrong audio.
            raise AssertionError(
                f"samples {start}..{stop} requested, buffer holds {self.first}..{self.end}"
            )
        return self._data[start - self._origin : stop - self._origin]

    def copy(self, start: int, stop: int) -> np.ndarray:
        return self.view(start, stop).copy()

    def clear(self, at: int) -> None:
        """Drop everything; the next sample appended is number ``at``."""
        if self._data.size > 4 * SAMPLE_RATE:
            # Give back what a long utterance made it grow to.
            self._data = np.empty(4 * SAMPLE_RATE, dtype=np.float32)
        self._origin, self._lo, self._hi = at, 0, 0


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
