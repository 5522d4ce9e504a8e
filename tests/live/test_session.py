"""LiveSession, the decisions of a live stream, without workers, Redis or a socket: endpointer
events and worker events in, actions out. The slow WebSocket tests (test_live_ws.py) run
the same paths with real workers."""

from __future__ import annotations

import numpy as np
import pytest

from transcription.live.session import (
    LEGACY_KEYWORD_WAIT_S,
    PARTIAL_ANSWER_WAIT_S,
    Emit,
    HoldTimer,
    LiveSession,
    Send,
    SendPartial,
    SendUtterance,
    Settle,
)
from transcription.live.store import Decision, early_key
from transcription.speech.endpointing import Partial, Pause, Resumed, SpeechStarted, Utterance

SESSION = "7a1c6a0e-0000-4000-8000-000000000001"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def audio(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), np.float32)


def utterance(uid: int, start: float, end: float) -> Utterance:
    return Utterance(uid, audio(end - start), start, end, "silence")


def pause(uid: int, start: float, end: float) -> Pause:
    return Pause(uid, audio(end - start), start, end)


def partial(uid: int, start: float, end: float) -> Partial:
    return Partial(uid, audio(end - start), start, end)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def session(clock):
    return LiveSession(SESSION, clock=clock, monotonic=clock)


def kinds(actions) -> list[str]:
    return [type(a).__name__ for a in actions]


def final(index: int, text: str = "안녕하세요", segment: int | None = None) -> dict:
    return {
        "type": "final",
        "utterance": index,
        "segment": segment if segment is not None else 100 + index,
        "text": text,
        "language": "ko",
        "confidence": 0.9,
        "device": "cpu",
        "timestamp": "2026-11-29T00:00:00+00:00",
        "queue_wait_s": 0.02,
    }


# --- utterances ---------------------------------------------------------------------------


def test_utterances_are_numbered_in_order_on_the_timeline(session):
    actions = session.on_audio_events(
        [SpeechStarted(0.3, 1), utterance(1, 0.3, 2.1), utterance(2, 3.0, 4.5)]
    )
    assert kinds(actions) == ["Emit", "SendUtterance", "SendUtterance"]
    assert actions[0].event == {"type": "speech_started", "at": 0.3}
    first, second = actions[1], actions[2]
    assert (first.index, first.start, first.end, first.early_key) == (0, 0.3, 2.1, None)
    assert (second.index, second.start, second.end) == (1, 3.0, 4.5)
    assert session.next_utterance == 2
    assert set(session.pending) == {0, 1}


def test_a_resumed_stream_goes_on_with_the_saved_numbering_and_timeline(clock):
    resumed = LiveSession(SESSION, offset=12.25, next_utterance=3, clock=clock, monotonic=clock)
    actions = resumed.on_audio_events(
        [SpeechStarted(0.5, 9), partial(9, 0.5, 1.5), utterance(9, 0.5, 2.0)]
    )
    assert actions[0].event["at"] == 12.75
    sent_partial, sent = actions[1], actions[2]
    assert isinstance(sent_partial, SendPartial)
    assert (sent_partial.index, sent_partial.n, sent_partial.start) == (3, 1, 12.75)
    assert isinstance(sent, SendUtterance)
    assert (sent.index, sent.start, sent.end) == (3, 12.75, 14.25)
    assert resumed.next_utterance == 4


def test_the_original_protocol_gets_no_numbered_session_events(clock):
    legacy = LiveSession(SESSION, mode="legacy", clock=clock, monotonic=clock)
    assert kinds(legacy.on_audio_events([SpeechStarted(0.1, 1), utterance(1, 0.1, 1.0)])) == [
        "SendUtterance"
    ]


# --- early finals -------------------------------------------------------------------------


def test_an_early_final_stands_when_the_pause_was_the_end(session):
    guess = session.on_audio_events([SpeechStarted(0.2, 1), pause(1, 0.2, 2.0)])
    assert kinds(guess) == ["Emit", "SendUtterance"]
    early = guess[1]
    assert early.early_key == early_key(SESSION, 0, 2.0)
    assert (early.index, early.start, early.end) == (0, 0.2, 2.0)
    # The silence lasted: the utterance ends where the pause said.
    actions = session.on_audio_events([utterance(1, 0.2, 2.0)])
    assert actions == [
        Settle(
            early.early_key,
            Decision.FINAL,
            otherwise=actions[0].otherwise,
        )
    ]
    fallback = actions[0].otherwise
    # If the worker gave up waiting, the same utterance goes again, as a plain final.
    assert isinstance(fallback, SendUtterance) and fallback.early_key is None
    assert (fallback.index, fallback.start, fallback.end) == (0, 0.2, 2.0)
    assert session.early is None and 0 in session.pending


