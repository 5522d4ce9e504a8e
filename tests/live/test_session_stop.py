"""The end of a native stream, in the plain class: ``stopped`` is the session's last event,
after every final of the stream and every keywords event due (test_live_ws_stop.py runs
the same with a socket and real workers)."""

from __future__ import annotations

import pytest

from tests.live.test_session import SESSION, Clock, final, utterance
from transcription.live.session import (
    Detach,
    Emit,
    LiveSession,
    Send,
    SendUtterance,
    StopTimer,
)

WAIT_S = 30.0


@pytest.fixture
def session():
    clock = Clock()
    return LiveSession(SESSION, clock=clock, monotonic=clock)


def stopped(duration: float = 9.5) -> list:
    return [Emit({"type": "stopped", "session": SESSION, "duration": duration}), Detach()]


def keywords(segment: int) -> dict:
    return {"type": "keywords", "segment": segment, "items": [{"word": "커피"}]}


def test_with_nothing_on_its_way_stopped_comes_at_once(session):
    assert session.stop(9.5, WAIT_S) == stopped()
    assert session.stopped
    # Nothing of the stream reaches the client after it.
    assert session.on_worker_event(keywords(100)) == []
    assert session.stop_timeout() == []


def test_stopped_waits_for_every_final_and_its_keywords(session):
    session.on_audio_events([utterance(1, 0.0, 2.0), utterance(2, 2.5, 4.0)])
    session.on_worker_event(final(0, segment=100))
    assert session.stop(9.5, WAIT_S) == [StopTimer(WAIT_S)]
    assert not session.stopped
    # The last final: its keywords, and the first final's, are still due.
    assert session.on_worker_event(final(1, segment=101)) == [Send(final(1, segment=101))]
    assert session.on_worker_event(keywords(101)) == [Send(keywords(101))]
    assert session.on_worker_event(keywords(100)) == [Send(keywords(100)), *stopped()]
    assert session.stop_timeout() == []  # the bound passing later changes nothing


def test_a_final_without_text_gets_no_keywords_and_is_not_waited_for(session):
    session.on_audio_events([utterance(1, 0.0, 2.0)])
    assert session.stop(2.5, WAIT_S) == [StopTimer(WAIT_S)]
    empty = {**final(0, text=""), "segment": None}
    assert session.on_worker_event(empty) == [Send(empty), *stopped(2.5)]


def test_keywords_that_came_before_the_stop_are_not_waited_for(session):
    session.on_audio_events([utterance(1, 0.0, 2.0)])
    session.on_worker_event(final(0, segment=100))
    session.on_worker_event(keywords(100))
    assert session.stop(2.5, WAIT_S) == stopped(2.5)


def test_after_the_bound_an_error_names_what_did_not_come(session):
    session.on_audio_events(
        [utterance(1, 0.0, 2.0), utterance(2, 2.5, 4.0), utterance(3, 4.5, 6.0)]
    )
    session.on_worker_event(final(0, segment=100))
    assert session.stop(6.5, 2.0) == [StopTimer(2.0)]
    error, *rest = session.stop_timeout()
    assert rest == stopped(6.5)
    event = error.event
    assert event["type"] == "error" and event["code"] == "unfinished"
    assert event["utterances"] == [1, 2] and event["keywords"] == [0]
    assert event["message"].startswith(
        "utterances 1, 2 not transcribed yet; keywords of 0 not extracted yet: the workers"
    )
    assert "background" in event["message"] and "stored" in event["message"]
    # What comes later is stored, not sent: ``stopped`` was the last event.
    assert session.on_worker_event(final(1)) == []


def test_the_error_names_one_utterance_and_cuts_a_long_list(session):
    session.on_audio_events([utterance(1, 0.0, 2.0)])
    session.stop(2.5, 1.0)
    assert session.unfinished_event()["message"].startswith("utterance 0 not transcribed yet:")
    many = LiveSession(SESSION)
    for i in range(25):
        many.on_worker_event(final(i, segment=200 + i))
    many.stop(60.0, 1.0)
    message = many.unfinished_event()["message"]
    assert message.startswith("keywords of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 15 more not")


def test_a_final_stored_under_another_number_answers_its_utterance(session):
    """finals.py moves a final to a free number when another utterance holds its own."""
    actions = session.on_audio_events([utterance(1, 0.0, 2.0)])
    (sent,) = [a for a in actions if isinstance(a, SendUtterance)]
    session.stop(2.5, WAIT_S)
    moved = {**final(7, text=""), "segment": None, "start": sent.start, "end": sent.end}
    assert session.on_worker_event(moved)[-2:] == stopped(2.5)


def test_an_utterance_whose_audio_expired_is_not_waited_for(session):
    session.on_audio_events([utterance(1, 0.0, 2.0)])
    session.stop(2.5, WAIT_S)
    expired = {"type": "error", "code": "audio_expired", "message": "...", "utterance": 0}
    assert session.on_worker_event(expired) == [Send(expired), *stopped(2.5)]


def test_a_second_stop_changes_nothing(session):
    session.on_audio_events([utterance(1, 0.0, 2.0)])
    assert session.stop(2.5, WAIT_S) == [StopTimer(WAIT_S)]
    assert session.stop(2.5, WAIT_S) == []


def test_the_original_protocol_has_no_stopped(session):
    legacy = LiveSession(SESSION, mode="legacy")
    legacy.on_audio_events([utterance(1, 0.0, 2.0)])
    assert legacy.stop(2.5, WAIT_S) == []
    assert legacy.stop_timeout() == []
    assert not [a for a in legacy.on_worker_event(final(0, text="")) if isinstance(a, Emit)]
