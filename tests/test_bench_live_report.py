"""The live benchmark's measurements (bench/live_stream.py, bench/live_report.py) on a
synthetic run whose every figure is known: a benchmark that misreads its own events would
print a wrong latency, CER or backlog with confidence."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from bench.live_report import analyse_client, queued_backlog, summarise_level, worker_tasks
from bench.live_stream import FRAME, FRAME_S, GAP_S, LEAD_S, RATE, ClientRun, build_stream, quantise

T0 = 1_000_000.0  # wall clock when the client's first frame left


def tone(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.4 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), np.float32)


@pytest.fixture
def stream():
    entries = [
        {"id": "ko1", "lang": "ko", "reference_nospace": "안녕하세요"},
        {"id": "quiet", "lang": "none"},
    ]
    audio = {
        # 1.2 s of "speech", then 0.6 s of silence inside the clip itself.
        "ko1": quantise(np.concatenate([tone(1.2), silence(0.6)])),
        "quiet": quantise(silence(2.0)),
    }
    return build_stream(entries, audio, rotate=0)


def stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def test_the_stream_puts_each_clip_after_the_lead_and_gaps(stream):
    ko, quiet = stream.pieces
    assert (ko.start, ko.end) == pytest.approx((LEAD_S, LEAD_S + 1.8))
    assert quiet.start == pytest.approx(ko.end + GAP_S)
    assert stream.pcm.size % FRAME == 0
    assert stream.duration == pytest.approx(quiet.end + GAP_S, abs=FRAME_S)
    # End of speech from the audio: the end of the tone, not of the clip.
    assert ko.end_of_speech(ko.start, ko.end) == pytest.approx(LEAD_S + 1.2, abs=0.021)
    assert ko.end_of_speech(ko.start + 1.3, ko.end) is None


def run_with(stream, events) -> ClientRun:
    run = ClientRun(index=0, stream=stream, session="s", t0_wall=T0)
    # Frame k left when its last sample would have left a microphone.
    run.sent_wall = T0 + (np.arange(stream.frames) + 1) * FRAME_S
    run.stop_wall, run.done_wall, run.complete = T0 + 10.0, T0 + 10.5, True
    run.events = events
    return run


def test_latency_and_where_it_goes(stream):
    ko, quiet = stream.pieces
    eos_sent = T0 + LEAD_S + 1.2  # the frame holding the end of speech left then
    finished = eos_sent + 1.25  # the worker's timestamp
    events = [
        (T0 + 1.5, {"type": "speech_started"}),
        (T0 + 2.0, {"type": "partial", "text": "안녕"}),
        (
            finished + 0.02,
            {
                "type": "final",
                "utterance": 0,
                "start": ko.start + 0.1,
                "end": ko.start + 1.4,
                "text": "안녕하세요",
                "queue_wait_s": 0.05,
                "compute_s": 1.0,
                "timestamp": stamp(finished),
            },
        ),
        (finished + 0.03, {"type": "status", "backlog_s": 0.0, "pending_utterances": 0}),
        (finished + 0.5, {"type": "keywords", "items": []}),
        (
            T0 + 8.0,
            {
                "type": "final",
                "utterance": 1,
                "start": quiet.start + 0.2,
                "end": quiet.start + 1.0,
                "text": "시청해 주셔서 감사합니다",
            },
        ),
    ]
    result = analyse_client(run_with(stream, events))
    first, phantom = result["utterances"]
    assert first["piece"] == "ko1" and first["eos"] == pytest.approx(LEAD_S + 1.2, abs=0.021)
    assert first["latency_s"] == pytest.approx(1.27, abs=0.03)
    assert first["delivery_s"] == pytest.approx(0.02, abs=1e-3)
    # Dispatched = finished - compute - queue: 0.2 s after the end of speech.
    assert first["endpoint_s"] == pytest.approx(0.2, abs=0.03)
    assert result["cer"] == {"plain": 0.0, "numerals": 0.0}
    assert phantom["piece_kind"] == "none"
    assert result["nospeech_words"] == 3 and result["gap_words"] == 0
    assert result["partials"] == 1 and result["keyword_events"] == 1
    assert result["drain_s"] == pytest.approx(0.5)


def test_a_wrong_final_counts_against_the_cer(stream):
    ko, _ = stream.pieces
    final = {"type": "final", "utterance": 0, "start": ko.start, "end": ko.end, "text": "안녕"}
    result = analyse_client(run_with(stream, [(T0 + 4, final)]))
    assert result["cer"]["plain"] == pytest.approx(3 / 5)
    assert "latency_s" in result["utterances"][0]  # no timestamp: no split, still a latency
    assert "endpoint_s" not in result["utterances"][0]


def test_overhead_is_latency_minus_plain_compute(stream):
    ko, _ = stream.pieces
    finished = T0 + LEAD_S + 1.2 + 1.5
    final = {
        "type": "final",
        "utterance": 0,
        "start": ko.start,
        "end": ko.end,
        "text": "안녕하세요",
        "queue_wait_s": 0.0,
        "compute_s": 1.1,
        "timestamp": stamp(finished),
    }
    client = analyse_client(run_with(stream, [(finished, final)]))
    client["utterances"][0]["plain_s"] = 1.2
    level = summarise_level(1, [client], other_cpu_s=0.0, wall_s=12.0, tasks={})
    assert level["latency_p50"] == pytest.approx(1.5, abs=0.03)
    assert level["overhead_p50"] == pytest.approx(0.3, abs=0.03)
    assert level["endpoint_p50"] == pytest.approx(0.4, abs=0.03)
    assert level["beyond_endpoint_p50"] == pytest.approx(-0.1, abs=0.03)


def utterance(client: int, dispatched: float, arrived: float, seconds: float) -> dict:
    return {"dispatched_t": dispatched, "arrival_t": arrived, "start": 0.0, "end": seconds}


def test_a_worker_that_keeps_up_empties_the_backlog_between_utterances():
    clients = [
        {
            "client": 0,
            "speech_end_s": 60.0,
            "utterances": [utterance(0, 10.0 * k, 10.0 * k + 1.5, 4.0) for k in range(1, 6)],
        }
    ]
    backlog = queued_backlog(clients)
    assert backlog["max_s"] == pytest.approx(4.0)
    assert backlog["longest_busy_s"] == pytest.approx(1.5, abs=0.11)
    assert backlog["most_pending_per_client"] == 1
    assert backlog["slope_s_per_min"] == pytest.approx(0.0, abs=1.0)


def test_a_worker_that_falls_behind_never_empties_it():
    # Each 4 s utterance takes 6 s to answer and they come every 5 s: answers drift later.
    rows = [utterance(0, 5.0 * k, 5.0 * k + 6.0 + 1.0 * k, 4.0) for k in range(1, 12)]
    backlog = queued_backlog([{"client": 0, "speech_end_s": 60.0, "utterances": rows}])
    assert backlog["longest_busy_s"] > 50
    assert backlog["most_pending_per_client"] >= 3
    assert backlog["slope_s_per_min"] > 0


def test_worker_tasks_are_read_from_the_celery_log():
    log = (
        "[2026-11-25 10:00:00,000: INFO/ForkPoolWorker-1] Task "
        "transcription.tasks.transcribe_utterance[ab-1] succeeded in 1.25s: None\n"
        "[2026-11-25 10:00:02,000: INFO/ForkPoolWorker-1] Task "
        "transcription.tasks.transcribe_utterance[ab-2] succeeded in 0.75s: None\n"
        "[2026-11-25 10:00:03,000: INFO/ForkPoolWorker-1] Task "
        "transcription.tasks.finish_live[ab-3] succeeded in 0.01s: None\n"
    )
    tasks = worker_tasks(log)
    assert tasks["transcribe_utterance"] == {"count": 2, "seconds": 2.0}
    assert tasks["finish_live"]["count"] == 1