def test_an_early_final_is_voided_when_speech_resumes(session):
    early = session.on_audio_events([pause(1, 0.2, 2.0)])[0]
    actions = session.on_audio_events([Resumed(1)])
    assert actions == [Settle(early.early_key, Decision.VOID)]
    # The utterance goes on and ends later: one final, same index, all of it.
    actions = session.on_audio_events([utterance(1, 0.2, 4.0)])
    assert kinds(actions) == ["SendUtterance"]
    assert (actions[0].index, actions[0].end, actions[0].early_key) == (0, 4.0, None)


def test_an_utterance_ending_elsewhere_than_its_pause_voids_the_guess(session):
    early = session.on_audio_events([pause(1, 0.2, 2.0)])[0]
    # Cut at the length limit before the silence rule could confirm the pause.
    actions = session.on_audio_events([utterance(1, 0.2, 2.4)])
    assert actions[0] == Settle(early.early_key, Decision.VOID)
    assert isinstance(actions[1], SendUtterance) and actions[1].end == 2.4


def test_a_second_pause_replaces_the_first_guess(session):
    first = session.on_audio_events([pause(1, 0.2, 2.0)])[0]
    actions = session.on_audio_events([Resumed(1), pause(1, 0.2, 3.0)])
    assert actions[0] == Settle(first.early_key, Decision.VOID)
    assert isinstance(actions[1], SendUtterance)
    assert actions[1].early_key == early_key(SESSION, 0, 3.0) != first.early_key


def test_no_guess_while_finals_are_waiting_for_a_worker(session):
    session.on_audio_events([utterance(1, 0.0, 1.0)])
    assert session.on_audio_events([pause(2, 1.5, 3.0)]) == []
    # The final comes back: guesses start again.
    session.on_worker_event(final(0))
    actions = session.on_audio_events([pause(2, 1.5, 3.2)])
    assert kinds(actions) == ["SendUtterance"] and actions[0].early_key


def test_a_voided_guess_answers_as_interim_text(session):
    """The worker shows a guess the consumer voided as a partial (worker.py); the session
    forwards it like any partial, and it answers the gate."""
    session.on_audio_events([pause(1, 0.2, 2.0), Resumed(1)])
    session.on_audio_events([partial(1, 0.2, 2.5)])
    assert session.partials.busy
    event = {"type": "partial", "utterance": 0, "text": "안녕", "seq": 7}
    assert session.on_worker_event(event) == [Send(event)]
    assert not session.partials.busy


# --- the partial gate ---------------------------------------------------------------------


def test_one_interim_request_in_flight(session, clock):
    first = session.on_audio_events([partial(1, 0.0, 1.0)])
    assert kinds(first) == ["SendPartial"] and first[0].n == 1
    # Still unanswered: the next chance is skipped, not queued behind it.
    assert session.on_audio_events([partial(1, 0.0, 2.0)]) == []
    session.on_worker_event({"type": "partial", "utterance": 0, "text": "음"})
    second = session.on_audio_events([partial(1, 0.0, 3.0)])
    assert kinds(second) == ["SendPartial"] and (second[0].index, second[0].n) == (0, 2)
    # Never answered (skipped as stale by the worker): the gate opens after the wait.
    clock.now += PARTIAL_ANSWER_WAIT_S + 0.1
    assert session.on_audio_events([partial(1, 0.0, 4.0)])[0].n == 3


def test_an_earlier_final_does_not_open_the_gate_its_own_does(session):
    session.on_audio_events([utterance(1, 0.0, 1.0)])
    session.on_audio_events([partial(2, 1.5, 2.5)])
    session.on_worker_event(final(0))
    assert session.partials.busy
    session.on_worker_event(final(1))
    assert not session.partials.busy


