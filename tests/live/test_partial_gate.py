"""The one-partial-in-flight gate of a live session (transcription/live/session.py)."""

from __future__ import annotations

from transcription.live.session import PartialGate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gate_with_request(utterance: int) -> tuple[PartialGate, Clock]:
    clock = Clock()
    gate = PartialGate(wait_s=3.0, clock=clock)
    assert not gate.busy
    gate.sent(utterance)
    assert gate.busy
    return gate, clock


def test_a_partial_answers_the_request():
    gate, _ = gate_with_request(2)
    gate.answered_by({"type": "partial", "utterance": 2, "text": "안녕"})
    assert not gate.busy


def test_the_final_of_its_utterance_or_a_later_one_answers_it():
    for final in (2, 3):
        gate, _ = gate_with_request(2)
        gate.answered_by({"type": "final", "utterance": final, "text": "안녕하세요"})
        assert not gate.busy, final


def test_an_earlier_utterances_final_leaves_the_request_in_flight():
    gate, _ = gate_with_request(2)
    gate.answered_by({"type": "final", "utterance": 1, "text": "앞 문장"})
    assert gate.busy
    for other in ({"type": "keywords", "segment": 5}, {"type": "status"}):
        gate.answered_by(other)
        assert gate.busy, other


def test_a_final_without_an_utterance_number_releases_it():
    gate, _ = gate_with_request(2)
    gate.answered_by({"type": "final", "text": ""})
    assert not gate.busy


def test_an_unanswered_request_stops_holding_the_gate_after_the_wait():
    gate, clock = gate_with_request(0)
    clock.now += 2.9
    assert gate.busy
    clock.now += 0.2
    assert not gate.busy


def test_release_opens_it_at_once():
    gate, _ = gate_with_request(4)
    gate.release()
    assert not gate.busy
