"""Streaming endpointing for the live path: cut a microphone stream into utterances.

``Endpointer`` takes 16 kHz mono float32 audio in chunks of any length and runs Silero VAD
on it incrementally: 512-sample windows, with the model's recurrent state and 64-sample
context carried from one window to the next, so a stream costs the same however it is
chunked and the work is linear in its length. It reports what it hears as events:

- ``SpeechStarted``: an utterance has begun (its ``at`` includes the speech pad before it).
  Emitted only once the speech has lasted ``min_speech_ms``, so a click or a cough never
  starts an utterance that is then taken back: there is no "cancelled" event.
- ``Partial``: about once per ``partial_interval_s`` of ongoing speech, the utterance's audio
  so far, for interim text.
- ``Pause`` (when ``pause_events`` is on): the speech stopped and ``pause_ms`` of silence
  has followed; it carries the end the utterance will have *if the silence lasts* and its
  audio up to ``pause_ms`` after the speech (all of it when ``pause_ms`` >= ``speech_pad_ms``;
  Whisper hears the rest of the pad, near-silence, as the zeros it pads every window with
  anyway). ``Resumed`` takes it back when speech starts again before ``min_silence_ms``.
  An ``Utterance`` ending at the same ``end`` begins with exactly the ``Pause``'s audio,
  so work started on it at the pause can stand as the final.
- ``Utterance``: the finished utterance, ``reason`` "silence" (``min_silence_ms`` of silence,
  ``speech_pad_ms`` of it kept), "max_length" (cut at the quietest point of the last couple of
  seconds before ``max_utterance_s``; the rest starts the next utterance) or "flush" (the
  stream stopped mid-utterance).

Times are seconds on the stream's timeline, counted from its first sample, so they can be
stored as segment start/end as they are. Utterances never overlap and their audio is exactly
the stream's samples between ``start`` and ``end``.

The events are in ``events.py``, the VAD session and the sample buffer in ``vad.py``.
The class is plain (no socket, no Django needed beyond ``EndpointerConfig.from_settings``),
in keeping with the rule that framing and endpointing are unit-tested without a consumer.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from transcription.speech.audio import AudioFrameError
from transcription.speech.events import (
    Event,
    Partial,
    Pause,
    Reason,
    Resumed,
    SpeechStarted,
    Utterance,
)
from transcription.speech.vad import (
    _SUBFRAME,
    _WINDOWS_PER_CALL,
    CONTEXT,
    SAMPLE_RATE,
    WINDOW,
    SampleBuffer,
    rms,
    vad_session,
)

if TYPE_CHECKING:
    from transcription.speech.engine import VadConfig


@dataclass(frozen=True)
class EndpointerConfig:
    """How the live stream is cut. Defaults match the batch path's ``VadConfig``."""

    threshold: float = 0.5
    # Hysteresis: once in speech, only probabilities below this count as silence (Silero's
    # own default is threshold - 0.15). None means that default.
    neg_threshold: float | None = None
    min_silence_ms: int = 500
    speech_pad_ms: int = 200
    min_speech_ms: int = 250
    max_utterance_s: float = 30.0
    # 0 turns partials off.
    partial_interval_s: float = 1.0
    # How far back from the max-length limit a cut may go looking for a pause.
    cut_search_s: float = 2.0
    # Announce pauses (``Pause``/``Resumed``) so a final can be started before the silence
    # rule has run out: after this much silence.
    pause_events: bool = False
    pause_ms: int = 100

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")
        if self.neg_threshold is not None and not 0.0 < self.neg_threshold <= self.threshold:
            raise ValueError(
                f"neg_threshold must be in (0, threshold={self.threshold}], "
                f"got {self.neg_threshold!r}"
            )
        if self.min_silence_ms <= 0:
            raise ValueError(f"min_silence_ms must be positive, got {self.min_silence_ms!r}")
        if self.speech_pad_ms < 0 or self.min_speech_ms < 0:
            raise ValueError("speech_pad_ms and min_speech_ms must not be negative")
        # An utterance must have room for its leading pad, the speech that confirms it and
        # a cut search that does not reach back into the pad.
        floor_s = max(1.0, 2 * (self.speech_pad_ms + self.min_speech_ms) / 1000)
        if not self.max_utterance_s >= floor_s or not math.isfinite(self.max_utterance_s):
            raise ValueError(
                f"max_utterance_s must be at least {floor_s:g} s with these pads, "
                f"got {self.max_utterance_s!r}"
            )
        if self.partial_interval_s < 0 or 0 < self.partial_interval_s < 0.1:
            raise ValueError(
                f"partial_interval_s must be 0 (off) or at least 0.1, got {self.partial_interval_s!r}"
            )
        if self.pause_ms <= 0:
            # (One of min_silence_ms or more is allowed: the utterance always ends first,
            # so there are simply no pauses.)
            raise ValueError(f"pause_ms must be positive, got {self.pause_ms!r}")
        if self.cut_search_s <= 0:
            raise ValueError(f"cut_search_s must be positive, got {self.cut_search_s!r}")

    @property
    def effective_neg_threshold(self) -> float:
        if self.neg_threshold is not None:
            return self.neg_threshold
        return max(self.threshold - 0.15, 0.01)

    @classmethod
    def from_vad(cls, vad: VadConfig, **overrides) -> EndpointerConfig:
        values = {
            "threshold": vad.threshold,
            "min_silence_ms": vad.min_silence_ms,
            "speech_pad_ms": vad.speech_pad_ms,
            "min_speech_ms": vad.min_speech_ms,
            "max_utterance_s": vad.max_utterance_s,
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_settings(cls, **overrides) -> EndpointerConfig:
        """The ``VAD_*`` settings, the same ones the batch path uses."""
        from transcription.speech.engine import VadConfig

        return cls.from_vad(VadConfig.from_settings(), **overrides)


class Endpointer:
    """Incremental Silero VAD endpointing of one audio stream. See the module docstring.

    One instance per stream, used from one thread (or one task) at a time; many instances
    share the ONNX session. ``feed`` and ``flush`` return the events they caused, in timeline
    order. After ``flush`` the instance takes more audio as a fresh stream whose timeline
    goes on from ``position_s``; ``reset`` throws the buffered audio away instead.
    """

    def __init__(
        self,
        config: EndpointerConfig | VadConfig | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        if sample_rate != SAMPLE_RATE:
            # The shipped model is the 16 kHz one; resampling belongs to the decoder.
            raise ValueError(f"the endpointer takes 16 kHz audio, got {sample_rate} Hz")
        if config is None:
            config = _default_config()
        elif not isinstance(config, EndpointerConfig):
            config = EndpointerConfig.from_vad(config)
        self.config = config
        self.sample_rate = sample_rate
        rate = sample_rate
        self._threshold = config.threshold
        self._neg_threshold = config.effective_neg_threshold
        self._min_silence = round(config.min_silence_ms * rate / 1000)
        self._pad = round(config.speech_pad_ms * rate / 1000)
        self._pause = round(config.pause_ms * rate / 1000)
        self._min_speech = round(config.min_speech_ms * rate / 1000)
        self._max_len = round(config.max_utterance_s * rate)
        self._partial_every = round(config.partial_interval_s * rate)
        self._cut_search = min(round(config.cut_search_s * rate), self._max_len // 2)
        self._session = vad_session()
        self._buffer = SampleBuffer()
        # (window start, speech probability, RMS) of the latest windows, for max-length cuts.
        self._recent: deque[tuple[int, float, float]] = deque(maxlen=self._cut_search // WINDOW + 2)
        self._next_id = 1
        self._total = 0  # samples received
        self._prev_end = 0  # no utterance may start before this sample
        self._restart_vad(at=0)

    # --- public -------------------------------------------------------------------

    @property
    def position_s(self) -> float:
        """Seconds of audio received so far (the stream's current time)."""
        return self._total / self.sample_rate

    @property
    def in_speech(self) -> bool:
        """True between a ``SpeechStarted`` and the ``Utterance`` that closes it."""
        return self._open and self._confirmed

    @property
    def buffered_s(self) -> float:
        """Seconds of audio held in memory (pre-roll, current utterance, unread tail)."""
        return len(self._buffer) / self.sample_rate

    @property
    def backlog_s(self) -> float:
        """Seconds received but not yet seen by the VAD (always under one 32 ms window)."""
        return (self._total - self._vad_pos) / self.sample_rate

    def feed(self, samples: np.ndarray) -> list[Event]:
        """Take the next chunk of the stream (any length, float32 in [-1, 1])."""
        chunk = np.asarray(samples, dtype=np.float32)
        if chunk.ndim != 1:
            raise AudioFrameError(f"expected mono samples (1-D), got shape {chunk.shape}")
        if not np.isfinite(chunk).all():
            # One NaN would poison the VAD's recurrent state for the rest of the stream.
            raise AudioFrameError("audio chunk has NaN or infinite samples")
        events: list[Event] = []
        step = _WINDOWS_PER_CALL * WINDOW
        for offset in range(0, chunk.size, step):
            piece = chunk[offset : offset + step]
            self._buffer.append(piece)
            self._total += piece.size
            self._run_vad(events)
        return events

    def flush(self) -> list[Event]:
        """End of stream: whatever speech is buffered becomes a final utterance.

        The last partial window is zero-padded and classified (as Silero does at the end of a
        file). Speech still going on when the stream stops is kept even when shorter than
        ``min_speech_ms``: it may be a word cut off by the stop button, and nothing said may
        be lost; a burst that had already ended is held to ``min_speech_ms`` as usual.
        """
        events: list[Event] = []
        if self._total > self._vad_pos:
            start = self._vad_pos
            row = np.zeros((1, CONTEXT + WINDOW), dtype=np.float32)
            row[0, :CONTEXT] = self._context
            row[0, CONTEXT : CONTEXT + self._total - start] = self._buffer.view(start, self._total)
            prob = float(self._infer(row)[0])
            energy = rms(self._buffer.view(start, self._total))
            self._step(start, self._total, prob, energy, events)
            self._vad_pos = self._total
        if self._closing:
            self._emit_utterance(min(self._end_target, self._total), "silence", events)
        elif self._open:
            if self._temp_end is None:
                if not self._confirmed:
                    self._confirm(events)
                self._emit_utterance(self._total, "flush", events)
            elif self._confirmed:
                end = min(self._temp_end + self._pad, self._total)
                self._emit_utterance(end, "flush", events)
        self._prev_end = self._total
        self._restart_vad(at=self._total)
        return events

    def reset(self) -> None:
        """Forget buffered audio and VAD state without emitting anything; the timeline and the
        utterance ids go on (e.g. the client changed its settings mid-stream)."""
        self._prev_end = self._total
        self._restart_vad(at=self._total)

    # --- VAD ----------------------------------------------------------------------

    def _restart_vad(self, at: int) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._vad_pos = at  # first sample the VAD has not seen
        self._buffer.clear(at)
        self._recent.clear()
        self._open = False  # an utterance (confirmed or not) is under way
        self._confirmed = False  # ... and has been announced with SpeechStarted
        self._closing = False  # ... its speech ended; waiting for the trailing pad
        self._utt_start = at
        self._speech_start = at
        self._temp_end: int | None = None  # where the current run of silence began
        self._paused_at: int | None = None  # the _temp_end a Pause was announced for
        self._end_target = at
        self._next_partial = at
        self._utt_id = 0

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Speech probabilities of consecutive windows (rows: context + window)."""
        probs, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        return probs.reshape(-1)

    def _run_vad(self, events: list[Event]) -> None:
        count = (self._total - self._vad_pos) // WINDOW
        if count == 0:
            return
        start = self._vad_pos
        windows = self._buffer.view(start, start + count * WINDOW).reshape(count, WINDOW)
        batch = np.empty((count, CONTEXT + WINDOW), dtype=np.float32)
        batch[:, CONTEXT:] = windows
        batch[0, :CONTEXT] = self._context
        batch[1:, :CONTEXT] = windows[:-1, -CONTEXT:]
        self._context = windows[-1, -CONTEXT:].copy()
        probs = self._infer(batch)
        energies = np.sqrt(np.einsum("ij,ij->i", windows, windows) / WINDOW)
        for i in range(count):
            ws = start + i * WINDOW
            self._step(ws, ws + WINDOW, float(probs[i]), float(energies[i]), events)
        self._vad_pos = start + count * WINDOW
        # Keep the open utterance, or else just enough pre-roll to pad the next one.
        keep = self._utt_start if self._open else self._vad_pos - self._pad
        self._buffer.discard_before(max(keep, self._prev_end))

    # --- the state machine (Silero's get_speech_timestamps, made incremental) -----

    def _step(self, ws: int, we: int, prob: float, rms: float, events: list[Event]) -> None:
        """Advance over one window [ws, we) with speech probability ``prob``."""
        if self._closing:
            if prob >= self._threshold:
                # Speech again before the trailing pad was complete: split the gap, as
                # Silero does for speeches closer than two pads.
                middle = self._temp_end + (ws - self._temp_end) // 2
                self._emit_utterance(middle, "silence", events)
            elif we >= self._end_target:
                self._emit_utterance(self._end_target, "silence", events)
                self._recent.append((ws, prob, rms))
                return
            else:
                self._recent.append((ws, prob, rms))
                return

        if self._open and self._confirmed and we - self._utt_start > self._max_len:
            self._cut(ws, events)
        self._recent.append((ws, prob, rms))

        if not self._open:
            if prob >= self._threshold:
                self._open = True
                self._confirmed = False
                self._speech_start = ws
                self._utt_start = max(ws - self._pad, self._prev_end)
                self._temp_end = None
                self._maybe_confirm(we, events)
            return

        if prob >= self._threshold:
            self._temp_end = None
            if self._paused_at is not None:
                events.append(Resumed(self._utt_id))
                self._paused_at = None
        else:
            if prob < self._neg_threshold and self._temp_end is None:
                self._temp_end = ws
            # Once a silence has begun only a confident speech window ends it; windows in
            # the hysteresis band count towards it (Silero checks only on windows below
            # neg_threshold, which lets a long murmur hold an utterance open forever).
            if self._temp_end is not None and we - self._temp_end >= self._min_silence:
                if not self._confirmed:
                    # A burst shorter than min_speech_ms: never announced, simply dropped.
                    self._open = False
                    return
                self._end_target = min(self._temp_end + self._pad, self._utt_start + self._max_len)
                if we >= self._end_target:
                    self._emit_utterance(self._end_target, "silence", events)
                else:
                    self._closing = True
                return
            if self._temp_end is not None and self._confirmed and self.config.pause_events:
                self._maybe_pause(we, events)
        self._maybe_confirm(we, events)
        if (
            self._confirmed
            and self._temp_end is None
            and self._partial_every
            and we >= self._next_partial
        ):
            events.append(
                Partial(
                    self._utt_id,
                    self._buffer.copy(self._utt_start, we),
                    self._utt_start / self.sample_rate,
                    we / self.sample_rate,
                )
            )
            self._next_partial += self._partial_every
            if self._next_partial <= we:
                # Speech resumed after a pause: count the next interval from now, no burst.
                self._next_partial = we + self._partial_every

    def _maybe_pause(self, we: int, events: list[Event]) -> None:
        if self._paused_at == self._temp_end:
            return
        # The end a "silence" Utterance would get (see the min_silence branch of _step).
        end = min(self._temp_end + self._pad, self._utt_start + self._max_len)
        if we >= self._temp_end + self._pause:
            heard = min(self._temp_end + self._pause, end)
            self._paused_at = self._temp_end
            events.append(
                Pause(
                    self._utt_id,
                    self._buffer.copy(self._utt_start, heard),
                    self._utt_start / self.sample_rate,
                    end / self.sample_rate,
                )
            )

    def _maybe_confirm(self, we: int, events: list[Event]) -> None:
        if (
            not self._confirmed
            and self._temp_end is None
            and we - self._speech_start > self._min_speech
        ):
            self._confirm(events)

    def _confirm(self, events: list[Event]) -> None:
        self._confirmed = True
        self._utt_id = self._next_id
        self._next_id += 1
        self._next_partial = self._utt_start + self._partial_every
        events.append(SpeechStarted(self._utt_start / self.sample_rate, self._utt_id))

    def _emit_utterance(self, end: int, reason: Reason, events: list[Event]) -> None:
        events.append(
            Utterance(
                self._utt_id,
                self._buffer.copy(self._utt_start, end),
                self._utt_start / self.sample_rate,
                end / self.sample_rate,
                reason,
            )
        )
        self._prev_end = end
        self._open = self._confirmed = self._closing = False
        self._temp_end = self._paused_at = None

    def _cut(self, ws: int, events: list[Event]) -> None:
        """The utterance reached max_utterance_s: end it at the quietest point before ``ws``
        and let the rest begin the next one."""
        cut = self._quietest_point(ws)
        temp_end = self._temp_end
        self._emit_utterance(cut, "max_length", events)
        if temp_end is not None and temp_end <= cut:
            # The speech had already stopped before the cut; what follows is silence.
            return
        # The speech goes on past the cut: it is the same speaker mid-sentence, so the rest
        # is confirmed at once (min_speech_ms does not apply; nothing may be lost).
        self._open = True
        self._utt_start = self._speech_start = cut
        self._temp_end = temp_end
        self._confirm(events)

    def _quietest_point(self, ws: int) -> int:
        """A sample in the last ``cut_search_s`` before ``ws`` (and in the second half of the
        utterance) where a cut is least likely to split a word.

        Windows whose speech probability is close to the lowest are candidates (a pause is
        what the VAD is sure about); of those the one with the least energy wins, and the cut
        goes in the middle of its quietest 4 ms sub-frame.
        """
        floor = max(ws - self._cut_search, self._utt_start + (ws - self._utt_start) // 2)
        candidates = [(s, p, e) for s, p, e in self._recent if s >= floor and s + WINDOW <= ws]
        if not candidates:
            return ws
        lowest = min(p for _s, p, _e in candidates)
        start = min((e, s) for s, p, e in candidates if p <= lowest + 0.1)[1]
        sub = self._buffer.view(start, start + WINDOW).reshape(-1, _SUBFRAME)
        quietest = int(np.argmin(np.einsum("ij,ij->i", sub, sub)))
        return start + quietest * _SUBFRAME + _SUBFRAME // 2


def _default_config() -> EndpointerConfig:
    from django.conf import settings

    # Usable outside Django (scripts, notebooks): the defaults match the settings' defaults.
    return EndpointerConfig.from_settings() if settings.configured else EndpointerConfig()
