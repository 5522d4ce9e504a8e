"""A live session's decisions, as a plain class: endpointer events and worker results in,
actions out. No socket, no Redis, no workers: the consumer carries the actions out.

What it decides:
- utterance numbering on the session's timeline (``offset`` and ``next_utterance`` go on
  where a resumed session stopped);
- interim-text requests, one in flight at a time (``PartialGate``);
- early finals: at a pause the utterance as heard so far goes to a worker; when the
  silence lasts, that guess is the final (the consumer settles it FINAL), when speech
  resumes it is voided and the utterance goes on;
- finals waiting for a worker (the backlog and the latency of the last one);
- the original client's protocol, which gets one ``transcription`` message per final
  with its keywords: a final is held until its keywords come, or for
  ``LEGACY_KEYWORD_WAIT_S``;
- the end of a native stream: ``stopped`` is the session's last event, so it waits for
  every final of the stream and every keywords event still due, up to a bound
  (``LIVE_STOP_WAIT_S``), after which an ``unfinished`` error names what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from django.conf import settings

from transcription.live.finals import SAME_SPEECH_SHARE, overlap_share
from transcription.live.store import Decision, early_key
from transcription.speech.endpointing import (
    Endpointer,
    EndpointerConfig,
    Partial,
    Pause,
    Resumed,
    SpeechStarted,
    Utterance,
)

# How long an interim-text request nobody answered holds the gate.
PARTIAL_ANSWER_WAIT_S = 3.0
# How long a final waits for its keywords before the original client gets it without them.
LEGACY_KEYWORD_WAIT_S = 3.0
# How many utterance numbers an ``unfinished`` error names before "and N more".
UNFINISHED_NAMED = 10

Mode = Literal["legacy", "native"]


def live_endpointer() -> Endpointer:
    """An endpointer for a live stream, as the settings configure it."""
    return Endpointer(
        EndpointerConfig.from_settings(
            partial_interval_s=settings.LIVE_PARTIAL_INTERVAL_S,
            pause_events=settings.LIVE_EARLY_FINALS,
            pause_ms=settings.LIVE_PAUSE_MS,
        )
    )


class PartialGate:
    """One interim-text request in flight per session, so that requests never pile up on a
    busy worker (nor in front of finals, where the stt workers do partials too).

    A request is answered by any ``partial`` event (there is only one in flight) or by the
    ``final`` of its utterance or a later one: the worker skips a partial that a final has
    overtaken, and it never answers. An earlier utterance's final says nothing about it. A
    request nobody answers (skipped as stale) stops holding the gate after ``wait_s``.
    """

    def __init__(self, wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.wait_s = wait_s
        self.clock = clock
        self.since: float | None = None
        self.utterance = -1

    def sent(self, utterance: int) -> None:
        self.since = self.clock()
        self.utterance = utterance

    def release(self) -> None:
        self.since = None

    def answered_by(self, event: dict[str, Any]) -> None:
        kind, utterance = event.get("type"), event.get("utterance")
        if kind == "partial" or (
            kind == "final" and not (isinstance(utterance, int) and utterance < self.utterance)
        ):
            self.since = None

    @property
    def busy(self) -> bool:
        return self.since is not None and self.clock() - self.since < self.wait_s


def _numbers(numbers: list[int]) -> str:
    named = ", ".join(str(n) for n in numbers[:UNFINISHED_NAMED])
    rest = len(numbers) - UNFINISHED_NAMED
    return f"{named} and {rest} more" if rest > 0 else named


# --- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emit:
    """An event of the session for the client: numbered and logged for replay."""

    event: dict[str, Any]


@dataclass(frozen=True)
class Send:
    """A message for this client only, as it is (the original protocol's messages)."""

    message: dict[str, Any]


@dataclass(frozen=True, eq=False)
class SendUtterance:
    """Utterance ``index`` to a worker; with ``early_key``, as an early final."""

    index: int
    start: float
    end: float
    audio: np.ndarray
    early_key: str | None = None


@dataclass(frozen=True, eq=False)
class SendPartial:
    """Interim text ``n`` of utterance ``index`` to a worker."""

    index: int
    n: int
    start: float
    audio: np.ndarray


@dataclass(frozen=True)
class Settle:
    """Settle the early final under ``key`` with ``decision``; when the decision that
    stands is not FINAL (the worker gave up first), carry out ``otherwise``."""

    key: str
    decision: Decision
    otherwise: SendUtterance | None = None


@dataclass(frozen=True)
class HoldTimer:
    """Call ``legacy_timeout(segment)`` after ``delay_s``."""

    segment: int
    delay_s: float


@dataclass(frozen=True)
class StopTimer:
    """Call ``stop_timeout()`` after ``delay_s``, unless the session stopped by then."""

    delay_s: float


@dataclass(frozen=True)
class Detach:
    """``stopped`` is out: the stream's events stop reaching this client."""


Action = Emit | Send | SendUtterance | SendPartial | Settle | HoldTimer | StopTimer | Detach


@dataclass(frozen=True)
class _EarlyFinal:
    utterance_id: Any  # the endpointer's id of the utterance
    end: float  # where the pause put its end on the timeline
    key: str


class LiveSession:
    """The decisions of one stream of a live session (a start, or a resume)."""

    def __init__(
        self,
        session: str,
        *,
        mode: Mode = "native",
        offset: float = 0.0,
        next_utterance: int = 0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.mode: Mode = mode
        # Where this stream's audio starts on the session's timeline.
        self.offset = offset
        self.next_utterance = next_utterance
        self.clock = clock
        self.partials = PartialGate(PARTIAL_ANSWER_WAIT_S, monotonic)
        self.utterance_ids: dict[Any, int] = {}
        self.partial_counts: dict[int, int] = {}
        self.early: _EarlyFinal | None = None
        self.early_holds_partials = False
        # Finals not answered yet: utterance -> (seconds of audio, sent at), and its span.
        self.pending: dict[int, tuple[float, float]] = {}
        self.pending_spans: dict[int, tuple[float, float]] = {}
        # Finals whose keywords event is still to come (the worker queues an extraction for
        # every final it stored, i.e. every one with a segment): segment -> utterance.
        self.keywords_due: dict[int, Any] = {}
        # Once the client asked to stop: the ``stopped`` event to send.
        self.stopping: dict[str, Any] | None = None
        self.stopped = False
        self.last_latency: float | None = None
        # Finals whose latency was measured (the consumer records each one in the metrics).
        self.timed_finals = 0
        self.last_queue_wait: float | None = None
        self.legacy_held: dict[int, dict[str, Any]] = {}

    # --- endpointer events ----------------------------------------------------------------
    def on_audio_events(self, events, *, partials_on_stt: bool = False) -> list[Action]:
        """What to do about the endpointer's ``events``. ``partials_on_stt``: the stt
        workers answer interim-text requests too (then an early final in flight holds the
        partial gate: no partial in front of the guess at the final)."""
        actions: list[Action] = []
        for event in events:
            if isinstance(event, SpeechStarted):
                if self.mode == "native":
                    actions.append(
                        Emit({"type": "speech_started", "at": round(self.offset + event.at, 3)})
                    )
            elif isinstance(event, Partial):
                actions += self._partial(event)
            elif isinstance(event, Pause):
                actions += self._pause(event, partials_on_stt)
            elif isinstance(event, Resumed):
                if self.early and self.early.utterance_id == event.utterance_id:
                    actions += self._settle(Decision.VOID)
                    if self.early_holds_partials:
                        # A guess still queued is now skipped and never answers: interim
                        # text may be asked for again at once.
                        self.partials.release()
                        self.early_holds_partials = False
            elif isinstance(event, Utterance):
                actions += self._utterance(event)
        return actions

    def _partial(self, event: Partial) -> list[Action]:
        if self.partials.busy:
            return []
        index = self._index(event.utterance_id)
        self.partials.sent(index)
        n = self.partial_counts.get(index, 0) + 1
        self.partial_counts[index] = n
        return [SendPartial(index, n, round(self.offset + event.start, 3), event.audio)]

    def _pause(self, event: Pause, partials_on_stt: bool) -> list[Action]:
        actions = self._settle(Decision.VOID)
        if self.pending:
            return actions  # finals are waiting: no guesses in front of them
        index = self._index(event.utterance_id)
        start, end = self._span(event)
        key = early_key(self.session, index, end)
        self.early = _EarlyFinal(event.utterance_id, end, key)
        if partials_on_stt:
            # One worker does both: no partial in front of the guess at the final.
            self.partials.sent(index)
            self.early_holds_partials = True
        actions.append(SendUtterance(index, start, end, event.audio, key))
        return actions

    def _utterance(self, event: Utterance) -> list[Action]:
        index = self._index(event.utterance_id)
        self.utterance_ids.pop(event.utterance_id, None)
        start, end = self._span(event)
        self.pending[index] = (end - start, self.clock())
        self.pending_spans[index] = (start, end)
        send = SendUtterance(index, start, end, event.audio)
        early = self.early
        if early and early.utterance_id == event.utterance_id and early.end == end:
            # The pause was the end: the worker already has it, unless it gave up.
            self.early = None
            return [Settle(early.key, Decision.FINAL, otherwise=send)]
        return [*self._settle(Decision.VOID), send]

    def _settle(self, decision: Decision) -> list[Action]:
        early, self.early = self.early, None
        return [] if early is None else [Settle(early.key, decision)]

    def _span(self, event: Pause | Utterance) -> tuple[float, float]:
        """An endpointer event's start and end on the session's timeline."""
        return round(self.offset + event.start, 3), round(self.offset + event.end, 3)

    def _index(self, utterance_id: Any) -> int:
        if utterance_id not in self.utterance_ids:
            self.utterance_ids[utterance_id] = self.next_utterance
            self.next_utterance += 1
        return self.utterance_ids[utterance_id]

    # --- worker results -------------------------------------------------------------------
    def on_worker_event(self, event: dict[str, Any]) -> list[Action]:
        """A worker's event for this session (already numbered by the worker)."""
        if self.stopped:
            return []  # ``stopped`` was the last event this client gets of the stream
        self.partials.answered_by(event)
        kind = event.get("type")
        if kind == "final":
            sent = self._answered(event)
            if sent is not None:
                self.last_latency = round(self.clock() - sent[1], 3)
                self.timed_finals += 1
            self.last_queue_wait = event.get("queue_wait_s")
        elif kind == "error" and event.get("code") == "audio_expired":
            # The worker gave up on that utterance: no final is coming for it.
            self._settled(event.get("utterance"))
        if self.mode == "native":
            if kind == "final" and event.get("segment") is not None:
                self.keywords_due[event["segment"]] = event.get("utterance")
            elif kind == "keywords":
                self.keywords_due.pop(event.get("segment"), None)
            return [Send(event), *self._stop_if_finished()]
        if event.get("type") == "final" and event.get("text"):
            segment = event.get("segment")
            self.legacy_held[segment] = event
            return [HoldTimer(segment, LEGACY_KEYWORD_WAIT_S)]
        if event.get("type") == "keywords" and event.get("segment") in self.legacy_held:
            return self._legacy_release(event["segment"], event.get("items") or [])
        return []

    def _answered(self, event: dict[str, Any]) -> tuple[float, float] | None:
        """The pending utterance a final answers: its own number, or, for a final stored
        under another number (finals.py) or a recovered stretch cut anew (recovery.py),
        the pending utterance whose speech its span covers."""
        utterance = event.get("utterance")
        if utterance in self.pending:
            return self._settled(utterance)
        start, end = event.get("start"), event.get("end")
        if not isinstance(start, int | float) or not isinstance(end, int | float):
            return None
        shares = {i: overlap_share(span, (start, end)) for i, span in self.pending_spans.items()}
        best = max(shares, key=shares.__getitem__, default=None)
        if best is None or shares[best] < SAME_SPEECH_SHARE:
            return None
        return self._settled(best)

    def _settled(self, utterance: Any) -> tuple[float, float] | None:
        self.pending_spans.pop(utterance, None)
        return self.pending.pop(utterance, None)

    # --- the end of the stream ------------------------------------------------------------
    def stop(self, duration: float, wait_s: float) -> list[Action]:
        """The client asked to stop and the stream's last utterance is on its way (the
        consumer flushed the endpointer first). A native client gets ``stopped`` once every
        final of the stream and every keywords event due has come, or after ``wait_s``
        with an ``unfinished`` error first. The original protocol has no ``stopped``."""
        if self.mode != "native" or self.stopping is not None:
            return []
        self.stopping = {"type": "stopped", "session": self.session, "duration": duration}
        return self._stop_if_finished() or [StopTimer(wait_s)]

    def stop_timeout(self) -> list[Action]:
        """The wait for the stream's last results is over (the bound passed, or the client
        starts anew on this connection): what did not come is named, then ``stopped``."""
        if self.stopping is None or self.stopped:
            return []
        return [Emit(self.unfinished_event()), *self._stopped()]

    def unfinished_event(self) -> dict[str, Any]:
        utterances = sorted(self.pending)
        keywords = sorted(u for u in self.keywords_due.values() if isinstance(u, int))
        missing = []
        if utterances:
            noun = "utterance" if len(utterances) == 1 else "utterances"
            missing.append(f"{noun} {_numbers(utterances)} not transcribed yet")
        if keywords:
            missing.append(f"keywords of {_numbers(keywords)} not extracted yet")
        return {
            "type": "error",
            "code": "unfinished",
            "message": (
                f"{'; '.join(missing) or 'results missing'}: the workers finish them in the"
                " background and they are stored with the transcript"
            ),
            "utterances": utterances,
            "keywords": keywords,
        }

    def _stop_if_finished(self) -> list[Action]:
        if self.stopping is None or self.stopped or self.pending or self.keywords_due:
            return []
        return self._stopped()

    def _stopped(self) -> list[Action]:
        self.stopped = True
        return [Emit(self.stopping), Detach()]

    # --- the original protocol ------------------------------------------------------------
    def legacy_timeout(self, segment: int) -> list[Action]:
        """The keywords of ``segment`` did not come in time: the final goes without them."""
        return self._legacy_release(segment, [])

    def _legacy_release(self, segment: int, keywords: list[dict]) -> list[Action]:
        final = self.legacy_held.pop(segment, None)
        if final is None:
            return []
        return [
            Send(
                {
                    "type": "transcription",
                    "text": final["text"],
                    "keywords": [
                        {
                            "word": k["word"],
                            "category": k["category"],
                            "importance": k["importance"],
                        }
                        for k in keywords
                    ],
                    "language": final.get("language"),
                    "confidence": final.get("confidence"),
                    "device": final.get("device"),
                    "timestamp": final.get("timestamp"),
                }
            )
        ]

    # --- status ---------------------------------------------------------------------------
    def status_event(self, buffered_s: float, warn_s: float) -> dict[str, Any]:
        """The ``status`` event: audio not transcribed yet (waiting for a worker, or still
        in the endpointer), and the latency of the last final."""
        backlog = sum(seconds for seconds, _sent in self.pending.values()) + buffered_s
        oldest = min((sent for _s, sent in self.pending.values()), default=None)
        return {
            "type": "status",
            "backlog_s": round(backlog, 2),
            "pending_utterances": len(self.pending),
            "oldest_pending_s": round(self.clock() - oldest, 2) if oldest else 0.0,
            "queue_wait_s": self.last_queue_wait,
            "last_latency_s": self.last_latency,
            "behind": backlog > warn_s,
        }