def test_where_stt_workers_do_partials_an_early_final_holds_the_gate(session):
    session.on_audio_events([pause(1, 0.2, 2.0)], partials_on_stt=True)
    assert session.partials.busy
    assert session.on_audio_events([partial(1, 0.2, 2.3)]) == []
    # Speech resumed: the queued guess is skipped and never answers, so the gate opens.
    session.on_audio_events([Resumed(1)])
    assert not session.partials.busy
    assert kinds(session.on_audio_events([partial(1, 0.2, 2.6)])) == ["SendPartial"]


def test_with_a_partial_worker_an_early_final_leaves_the_gate_open(session):
    session.on_audio_events([pause(1, 0.2, 2.0)], partials_on_stt=False)
    assert not session.partials.busy


# --- worker results, latency and backlog ---------------------------------------------------


def test_finals_are_forwarded_and_timed(session, clock):
    session.on_audio_events([utterance(1, 0.0, 2.0), utterance(2, 2.5, 3.5)])
    status = session.status_event(buffered_s=0.5, warn_s=10)
    assert status["backlog_s"] == 3.5 and status["pending_utterances"] == 2
    assert status["behind"] is False
    clock.now += 1.25
    event = final(0)
    assert session.on_worker_event(event) == [Send(event)]
    status = session.status_event(buffered_s=0.0, warn_s=0.5)
    assert status["last_latency_s"] == 1.25 and status["queue_wait_s"] == 0.02
    assert status["pending_utterances"] == 1 and status["backlog_s"] == 1.0
    assert status["behind"] is True and status["oldest_pending_s"] == 1.25


# --- the original client's protocol -------------------------------------------------------


@pytest.fixture
def legacy(clock):
    return LiveSession(SESSION, mode="legacy", clock=clock, monotonic=clock)


def test_the_original_client_gets_a_final_with_its_keywords(legacy):
    assert legacy.on_worker_event(final(0, segment=41)) == [HoldTimer(41, LEGACY_KEYWORD_WAIT_S)]
    items = [{"word": "백화점", "category": "장소", "importance": 0.9, "extra": 1}]
    actions = legacy.on_worker_event({"type": "keywords", "segment": 41, "items": items})
    assert actions == [
        Send(
            {
                "type": "transcription",
                "text": "안녕하세요",
                "keywords": [{"word": "백화점", "category": "장소", "importance": 0.9}],
                "language": "ko",
                "confidence": 0.9,
                "device": "cpu",
                "timestamp": "2026-11-29T00:00:00+00:00",
            }
        )
    ]
    # The timer fires later and finds nothing left to release.
    assert legacy.legacy_timeout(41) == []


def test_without_keywords_in_time_the_final_goes_alone(legacy):
    legacy.on_worker_event(final(0, segment=42))
    (sent,) = legacy.legacy_timeout(42)
    assert sent.message["type"] == "transcription" and sent.message["keywords"] == []
    # Keywords arriving after that are not sent again.
    assert legacy.on_worker_event({"type": "keywords", "segment": 42, "items": []}) == []


def test_the_original_client_gets_nothing_for_empty_finals_or_partials(legacy):
    assert legacy.on_worker_event(final(0, text="", segment=43)) == []
    assert legacy.on_worker_event({"type": "partial", "utterance": 1, "text": "음"}) == []
    assert legacy.on_worker_event({"type": "keywords", "segment": 99, "items": []}) == []


def test_native_clients_get_every_worker_event_as_it_is(session):
    for event in (
        {"type": "keywords", "segment": 5, "items": []},
        {"type": "error", "code": "audio_expired", "message": "..."},
    ):
        assert session.on_worker_event(event) == [Send(event)]
    assert not any(isinstance(a, Emit) for a in session.on_worker_event(final(3)))


def test_an_utterance_job_survives_celery_and_the_older_positional_form():
    from transcription.live.jobs import PartialJob, UtteranceJob

    job = UtteranceJob(SESSION, 4, 1.5, 3.0, "live:audio:x", "ko", 1000.0, "k", 1.9)
    assert UtteranceJob.from_dict(job.to_dict()) == job
    older = UtteranceJob.from_positional(
        SESSION, 4, 1.5, 3.0, "live:audio:x", "ko", 1000.0, early_key="k", early_wait_s=1.9
    )
    assert UtteranceJob.from_dict(older) == job
    partial_job = PartialJob(SESSION, 2, 3, 0.5, "live:audio:y", "en")
    assert PartialJob.from_dict({**partial_job.to_dict(), "unknown": 1}) == partial_job
