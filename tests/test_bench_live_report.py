"""The live benchmark's measurements (bench/live_stream.py, bench/live_report.py) on a
synthetic run whose every figure is known: a benchmark that misreads its own events would
print a wrong latency, CER or backlog with confidence."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from bench.live_report import (
    MAX_BUSY_RATIO,
    analyse_client,
    live_first,
    live_first_lines,
    parts_mean,
    queued_backlog,
    summarise_level,
    upload_seconds_done,
    worker_tasks,
    workers_label,
)
from bench.live_stream import (
    FRAME,
    FRAME_S,
    GAP_S,
    LEAD_S,
    RATE,
    UPLOAD_GAP_S,
    UPLOAD_LEAD_S,
    ClientRun,
    build_stream,
    build_upload,
    quantise,
)

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


# --- live first: the same stream with uploads queued ---------------------------------------


def test_an_upload_is_the_korean_clips_over_and_over_to_the_length_asked():
    entries = [
        {"id": "a", "lang": "ko"},
        {"id": "b", "lang": "ko"},
        {"id": "quiet", "lang": "none"},
    ]
    audio = {"a": quantise(tone(10.0)), "b": quantise(tone(6.0)), "quiet": quantise(silence(3.0))}
    pcm = build_upload(entries, audio, 120.0, rotate=1)
    assert pcm.dtype == np.dtype("<i2") and pcm.size == 120 * RATE
    # From the second clip on: lead, b, gap, a, gap, b, ... and no clip cut at the end.
    # Loud 10 ms frames, and the moments where a run of them starts.
    frames = pcm.astype(np.float64).reshape(-1, RATE // 100)
    loud = np.sqrt((frames**2).mean(axis=1)) > 1000
    starts = (np.flatnonzero(np.diff(loud.astype(np.int8)) == 1) + 1) / 100
    assert starts[0] == pytest.approx(UPLOAD_LEAD_S)
    assert starts[1] == pytest.approx(UPLOAD_LEAD_S + 6.0 + UPLOAD_GAP_S)
    # b, a: 24 s a cycle with the gaps; 2 + 4 x 24 + 6 + 4 = 108 s: one more a fits
    # (ends at 118 s), the b after it would not: it is left out, not cut.
    cycle = 10.0 + 6.0 + 2 * UPLOAD_GAP_S
    assert starts.size == 10
    assert starts[-1] == pytest.approx(UPLOAD_LEAD_S + 4 * cycle + 6.0 + UPLOAD_GAP_S)
    assert not loud[11800:].any()


def test_upload_seconds_done_counts_progress_between_snapshots():
    before = {"x": 30.0, "y": 0.0}
    after = {"x": 120.0, "y": 45.0, "z": 12.0}  # z was sent in between
    assert upload_seconds_done(before, after) == pytest.approx(90 + 45 + 12)
    assert upload_seconds_done(after, after) == 0.0


def final_row(endpoint: float, queue: float, compute: float, delivery: float) -> dict:
    return {
        "latency_s": endpoint + queue + compute + delivery,
        "endpoint_s": endpoint,
        "queue_wait_s": queue,
        "compute_s": compute,
        "delivery_s": delivery,
    }


def level_of(rows: list[dict]) -> dict:
    """A level summary of finals with only the fields live_first reads."""
    return {
        "latency_p50": float(np.percentile([r["latency_s"] for r in rows], 50)),
        "latency_p95": float(np.percentile([r["latency_s"] for r in rows], 95)),
        "parts_mean": parts_mean(rows),
        "queue_p95": float(np.percentile([r["queue_wait_s"] for r in rows], 95)),
        "cer": {"plain": 0.1, "numerals": 0.08},
    }


def uploads(done: list[float], outstanding: list[int]) -> dict:
    rounds = [
        {"done_s": d, "stream_s": 120.0, "finished": 0, "outstanding_after": o, "worker_cpu_s": 50}
        for d, o in zip(done, outstanding, strict=True)
    ]
    return {"files": 8, "file_s": 120.0, "sent": 8, "rounds": rounds}


def test_parts_mean_adds_up_to_the_mean_latency():
    rows = [final_row(0.2, 0.0, 1.0, 0.02), final_row(0.2, 0.4, 1.2, 0.02), {"latency_s": 9.0}]
    means = parts_mean(rows)
    assert means["finals"] == 2  # the row without parts is left out of every mean
    parts = sum(means[k] for k in ("endpoint_s", "queue_wait_s", "compute_s", "delivery_s"))
    assert parts == pytest.approx(means["latency_s"])


def test_live_first_passes_when_the_busy_p95_stays_within_the_factor():
    idle = level_of([final_row(0.2, 0.0, 1.0, 0.02)] * 5 + [final_row(0.2, 0.0, 1.2, 0.02)])
    busy = level_of([final_row(0.2, 0.05, 1.1, 0.02)] * 5 + [final_row(0.2, 0.1, 1.5, 0.02)])
    result = live_first(idle, busy, uploads([80.0, 75.0], [6, 4]))
    assert result["ratio_p95"] == pytest.approx(busy["latency_p95"] / idle["latency_p95"])
    assert result["ratio_p95"] <= MAX_BUSY_RATIO and result["passed"] is True
    assert result["upload_s_done"] == pytest.approx(155.0)
    assert result["uploads_outlasted_stream"] is True
    assert result["dominant"] == "compute_s"


def test_live_first_fails_and_names_the_queue_when_finals_wait_behind_uploads():
    idle = level_of([final_row(0.2, 0.0, 1.0, 0.02)] * 6)
    # Finals wait for the upload batch in progress: seconds in the queue, compute as idle.
    busy = level_of([final_row(0.2, 0.0, 1.0, 0.02)] * 3 + [final_row(0.2, 4.0, 1.0, 0.02)] * 3)
    result = live_first(idle, busy, uploads([100.0], [0]))
    assert result["ratio_p95"] > 4 and result["passed"] is False
    assert result["dominant"] == "queue_wait_s"
    assert result["mean_growth"]["queue_wait_s"] == pytest.approx(2.0)
    assert result["mean_growth"]["latency_s"] == pytest.approx(2.0)
    # The uploads were all done before the stream ended: the run says so.
    assert result["uploads_outlasted_stream"] is False
    printed = "\n".join(live_first_lines(result))
    assert "uploads ran out" in printed and "most: queue" in printed


def test_live_first_without_an_idle_figure_has_no_verdict():
    busy = level_of([final_row(0.2, 0.0, 1.0, 0.02)] * 6)
    result = live_first(None, busy, uploads([60.0], [3]))
    assert result["ratio_p95"] is None and result["passed"] is None
    assert result["dominant"] is None
    live_first_lines(result)  # prints dashes, does not fail


def test_the_workers_label_follows_the_launcher():
    label = workers_label(
        [("stt", "stt"), ("stt-live", "stt_live"), ("stt-partial", "stt_partial")]
    )
    assert label == (
        "workers stt (stt_live,stt, nice 10) + stt_live (stt_live) + "
        "stt_partial (stt_partial, nice 19)"
    )
