"""What a live session finds again after Redis lost its state (recovery.py), how a final is
stored without overwriting another utterance's (finals.py), and the pieces they stand on:
the recording read back, the saved state, the hold and the event counter. Fast: no worker,
no Whisper (the endpointer's VAD only)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import redis
from django.conf import settings

from tests.factories import make_user
from transcription.live import records, recovery, store
from transcription.live.finals import Placement, place, store_final
from transcription.live.recording import LiveRecording, read_span, recorded_s
from transcription.live.recovery import Stretch, fit, lost_stretches, reserve
from transcription.live.store import Hold, StreamState
from transcription.models import Segment, Transcript
from transcription.speech.audio import decode_audio

RATE = 16000


# --- which stretches were lost --------------------------------------------------------------


def test_the_stretch_after_the_last_stored_final_takes_the_numbers_after_it():
    rows = [(0, 0.5, 3.0), (1, 4.0, 7.0)]
    assert lost_stretches(rows, until_s=20.0, next_index=5) == [Stretch(7.0, 20.0, 2, 3)]


def test_a_gap_in_the_numbers_between_stored_finals_is_a_lost_stretch():
    rows = [(0, 0.5, 3.0), (3, 12.0, 14.0), (4, 15.0, 16.0)]
    # 1 and 2 were cut between 3.0 and 12.0; nothing is missing after 4.
    assert lost_stretches(rows, until_s=16.5, next_index=5) == [Stretch(3.0, 12.0, 1, 2)]


def test_consecutive_numbers_leave_nothing_lost():
    rows = [(0, 0.5, 3.0), (1, 4.0, 7.0)]
    assert lost_stretches(rows, until_s=9.0, next_index=2) == []


def test_nothing_stored_yet_means_everything_from_the_start():
    assert lost_stretches([], until_s=12.0, next_index=4) == [Stretch(0.0, 12.0, 0, 4)]


def test_only_the_recent_past_is_looked_at():
    rows = [(0, 0.5, 3.0), (5, 50.0, 52.0), (6, 700.0, 702.0)]
    # The gap before 5 ended more than LOOKBACK_S before the end: an old empty final, not
    # something Redis held. The stretch after 6 starts where the look back does.
    assert lost_stretches(rows, until_s=1000.0, next_index=9, lookback_s=600.0) == [
        Stretch(702.0, 1000.0, 7, 2)
    ]
    assert lost_stretches([], until_s=1000.0, next_index=3, lookback_s=600.0) == [
        Stretch(400.0, 1000.0, 0, 3)
    ]


def test_more_utterances_than_free_numbers_are_joined_where_the_pauses_are_shortest():
    spans = [(0.0, 1.0), (1.2, 2.0), (4.0, 5.0), (5.1, 6.0)]
    assert fit(spans, 4) == spans
    assert fit(spans, 2) == [(0.0, 2.0), (4.0, 6.0)]
    assert fit(spans, 1) == [(0.0, 6.0)]
    assert fit(spans, 0) == []


def test_the_reserve_covers_every_number_a_stream_can_use_in_a_stretch():
    assert reserve(0.0) == 1
    assert reserve(7.5) == 11
    assert reserve(-3.0) == 1


# --- never over another utterance ----------------------------------------------------------


def test_a_redelivered_final_rewrites_its_own_row():
    assert place(3, (10.0, 12.0), [(7, 3, 10.0, 12.0)]) == Placement(3, existing=7)


def test_speech_stored_under_another_number_is_not_stored_twice():
    # The recovered stretch cut the utterance as number 4; the lost stream's worker finished
    # it as number 3.
    placement = place(3, (10.0, 12.0), [(9, 4, 10.05, 12.1)])
    assert placement == Placement(4, existing=9, stored_already=True)


def test_a_number_held_by_another_utterance_is_not_overwritten():
    assert place(3, (20.0, 22.0), [(7, 3, 10.0, 12.0), (8, 5, 14.0, 15.0)]) == Placement(6)


def test_a_touching_neighbour_is_another_utterance():
    assert place(4, (12.0, 14.0), [(7, 3, 10.0, 12.05)]) == Placement(4)


@pytest.fixture
def transcript(db):
    return Transcript.objects.create(
        owner=make_user("speaker"), source=Transcript.Source.LIVE, status=Transcript.Status.RUNNING
    )


def _store(transcript, index, start, end, text):
    return store_final(str(transcript.pk), index, start, end, {"text": text})


def test_store_final_keeps_every_stored_final(transcript):
    first, wrote = _store(transcript, 0, 1.0, 3.0, "하나")
    assert wrote and first.index == 0
    # A later utterance numbered 0 again (numbering restarted): a number of its own.
    later, wrote = _store(transcript, 0, 8.0, 10.0, "셋")
    assert wrote and later.index == 1 and later.pk != first.pk
    # The same speech as the first, numbered otherwise: already there.
    same, wrote = _store(transcript, 5, 1.02, 3.01, "하나 다시")
    assert not wrote and same.pk == first.pk
    # Redelivered: rewritten in place.
    again, wrote = _store(transcript, 0, 1.0, 3.0, "하나!")
    assert wrote and again.pk == first.pk
    stored = list(Segment.objects.filter(transcript=transcript).values_list("index", "text"))
    assert stored == [(0, "하나!"), (1, "셋")]


# --- the recording, read back -------------------------------------------------------------


def test_a_span_of_the_recording_is_read_back(tmp_path):
    path = tmp_path / "live.wav"
    samples = np.sin(np.arange(3 * RATE) / 7).astype(np.float32) * 0.5
    with LiveRecording(path) as recording:
        recording.append(samples)
        assert recorded_s(path) == 3.0
        span = read_span(path, 1.0, 2.0)
    assert span is not None and span.size == RATE
    assert np.abs(span - samples[RATE : 2 * RATE]).max() < 1e-3
    assert read_span(path, 2.0, 3.5) is None  # not recorded that far
    assert read_span(tmp_path / "none.wav", 0.0, 1.0) is None
    assert recorded_s(tmp_path / "none.wav") == 0.0


# --- Redis: saved state, hold, numbering of events ----------------------------------------


@pytest.fixture
def session_key():
    name = f"test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"live:{name}:*"):
        client.delete(key)


def test_no_saved_state_is_told_apart_from_a_saved_start(session_key):
    assert store.saved_state(session_key) is None
    store.save_state(session_key, StreamState(0.0, 0))
    assert store.saved_state(session_key) == StreamState(0.0, 0)


def test_a_hold_that_vanished_says_so(session_key):
    assert store.hold_session(session_key, "a") == Hold.LOST  # nothing there: Redis lost it
    assert store.hold_session(session_key, "a") == Hold.HELD
    assert store.hold_session(session_key, "b") == Hold.OTHER
    assert store.keep_session(session_key, "a") and not store.keep_session(session_key, "b")


def test_event_numbers_go_on_after_the_clients(session_key):
    store.seq_at_least(session_key, 41)
    assert store.record(session_key, {"type": "pong"})["seq"] == 42
    store.seq_at_least(session_key, 10)  # never back
    assert store.record(session_key, {"type": "pong"})["seq"] == 43


# --- a resume with nothing in Redis -------------------------------------------------------


def test_a_resume_after_redis_lost_the_session_sends_the_lost_stretch_again(
    transcript, session_key, media, eval_clip, monkeypatch
):
    """Utterance 0 is stored; the next one was recorded but its final was lost with Redis.
    The resume numbers after a reserve for it and sends it to a worker from the recording."""
    sent = []
    monkeypatch.setattr(recovery.dispatch, "send_utterance", lambda *a: sent.append(a))
    speech = decode_audio(eval_clip("ko_picovoice_leopard_test_ko")[0])
    silence = np.zeros(RATE, np.float32)
    timeline = np.concatenate([silence, speech, silence, speech, silence])
    transcript.audio = f"live/{transcript.pk}.wav"
    transcript.save()
    with LiveRecording(media / transcript.audio.name) as recording:
        recording.append(timeline)
    first_end = (RATE + speech.size) / RATE + 0.2
    Segment.objects.create(transcript=transcript, index=0, start=0.8, end=first_end, text="그는")
    session = str(transcript.pk)
    monkeypatch.setattr(store, "_key", lambda s, part: f"live:{session_key}:{part}")

    point, name = records.reopen(session, "ko", last_seq=17)

    total = timeline.size / RATE
    assert name == transcript.audio.name
    assert point.position_s == pytest.approx(total)
    assert point.next_utterance == 1 + reserve(total - first_end)
    assert len(sent) == 1, sent
    _session, language, action = sent[0]
    assert (action.index, language) == (1, "ko")
    second_start = (2 * RATE + speech.size) / RATE  # where the second copy begins
    assert second_start - 0.3 <= action.start < second_start + 1.0, action
    assert action.end <= total and action.end - action.start > 2.0, action
    assert action.audio.size == round((action.end - action.start) * RATE)
    assert store.record(session, {"type": "pong"})["seq"] == 18


def test_a_resume_with_a_saved_state_trusts_it(transcript, session_key, monkeypatch):
    monkeypatch.setattr(store, "_key", lambda s, part: f"live:{session_key}:{part}")
    monkeypatch.setattr(recovery, "recover", lambda *a: pytest.fail("nothing was lost"))
    store.save_state(str(transcript.pk), StreamState(30.0, 7))
    point, _name = records.reopen(str(transcript.pk), "ko")
    assert point == StreamState(30.0, 7)


def test_an_orphaned_session_gets_its_untranscribed_speech_from_the_recording(
    transcript, media, eval_clip, monkeypatch
):
    """Its connection died (with Redis, or not) before the last utterance was transcribed,
    and no client came back: the sweep that ends it sends that stretch to a worker."""
    import datetime as dt

    from django.utils import timezone

    sent = []
    monkeypatch.setattr(recovery.dispatch, "send_utterance", lambda *a: sent.append(a))
    speech = decode_audio(eval_clip("ko_picovoice_leopard_test_ko")[0])
    transcript.audio = f"live/{transcript.pk}.wav"
    transcript.started_at = timezone.now() - dt.timedelta(hours=2)
    transcript.save()
    with LiveRecording(media / transcript.audio.name) as recording:
        recording.append(np.concatenate([speech, np.zeros(RATE, np.float32)]))
    assert records.end_orphaned_sessions() == 1
    assert [(action.index, language) for _s, language, action in sent] == [(0, "ko")]
