"""Live transcription through ``/ws`` at real-time pace, with 1, 2 and 4 clients at once.

``make bench-live`` (or ``python -m bench.live`` with ``DATABASE_URL`` / ``REDIS_URL`` set)
sets the platform up as a deployment runs it: daphne in a subprocess, one Celery worker on
queue ``stt`` (concurrency 1, as ``workers/launch.py`` starts a CPU worker), one on
``stt_partial`` at nice 19 (none with ``LIVE_PARTIAL_QUEUE=stt``) and one on ``keywords``
with the embedded extractor, a database of its own (``stt_bench_live``, created
when missing and migrated) and a Redis database number of its own (so no other worker on the
server takes its jobs). Clients are real WebSocket clients over TCP (``bench/wsclient.py``,
a minimal RFC 6455 client on asyncio streams) speaking the native protocol.

Each client streams one timeline: a second of silence, the Korean clips of the evaluation
set (each followed by 1.5 s of digital silence; client *i* starts at the *i*-th clip, so the
clients' utterances do not all end at the same moment, ``--same-order`` turns that off),
then the no-speech clips, likewise. 100 ms frames of 16-bit PCM go out at real-time pace:
frame *k* is sent when its last sample would have left a microphone, ``t0 + (k+1) x 0.1 s``
on the monotonic clock, so a late wake-up never accumulates into drift. Then ``stop``; the
client waits for ``stopped`` and for a ``final`` per ``speech_started`` (or gives up after
``--drain-timeout``).

Measured, per utterance (a ``final`` event):

* end of speech: from the audio alone, the end of the last 20 ms frame inside the
  utterance whose RMS is above 5% of the clip's loudest frame (``tests.audio_files``'s
  ``speech_bounds`` rule), on the stream timeline;
* latency: wall time the ``final`` arrived minus wall time the frame holding that end of
  speech was sent;
* plain compute: after the live runs, in this process, ``WhisperModel.transcribe`` of the
  same samples the server cut (the final's start/end on the timeline), beam 5, no
  timestamps, no VAD; overhead = latency - plain compute;
* where the latency goes, from the final's own fields (every process runs on this machine,
  so wall clocks agree): endpointing (end of speech -> the consumer dispatched the utterance:
  mostly the ``VAD_MIN_SILENCE_MS`` the endpointer must hear before it may cut), queue
  (``queue_wait_s``: broker, and a partial the worker may be running), server compute
  (``compute_s``: audio from Redis, Whisper, filter, database row), delivery (worker's
  timestamp -> the client has it: Redis event log, channel layer, consumer, socket).

Per client: CER of the finals matched to each clip by their start/end (both as-is and with
Arabic numerals read as Sino-Korean), words emitted in finals on the no-speech clips or in
the silences, and the ``status`` events' ``backlog_s``: its maximum, the trend (least-squares
slope, seconds per minute) of the backlog left right after each final, and the most
utterances still pending after a final. The batch path's CER on the same clips comes from
the platform's engine functions in this process (Silero VAD regions, batched Whisper,
hallucination filter), as the ``transcribe`` task runs them.

One run of a level is six finals per client, and this machine's Whisper calls vary by 10-15%
from one run to the next: ``--rounds N`` streams each level N times and pools the finals for
the latency figures (the backlog is judged per round, the worst round counting).

Results are printed per level, with PASS/FAIL for the issue's targets, and saved as JSON
(with the three processes' logs) under ``bench/results/``. The exit status is 0 whether the
targets pass or not: it is a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform as platform_info
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import fmt, free_port, pct, raise_interrupt, wait_until_quiet
from bench.harness import (
    log_tail,
    open_database,
    prepare_environment,
    server_name,
    setup_django,
    start_process,
    stop_all,
    stop_process,
)
from bench.wsclient import WsClient
from workers.launch import partial_workers_wanted, web_command

REPO_ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or REPO_ROOT.parent / "shared" / "eval")
RESULTS_DIR = REPO_ROOT / "bench" / "results"

PARTIALS_LABEL = (
    "1 partial worker (nice 19)" if partial_workers_wanted() else "partials on the stt worker"
)

RATE = 16000
FRAME_S = 0.1
FRAME = int(FRAME_S * RATE)
LEAD_S = 1.0
GAP_S = 1.5
# End of speech by energy, as tests/audio_files.speech_bounds defines it.
EOS_FRAME_S = 0.02
EOS_LEVEL = 0.05
WARMUP_CLIP = "ko_picovoice_leopard_test_ko"

# Targets of the issue, for the embedded base model on this machine.
MAX_OVERHEAD_P50_S = 0.3
MAX_CER_GAP = 0.02  # CER points (0.02 = 2 percentage points) above the batch path
# "No growing backlog": the audio cut into utterances but not yet transcribed (all clients
# together) keeps returning to zero; a worker that keeps up is idle between utterances,
# one that falls behind never empties its queue. Longest stretch it may stay above zero:
MAX_BUSY_STRETCH_S = 20.0


def mirror_log(process: subprocess.Popen, path: Path) -> threading.Thread:
    """Copy a worker's log, as it grows, into ``path``: ``running_worker`` writes it to a
    temporary file (``process.log``) that goes away when the worker stops."""
    fd = process.log.fileno()

    def pump() -> None:
        offset = 0
        with path.open("ab") as out:
            while True:
                try:
                    chunk = os.pread(fd, 1 << 16, offset)
                except OSError:
                    return  # the worker stopped and its log was closed
                if chunk:
                    out.write(chunk)
                    out.flush()
                    offset += len(chunk)
                elif process.poll() is not None:
                    return
                else:
                    time.sleep(0.1)

    thread = threading.Thread(target=pump, name=f"mirror-{path.name}", daemon=True)
    thread.start()
    return thread


def machine_busy_cpu() -> float:
    """CPU seconds the whole machine has spent so far, idle and I/O wait excluded."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def own_cpu() -> float:
    """CPU seconds of this process and everything it started (daphne, the workers)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


# --- the streams ------------------------------------------------------------------------


@dataclass
class Piece:
    """One clip on a client's timeline."""

    id: str
    kind: str  # "ko" or "none"
    reference: str  # reference_nospace; "" for no speech
    start: float  # seconds on the stream timeline
    end: float
    frame_rms: np.ndarray = field(repr=False)  # RMS of 20 ms frames from ``start``

    def end_of_speech(self, lo: float, hi: float) -> float | None:
        """End of the last loud 20 ms frame lying inside [lo, hi] (timeline seconds)."""
        loud = self.frame_rms > EOS_LEVEL * self.frame_rms.max()
        first = max(int(np.ceil((lo - self.start) / EOS_FRAME_S - 1e-9)), 0)
        last = min(int(np.floor((hi - self.start) / EOS_FRAME_S + 1e-9)), loud.size)
        hits = np.flatnonzero(loud[first:last])
        if hits.size == 0:
            return None
        return self.start + (first + hits[-1] + 1) * EOS_FRAME_S


@dataclass
class Stream:
    """A client's audio: ``pcm`` as sent, ``audio`` the same samples as the server decodes
    them (int16 / 32768), and where each clip lies."""

    pcm: np.ndarray = field(repr=False)
    audio: np.ndarray = field(repr=False)
    pieces: list[Piece]

    @property
    def frames(self) -> int:
        return self.pcm.size // FRAME

    @property
    def duration(self) -> float:
        return self.pcm.size / RATE


def quantise(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")


def load_clips() -> tuple[list[dict], dict[str, np.ndarray]]:
    from transcription.audio import decode_audio

    manifest = EVAL_DIR / "manifest.jsonl"
    if not manifest.exists():
        raise SystemExit(f"evaluation set not found at {EVAL_DIR}; set EVAL_DIR")
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    entries = [e for e in entries if e["lang"] in ("ko", "none")]
    audio = {e["id"]: quantise(decode_audio(EVAL_DIR / e["file"])) for e in entries}
    return entries, audio


def build_stream(entries: list[dict], audio: dict[str, np.ndarray], rotate: int) -> Stream:
    korean = [e for e in entries if e["lang"] == "ko"]
    if korean:
        rotate %= len(korean)
        korean = korean[rotate:] + korean[:rotate]
    order = korean + [e for e in entries if e["lang"] == "none"]
    parts = [np.zeros(int(LEAD_S * RATE), dtype="<i2")]
    position = parts[0].size
    pieces = []
    frame = int(EOS_FRAME_S * RATE)
    for entry in order:
        pcm = audio[entry["id"]]
        samples = pcm.astype(np.float64) / 32768.0
        usable = samples[: samples.size // frame * frame].reshape(-1, frame)
        pieces.append(
            Piece(
                id=entry["id"],
                kind=entry["lang"],
                reference=entry["reference_nospace"] if entry["lang"] == "ko" else "",
                start=position / RATE,
                end=(position + pcm.size) / RATE,
                frame_rms=np.sqrt((usable**2).mean(axis=1)),
            )
        )
        gap = np.zeros(int(GAP_S * RATE), dtype="<i2")
        parts += [pcm, gap]
        position += pcm.size + gap.size
    pcm = np.concatenate(parts)
    pad = -pcm.size % FRAME
    pcm = np.concatenate([pcm, np.zeros(pad, dtype="<i2")])
    return Stream(pcm=pcm, audio=pcm.astype(np.float32) / 32768.0, pieces=pieces)


@dataclass
class ClientRun:
    index: int
    stream: Stream
    session: str = ""
    t0_wall: float = 0.0
    sent_wall: np.ndarray | None = field(default=None, repr=False)
    max_send_late_s: float = 0.0
    stop_wall: float | None = None
    stopped_wall: float | None = None
    done_wall: float | None = None
    complete: bool = False
    events: list[tuple[float, dict]] = field(default_factory=list, repr=False)
    errors: list[dict] = field(default_factory=list)


async def run_client(
    run: ClientRun, client: WsClient, t0_mono: float, drain_timeout: float
) -> ClientRun:
    """Stream ``run.stream`` at real-time pace from ``t0_mono`` and collect every event."""
    loop = asyncio.get_running_loop()
    run.t0_wall = time.time() + (t0_mono - loop.time())
    state = {"started": 0, "finals": set(), "stopped": False, "closed": False}
    finished = asyncio.Event()

    async def reader() -> None:
        while True:
            arrived, event = await client.inbox.get()
            run.events.append((arrived, event))
            kind = event.get("type")
            if kind == "speech_started":
                state["started"] += 1
            elif kind == "final":
                state["finals"].add(event["utterance"])
            elif kind == "stopped":
                state["stopped"] = True
                run.stopped_wall = arrived
            elif kind == "error":
                run.errors.append(event)
            elif kind == "_closed":
                state["closed"] = True
            done = state["stopped"] and len(state["finals"]) >= state["started"]
            if done or state["closed"]:
                run.complete = done
                run.done_wall = arrived
                finished.set()
                return

    reading = asyncio.create_task(reader())
    pcm = run.stream.pcm.tobytes()
    sent = np.zeros(run.stream.frames)
    step = FRAME * 2
    for k in range(run.stream.frames):
        target = t0_mono + (k + 1) * FRAME_S
        delay = target - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if state["closed"]:
            break
        client.send_bytes(pcm[k * step : (k + 1) * step])
        sent[k] = time.time()
        run.max_send_late_s = max(run.max_send_late_s, loop.time() - target)
    run.sent_wall = sent
    client.send_json({"type": "stop"})
    run.stop_wall = time.time()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(finished.wait(), drain_timeout)
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading
    await client.close()
    return run


async def start_session(client: WsClient) -> str:
    client.send_json(
        {"type": "start", "language": "ko", "sample_rate": RATE, "encoding": "pcm_s16le"}
    )
    while True:
        _arrived, event = await client.receive(timeout=15)
        if event.get("type") == "ready":
            return event["session"]
        if event.get("type") in ("error", "_closed"):
            raise RuntimeError(f"session did not start: {event}")


async def run_level(
    host: str, port: int, streams: list[Stream], drain_timeout: float, cookie: str
) -> list[ClientRun]:
    clients, runs = [], []
    try:
        for i, stream in enumerate(streams):
            client = await WsClient.connect(host, port, cookie=cookie)
            clients.append(client)
            run = ClientRun(index=i, stream=stream)
            run.session = await start_session(client)
            runs.append(run)
        # Everyone starts together, a moment after the last one is ready.
        t0 = asyncio.get_running_loop().time() + 0.3
        return list(
            await asyncio.gather(
                *(run_client(r, c, t0, drain_timeout) for r, c in zip(runs, clients, strict=True))
            )
        )
    finally:
        for client in clients:
            await client.close()


# --- analysis ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.percentile(values, q)) if values else None


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    t = np.array([p[0] for p in points])
    if t.max() - t.min() < 10:
        return None
    y = np.array([p[1] for p in points])
    return float(np.polyfit(t, y, 1)[0] * 60)


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    with contextlib.suppress(ValueError):
        return dt.datetime.fromisoformat(stamp).timestamp()
    return None


def match_piece(pieces: list[Piece], start: float, end: float) -> Piece | None:
    best, overlap = None, 0.0
    for piece in pieces:
        shared = min(end, piece.end) - max(start, piece.start)
        if shared > overlap:
            best, overlap = piece, shared
    return best


def score(reference: str, hypothesis: str) -> dict:
    from bench.cer import edit_distance, normalise

    ref = normalise(reference)
    out = {"ref_chars": len(ref)}
    for key, numerals in (("plain", False), ("numerals", True)):
        hyp = normalise(hypothesis, numerals=numerals)
        out[f"edits_{key}"] = edit_distance(ref, hyp) if ref else len(hyp)
    return out


def cer_of(scores: list[dict]) -> dict[str, float | None]:
    chars = sum(s["ref_chars"] for s in scores)
    return {
        key: (sum(s[f"edits_{key}"] for s in scores) / chars if chars else None)
        for key in ("plain", "numerals")
    }


def analyse_client(run: ClientRun) -> dict:
    """Utterances, CER, no-speech words and backlog of one client's run."""
    stream = run.stream
    utterances = []
    statuses = []
    partials = keywords = 0
    after_final = False
    for arrived, event in run.events:
        kind = event.get("type")
        if kind == "final":
            utterances.append((arrived, event))
            after_final = True
            continue
        if kind == "status":
            statuses.append(
                {
                    "t": arrived - run.t0_wall,
                    "backlog_s": event.get("backlog_s"),
                    "pending": event.get("pending_utterances"),
                    "behind": event.get("behind"),
                    "after_final": after_final,
                }
            )
        elif kind == "partial":
            partials += 1
        elif kind == "keywords":
            keywords += 1
        after_final = False

    rows = []
    for arrived, event in sorted(utterances, key=lambda u: u[1]["start"]):
        start, end = float(event["start"]), float(event["end"])
        piece = match_piece(stream.pieces, start, end)
        row = {
            "client": run.index,
            "utterance": event["utterance"],
            "start": start,
            "end": end,
            "text": event.get("text") or "",
            "piece": piece.id if piece else None,
            "piece_kind": piece.kind if piece else "gap",
            "arrival_t": round(arrived - run.t0_wall, 3),
            "queue_wait_s": event.get("queue_wait_s"),
            "compute_s": event.get("compute_s"),
        }
        finished = _epoch(event.get("timestamp"))
        if finished is not None:
            row["delivery_s"] = arrived - finished
            if row["compute_s"] is not None and row["queue_wait_s"] is not None:
                row["dispatched_t"] = (
                    finished - row["compute_s"] - row["queue_wait_s"] - run.t0_wall
                )
        if piece is not None and piece.kind == "ko" and run.sent_wall is not None:
            eos = piece.end_of_speech(start, end)
            if eos is not None:
                frame = min(max(int(np.ceil(eos * RATE)) - 1, 0) // FRAME, stream.frames - 1)
                sent = run.sent_wall[frame]
                if sent > 0:
                    row["eos"] = round(eos, 3)
                    row["latency_s"] = arrived - sent
                    if "dispatched_t" in row:
                        row["endpoint_s"] = row["dispatched_t"] + run.t0_wall - sent
        rows.append(row)

    # CER per Korean clip: the finals matched to it, in order.
    clip_scores = []
    for piece in stream.pieces:
        if piece.kind != "ko":
            continue
        text = " ".join(r["text"] for r in rows if r["piece"] == piece.id and r["text"])
        clip_scores.append({"id": piece.id, "text": text, **score(piece.reference, text)})
    nospeech = [r for r in rows if r["piece_kind"] == "none"]
    in_gaps = [r for r in rows if r["piece_kind"] == "gap"]

    post = [s for s in statuses if s["after_final"] and s["backlog_s"] is not None]
    return {
        "client": run.index,
        "session": run.session,
        "complete": run.complete,
        "errors": run.errors,
        "max_send_late_s": run.max_send_late_s,
        "stream_s": stream.duration,
        # From stop to the last outstanding final (or giving up).
        "drain_s": run.done_wall - run.stop_wall if run.done_wall and run.stop_wall else None,
        "utterances": rows,
        "clips": clip_scores,
        "cer": cer_of(clip_scores),
        "nospeech_words": sum(len(r["text"].split()) for r in nospeech),
        "nospeech_texts": [r["text"] for r in nospeech if r["text"]],
        "gap_words": sum(len(r["text"].split()) for r in in_gaps),
        "gap_texts": [r["text"] for r in in_gaps if r["text"]],
        "partials": partials,
        "keyword_events": keywords,
        "statuses": statuses,
        "backlog_max_s": max(
            (s["backlog_s"] for s in statuses if s["backlog_s"] is not None), default=None
        ),
        "behind_count": sum(bool(s["behind"]) for s in statuses),
        "post_final_backlog_slope": slope_per_minute([(s["t"], s["backlog_s"]) for s in post]),
        "post_final_backlog_max_s": max((s["backlog_s"] for s in post), default=None),
        "post_final_pending_max": max((s["pending"] or 0 for s in post), default=None),
        "post_final_backlog_last_s": post[-1]["backlog_s"] if post else None,
        "speech_end_s": max((p.end for p in stream.pieces if p.kind == "ko"), default=0.0) + GAP_S,
    }


# --- plain compute and the batch path --------------------------------------------------


def plain_compute(model, audio: np.ndarray) -> float:
    started = time.perf_counter()
    segments, _info = model.transcribe(
        audio, language="ko", beam_size=5, without_timestamps=True, vad_filter=False
    )
    for _segment in segments:
        pass
    return time.perf_counter() - started


def batch_path(entries: list[dict], audio: dict[str, np.ndarray]) -> dict:
    """The upload path's engine functions on each Korean clip (no HTTP, Celery or database)."""
    from transcription import engine
    from transcription.hallucination import filter_segments

    clips = []
    for entry in entries:
        if entry["lang"] != "ko":
            continue
        samples = audio[entry["id"]].astype(np.float32) / 32768.0
        regions = engine.speech_regions(samples)
        kept = []
        for batch in engine.transcribe_regions(samples, regions, "ko"):
            kept += filter_segments(batch.segments, speech_spans=regions)
        text = " ".join(s.text for s in kept)
        clips.append({"id": entry["id"], "text": text, **score(entry["reference_nospace"], text)})
    return {"clips": clips, "cer": cer_of(clips)}


# --- the report ---------------------------------------------------------------------------


def worker_tasks(log_text: str) -> dict[str, dict[str, float]]:
    """Tasks the stt worker finished, per task name: how many and their total seconds."""
    out: dict[str, dict[str, float]] = {}
    for name, seconds in _TASK_DONE.findall(log_text):
        entry = out.setdefault(name.rsplit(".", 1)[-1], {"count": 0, "seconds": 0.0})
        entry["count"] += 1
        entry["seconds"] += float(seconds)
    return out


_TASK_FAILED = re.compile(r"Task \S+\[[^\]]+\] raised unexpected: (.*)")
_TASK_DONE = re.compile(r"Task (\S+?)\[[^\]]+\] succeeded in ([\d.]+)s")


def queued_backlog(clients: list[dict], step: float = 0.1) -> dict:
    """Seconds of audio cut into utterances and not yet answered with a final, over the
    level's timeline (every client starts at the same moment): the part of the server's
    ``backlog_s`` that is waiting for the worker, without the utterance still being spoken."""
    rows = [
        (c["client"], r["dispatched_t"], r["arrival_t"], r["end"] - r["start"])
        for c in clients
        for r in c["utterances"]
        if "dispatched_t" in r
    ]
    if not rows:
        return {}
    grid = np.arange(0.0, max(a for _c, _d, a, _s in rows) + step, step)
    queued = np.zeros_like(grid)
    for _client, dispatched, arrived, seconds in rows:
        queued[(grid >= dispatched) & (grid < arrived)] += seconds
    busy = queued > 0
    longest = run = 0
    for flag in busy:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    speech_end = max(c["speech_end_s"] for c in clients)
    part = grid <= speech_end
    waiting = 0  # most utterances of one client pending at once
    for client, dispatched, _arrived, _s in rows:
        waiting = max(
            waiting,
            sum(1 for c, d, a, _ in rows if c == client and d <= dispatched < a),
        )
    return {
        "max_s": float(queued.max()),
        "idle_share": float(1 - busy[part].mean()) if part.any() else None,
        "longest_busy_s": longest * step,
        "slope_s_per_min": slope_per_minute(list(zip(grid[part], queued[part], strict=True))),
        "most_pending_per_client": waiting,
    }


def summarise_level(
    level: int, clients: list[dict], other_cpu_s: float, wall_s: float, tasks: dict
) -> dict:
    rows = [r for c in clients for r in c["utterances"]]
    timed = [r for r in rows if "latency_s" in r]
    overhead = [r["latency_s"] - r["plain_s"] for r in timed if r.get("plain_s") is not None]
    # What the platform adds besides Whisper and the silence rule: queue + (compute - plain)
    # + delivery; the endpointing part is the VAD_MIN_SILENCE_MS the endpointer must hear.
    beyond = [
        r["latency_s"] - r["plain_s"] - r["endpoint_s"]
        for r in timed
        if r.get("plain_s") is not None and r.get("endpoint_s") is not None
    ]
    cer = cer_of([s for c in clients for s in c["clips"]])
    return {
        "level": level,
        "utterances": len(rows),
        "timed_utterances": len(timed),
        "cer": cer,
        "cer_per_client": [c["cer"] for c in clients],
        "latency_p50": percentile([r["latency_s"] for r in timed], 50),
        "latency_p95": percentile([r["latency_s"] for r in timed], 95),
        "plain_p50": percentile([r.get("plain_s") for r in timed], 50),
        "plain_p95": percentile([r.get("plain_s") for r in timed], 95),
        "overhead_p50": percentile(overhead, 50),
        "overhead_p95": percentile(overhead, 95),
        "beyond_endpoint_p50": percentile(beyond, 50),
        "beyond_endpoint_p95": percentile(beyond, 95),
        "latency_minus_compute_p50": percentile(
            [r["latency_s"] - r["compute_s"] for r in timed if r.get("compute_s") is not None], 50
        ),
        "endpoint_p50": percentile([r.get("endpoint_s") for r in timed], 50),
        "endpoint_p95": percentile([r.get("endpoint_s") for r in timed], 95),
        "queue_p50": percentile([r.get("queue_wait_s") for r in timed], 50),
        "queue_p95": percentile([r.get("queue_wait_s") for r in timed], 95),
        "compute_p50": percentile([r.get("compute_s") for r in timed], 50),
        "compute_p95": percentile([r.get("compute_s") for r in timed], 95),
        "delivery_p50": percentile([r.get("delivery_s") for r in timed], 50),
        "delivery_p95": percentile([r.get("delivery_s") for r in timed], 95),
        "backlog_max_s": max((c["backlog_max_s"] or 0 for c in clients), default=None),
        "backlog_slopes": [c["post_final_backlog_slope"] for c in clients],
        "post_final_backlog_max_s": max(
            (c["post_final_backlog_max_s"] or 0 for c in clients), default=None
        ),
        "post_final_pending_max": max(
            (c["post_final_pending_max"] or 0 for c in clients), default=None
        ),
        "behind_count": sum(c["behind_count"] for c in clients),
        "drain_s_max": max((c["drain_s"] or 0 for c in clients), default=None),
        "nospeech_words": sum(c["nospeech_words"] for c in clients),
        "gap_words": sum(c["gap_words"] for c in clients),
        "complete": all(c["complete"] for c in clients),
        "errors": [e for c in clients for e in c["errors"]],
        "max_send_late_s": max(c["max_send_late_s"] for c in clients),
        "partials": sum(c["partials"] for c in clients),
        "other_cpu_s": other_cpu_s,
        "wall_s": wall_s,
        "worker_tasks": tasks,
        "queued": worst_round_backlog(clients),
        "rounds": len({c.get("round", 0) for c in clients}),
    }


def worst_round_backlog(clients: list[dict]) -> dict:
    """``queued_backlog`` of each round (its clients streamed at the same time), the round
    whose backlog stayed above zero longest."""
    rounds: dict[int, list[dict]] = {}
    for client in clients:
        rounds.setdefault(client.get("round", 0), []).append(client)
    found = [queued_backlog(members) for members in rounds.values()]
    return max(found, key=lambda q: q.get("longest_busy_s") or 0.0, default={})


def report(levels: list[dict], batch: dict, meta: dict) -> dict:
    lines: list[str] = []
    add = lines.append
    add("")
    add(
        f"Live benchmark: /ws at real-time pace ({FRAME_S * 1000:.0f} ms frames), "
        f"daphne + 1 stt worker (concurrency 1) + {PARTIALS_LABEL} + 1 keyword worker (embedded)"
    )
    add(
        f"model {meta['model']} | {meta['device']} {meta['compute_type']} | beam "
        f"{meta['beam_size']} | {meta['cores']} cores | VAD min silence "
        f"{meta['vad']['min_silence_ms']} ms, pad {meta['vad']['speech_pad_ms']} ms | early "
        f"finals {'at ' + str(meta.get('pause_ms')) + ' ms pauses' if meta.get('early_finals') else 'off'}"
        " | partials "
        f"every {meta['partial_interval_s']} s | stream {meta['stream_s']:.1f} s per client "
        f"({meta['ko_clips']} Korean clips + {meta['none_clips']} no-speech clips, "
        f"{GAP_S} s silence after each) | clip order {meta['order']}"
    )
    add(
        "latency = final received - end of speech sent (energy end, 20 ms frames > 5% of the "
        "clip's peak); plain = bare WhisperModel.transcribe of the same utterance samples "
        "in this process afterwards; overhead = latency - plain"
    )
    add(
        "latency parts: endpoint = end of speech sent -> utterance dispatched (includes the "
        "VAD's min silence); queue = queue_wait_s; compute = compute_s (worker); delivery = "
        "worker done -> client has it; ovh-endp = overhead - endpoint = queue + (compute - "
        "plain) + delivery"
    )
    for summary in levels:
        n = summary["level"]
        add("")
        add(
            f"== {n} client(s)"
            + (f" x {summary['rounds']} rounds" if summary.get("rounds", 1) > 1 else "")
            + f" == {summary['utterances']} finals, {summary['timed_utterances']} "
            f"timed; wall {summary['wall_s']:.0f} s; CPU used by other processes on the machine "
            f"meanwhile {summary['other_cpu_s']:.1f} s"
            + ("" if summary["complete"] else "; SOME CLIENTS GAVE UP WAITING FOR FINALS")
        )
        add(
            f"  CER (all clients' finals): {pct(summary['cer']['plain'])} as-is, "
            f"{pct(summary['cer']['numerals'])} with numerals read; per client: "
            + ", ".join(
                f"{pct(c['plain'])}/{pct(c['numerals'])}" for c in summary["cer_per_client"]
            )
        )
        add(
            f"  {'seconds':<10} {'latency':>8} {'plain':>7} {'overhead':>8} {'ovh-endp':>8} | "
            f"{'endpoint':>8} {'queue':>7} {'compute':>7} {'delivery':>8}"
        )
        for q in ("p50", "p95"):
            add(
                f"  {q:<10} {fmt(summary['latency_' + q]):>8} {fmt(summary['plain_' + q]):>7} "
                f"{fmt(summary['overhead_' + q]):>8} {fmt(summary['beyond_endpoint_' + q]):>8} | "
                f"{fmt(summary['endpoint_' + q]):>8} "
                f"{fmt(summary['queue_' + q]):>7} {fmt(summary['compute_' + q]):>7} "
                f"{fmt(summary['delivery_' + q]):>8}"
            )
        tasks = summary["worker_tasks"]
        busy = sum(t["seconds"] for t in tasks.values())
        add(
            "  stt worker: "
            + ", ".join(
                f"{name} {int(t['count'])}x {t['seconds']:.1f} s" for name, t in tasks.items()
            )
            + f"; busy {busy:.0f} s of {summary['wall_s']:.0f} s"
        )
        queued = summary["queued"]
        add(
            f"  backlog waiting for the worker (cut, no final yet; all clients): max "
            f"{fmt(queued.get('max_s'))} s, longest stretch above zero "
            f"{fmt(queued.get('longest_busy_s'), '.1f')} s, zero "
            f"{pct(queued.get('idle_share'))} of the speech part, trend "
            f"{fmt(queued.get('slope_s_per_min'), '+.2f')} s/min; at most "
            f"{queued.get('most_pending_per_client')} utterance(s) of one client pending at once"
        )
        add(
            f"  backlog_s in status events (includes the utterance being spoken): max "
            f"{fmt(summary['backlog_max_s'])} s, 'behind' {summary['behind_count']}x; right after "
            f"each final: max {fmt(summary['post_final_backlog_max_s'])} s, trend per client "
            + ", ".join(fmt(s, "+.2f") for s in summary["backlog_slopes"])
            + f" s/min, pending_utterances max {summary['post_final_pending_max']}; all finals "
            f"in {fmt(summary['drain_s_max'])} s after stop"
        )
        add(
            f"  no-speech clips: {summary['nospeech_words']} word(s); in the silences: "
            f"{summary['gap_words']} word(s); partials received {summary['partials']}; "
            f"frames sent up to {summary['max_send_late_s'] * 1000:.0f} ms late"
        )
        for client in summary["clients"]:
            for text in client["nospeech_texts"] + client["gap_texts"]:
                add(f"      client {client['client']}: {text!r}")
        if summary["errors"]:
            add(f"  errors: {summary['errors'][:5]}")
        if summary["worker_failures"]:
            add(
                f"  stt tasks failed: {len(summary['worker_failures'])}, last: "
                f"{summary['worker_failures'][-1]}"
            )
    add("")
    add(
        f"Batch path (engine: Silero VAD regions + batched Whisper + filter, in-process) on the "
        f"same clips: CER {pct(batch['cer']['plain'])} as-is, {pct(batch['cer']['numerals'])} "
        "with numerals read"
    )
    plain = meta["plain_phase"]
    add(
        f"Plain compute: {plain['distinct_utterances']} distinct utterances, median of "
        f"{plain['repeat']} runs each; {plain['wall_s']:.0f} s, CPU used by other processes on "
        f"the machine meanwhile {plain['other_cpu_s']:.1f} s ({meta['cores']} cores)"
    )

    targets = []

    def target(name: str, ok: bool | None, detail: str) -> None:
        verdict = "PASS" if ok else ("FAIL" if ok is not None else "N/A ")
        targets.append({"target": name, "result": verdict.strip(), "detail": detail})
        add(f"  {verdict}  {name}: {detail}")

    add("")
    add("Targets")
    for summary in levels:
        n = summary["level"]
        p50 = summary["overhead_p50"]
        target(
            f"{n} client(s): overhead p50 <= {MAX_OVERHEAD_P50_S} s",
            None if p50 is None else p50 <= MAX_OVERHEAD_P50_S,
            f"{fmt(p50)} s (p95 {fmt(summary['overhead_p95'])} s; of it endpointing p50 "
            f"{fmt(summary['endpoint_p50'])} s, the rest p50 {fmt(summary['beyond_endpoint_p50'])} s)",
        )
        queued = summary["queued"]
        longest = queued.get("longest_busy_s")
        target(
            f"{n} client(s): no growing backlog (waiting audio back to zero at least every "
            f"{MAX_BUSY_STRETCH_S:.0f} s)",
            None if longest is None else longest <= MAX_BUSY_STRETCH_S and summary["complete"],
            f"longest stretch above zero {fmt(longest, '.1f')} s, max {fmt(queued.get('max_s'))} s, "
            f"trend {fmt(queued.get('slope_s_per_min'), '+.2f')} s/min"
            + ("" if summary["complete"] else "; some finals never came"),
        )
        live, base = summary["cer"], batch["cer"]
        ok = None
        if None not in (live["plain"], live["numerals"], base["plain"], base["numerals"]):
            ok = (
                live["plain"] <= base["plain"] + MAX_CER_GAP
                and live["numerals"] <= base["numerals"] + MAX_CER_GAP
            )
        target(
            f"{n} client(s): CER within {MAX_CER_GAP * 100:.0f} points of batch",
            ok,
            f"as-is {pct(live['plain'])} vs {pct(base['plain'])}, with numerals "
            f"{pct(live['numerals'])} vs {pct(base['numerals'])}",
        )
        target(
            f"{n} client(s): zero words on no-speech clips",
            summary["nospeech_words"] == 0,
            f"{summary['nospeech_words']} word(s) (and {summary['gap_words']} in the silences)",
        )
    add(f"load avg before {meta['load_before']}, after {meta['load_after']}")
    print("\n".join(lines), flush=True)
    return {"targets": targets, "printed": lines}


# --- the run ------------------------------------------------------------------------------


def sign_in(username: str = "bench-live") -> str:
    """A ``Cookie`` header value with a session of the bench's own user: ``/ws`` serves
    signed-in users only, and every client of a run is that one user."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client

    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save()
    browser = Client()
    browser.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    cookie = f"{name}={browser.cookies[name].value}"
    connections.close_all()
    return cookie


class Platform:
    """daphne, an stt worker, a partial worker (unless LIVE_PARTIAL_QUEUE=stt) and a keyword
    worker on the bench's database and Redis, as ``workers/launch.py`` starts them."""

    def __init__(self, workdir: Path, redis_url: str, max_level: int) -> None:
        import httpx
        import redis

        from tests.celery_workers import running_worker
        from workers.heartbeat import KEY_PREFIX

        self.workdir = workdir
        self.redis = redis.Redis.from_url(redis_url)
        others = [k.decode() for k in self.redis.scan_iter(match=KEY_PREFIX + "*")]
        if others:
            print(f"warning: other workers beat in the bench's Redis database: {others}")
        else:
            # Jobs an interrupted earlier run left behind would be run against this one.
            for key in self.redis.scan_iter(match="*"):
                name = key.decode(errors="replace")
                if name.startswith(("stt", "keywords", "live:")):
                    self.redis.delete(key)
        self.port = free_port()
        env = {
            **os.environ,
            # Every client comes from 127.0.0.1: let all of a level's sessions in.
            "LIVE_MAX_SESSIONS_PER_USER": str(max(4, max_level)),
        }
        self.web = start_process(
            web_command("127.0.0.1", self.port),
            workdir / "web.log",
            env,
        )
        self._stack = contextlib.ExitStack()
        self.logs = {"web": workdir / "web.log"}
        try:
            workers = [("stt", {}), ("keywords", {"KEYWORD_BACKEND": "embedded"})]
            if partial_workers_wanted():
                workers.append(("stt_partial", {}))
            for queue, extra in workers:
                worker = self._stack.enter_context(
                    running_worker(queue, extra_env=extra, timeout=120)
                )
                self.logs[queue] = workdir / f"{queue}.log"
                mirror_log(worker, self.logs[queue])
            deadline = time.monotonic() + 60
            while True:
                if self.web.poll() is not None:
                    raise RuntimeError(f"daphne exited:\n{log_tail(self.logs['web'])}")
                try:
                    httpx.get(f"http://127.0.0.1:{self.port}/api/config", timeout=5)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("daphne did not answer within 60 s") from None
                    time.sleep(0.2)
        except BaseException:
            self.close()
            raise

    def clear_sessions(self) -> None:
        for key in self.redis.scan_iter(match="live:sessions:*"):
            self.redis.delete(key)

    def log_size(self, name: str) -> int:
        try:
            return self.logs[name].stat().st_size
        except OSError:
            return 0

    def log_text(self, name: str, offset: int) -> str:
        with self.logs[name].open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def queued(self) -> int:
        return sum(self.redis.llen(q) for q in ("stt", "stt_partial", "keywords"))

    def close(self) -> None:
        self._stack.close()
        stop_process(self.web)


def run(args: argparse.Namespace) -> int:
    env = prepare_environment("bench-live-", args.redis_db)
    base_db, redis_url, workdir = env.base_database_url, env.redis_url, env.workdir
    started_at = dt.datetime.now()
    platform = None
    try:
        created = open_database(
            base_db, args.db_name, fresh=args.fresh_db, make_target="bench-live"
        )
        print(
            f"database {args.db_name} on {server_name(base_db, 5432)} "
            f"({'created' if created else 'exists'}; migrating)"
        )
        setup_django(("httpx", "httpcore", "faster_whisper", "asyncio"))
        from django.conf import settings

        print(f"Redis {server_name(redis_url, 6379)}, database {args.redis_db} (the bench's own)")

        entries, clip_audio = load_clips()
        ko = [e for e in entries if e["lang"] == "ko"]
        none = [e for e in entries if e["lang"] == "none"]
        print(
            f"{len(ko)} Korean clips ({sum(e['duration_s'] for e in ko):.1f} s), "
            f"{len(none)} no-speech clips ({sum(e['duration_s'] for e in none):.1f} s)"
        )
        print(f"starting daphne, an stt worker, {PARTIALS_LABEL}, a keyword worker ...", flush=True)
        platform = Platform(workdir, redis_url, max(args.levels))
        print(f"daphne on 127.0.0.1:{platform.port}", flush=True)

        cookie = sign_in()
        # Warm-up, not counted: the worker loads Whisper on its first job, daphne the VAD.
        warm = next(e for e in ko if e["id"] == WARMUP_CLIP)
        warm_stream = build_stream([warm], clip_audio, 0)
        warm_run = asyncio.run(run_level("127.0.0.1", platform.port, [warm_stream], 120, cookie))[0]
        warm_finals = [e for _t, e in warm_run.events if e.get("type") == "final"]
        print(f"warm-up: {[e.get('text') for e in warm_finals]}", flush=True)

        load_before = [round(x, 2) for x in os.getloadavg()]
        level_results = []
        for level in args.levels:
            log_from = platform.log_size("stt")
            runs, clients, other, wall = [], [], 0.0, 0.0
            for round_ in range(args.rounds):
                platform.clear_sessions()
                deadline = time.monotonic() + 60
                while platform.queued() and time.monotonic() < deadline:
                    time.sleep(0.5)
                waited = wait_until_quiet(args.quiet_wait) if args.quiet_wait else 0.0
                streams = [
                    build_stream(entries, clip_audio, 0 if args.same_order else i)
                    for i in range(level)
                ]
                print(
                    f"level {level}"
                    + (f", round {round_ + 1}/{args.rounds}" if args.rounds > 1 else "")
                    + f": {level} client(s) x {streams[0].duration:.1f} s"
                    + (f" (waited {waited:.0f} s for a quiet machine)" if waited > 1 else ""),
                    flush=True,
                )
                busy_before, own_before, wall_before = machine_busy_cpu(), own_cpu(), time.time()
                round_runs = asyncio.run(
                    run_level("127.0.0.1", platform.port, streams, args.drain_timeout, cookie)
                )
                other += max(0.0, (machine_busy_cpu() - busy_before) - (own_cpu() - own_before))
                wall += time.time() - wall_before
                for run_ in round_runs:
                    client = analyse_client(run_)
                    client["round"] = round_
                    print(
                        f"  client {client['client']}: {len(client['utterances'])} finals, CER "
                        f"{pct(client['cer']['plain'])}, "
                        f"{'complete' if client['complete'] else 'INCOMPLETE'}"
                        + (f", errors {client['errors']}" if client["errors"] else ""),
                        flush=True,
                    )
                    runs.append(run_)
                    clients.append(client)
            time.sleep(1)  # the worker's last log lines
            worker_log = platform.log_text("stt", log_from)
            tasks = worker_tasks(worker_log)
            failures = _TASK_FAILED.findall(worker_log)
            if failures:
                print(f"  WARNING: {len(failures)} stt task(s) failed: {failures[-1]}", flush=True)
            level_results.append(
                {
                    "level": level,
                    "runs": runs,
                    "clients": clients,
                    "other": other,
                    "wall": wall,
                    "tasks": tasks,
                    "failures": failures,
                }
            )
        load_after = [round(x, 2) for x in os.getloadavg()]

        print("plain faster-whisper on the same utterances ...", flush=True)
        from faster_whisper import WhisperModel

        model = WhisperModel(settings.WHISPER_MODEL, device="cpu", compute_type="int8")
        plain_compute(model, warm_stream.audio[: 3 * RATE])
        if args.quiet_wait:
            wait_until_quiet(args.quiet_wait)
        busy_before, own_before, wall_before = machine_busy_cpu(), own_cpu(), time.time()
        # The same clip is usually cut the same way for every client and level: time each
        # distinct utterance --plain-repeat times and take the median (a shared machine has
        # spikes), rather than once per final.
        timed: dict[str, float] = {}
        for result in level_results:
            for run_, client in zip(result["runs"], result["clients"], strict=True):
                for row in client["utterances"]:
                    if "latency_s" not in row:
                        continue
                    samples = run_.stream.audio[
                        int(round(row["start"] * RATE)) : int(round(row["end"] * RATE))
                    ]
                    key = hashlib.sha1(samples.tobytes()).hexdigest()
                    if key not in timed:
                        timed[key] = float(
                            np.median(
                                [plain_compute(model, samples) for _ in range(args.plain_repeat)]
                            )
                        )
                    row["plain_s"] = timed[key]
                    row["overhead_s"] = row["latency_s"] - row["plain_s"]
        del model
        plain_other = max(0.0, (machine_busy_cpu() - busy_before) - (own_cpu() - own_before))
        plain_wall = time.time() - wall_before
        print(
            f"  {len(timed)} distinct utterances x {args.plain_repeat}, {plain_wall:.0f} s; CPU "
            f"used by other processes meanwhile {plain_other:.1f} s",
            flush=True,
        )
        print("batch path on the same clips ...", flush=True)
        batch = batch_path(entries, clip_audio)

        summaries = []
        for result in level_results:
            summary = summarise_level(
                result["level"], result["clients"], result["other"], result["wall"], result["tasks"]
            )
            summary["clients"] = result["clients"]
            summary["worker_failures"] = result["failures"]
            summaries.append(summary)
        stream_meta = build_stream(entries, clip_audio, 0)
        meta = {
            "started_at": started_at.isoformat(timespec="seconds"),
            "model": settings.WHISPER_MODEL,
            "device": "cpu",
            "compute_type": "int8",
            "beam_size": settings.WHISPER_BEAM_SIZE,
            "cpu_threads": settings.WHISPER_CPU_THREADS,
            "partial_interval_s": settings.LIVE_PARTIAL_INTERVAL_S,
            "vad": {
                "threshold": settings.VAD_THRESHOLD,
                "min_silence_ms": settings.VAD_MIN_SILENCE_MS,
                "speech_pad_ms": settings.VAD_SPEECH_PAD_MS,
                "min_speech_ms": settings.VAD_MIN_SPEECH_MS,
                "max_utterance_s": settings.VAD_MAX_UTTERANCE_S,
            },
            "early_finals": settings.LIVE_EARLY_FINALS,
            "pause_ms": settings.LIVE_PAUSE_MS,
            "partial_queue": settings.LIVE_PARTIAL_QUEUE,
            "levels": args.levels,
            "rounds": args.rounds,
            "order": "same for every client" if args.same_order else "rotated per client",
            "stream_s": stream_meta.duration,
            "ko_clips": len(ko),
            "none_clips": len(none),
            "cores": os.cpu_count(),
            "host": platform_info.node(),
            "load_before": load_before,
            "load_after": load_after,
            "plain_phase": {
                "wall_s": plain_wall,
                "other_cpu_s": plain_other,
                "distinct_utterances": len(timed),
                "repeat": args.plain_repeat,
            },
        }
        outcome = report(summaries, batch, meta)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = (
            Path(args.output)
            if args.output
            else RESULTS_DIR / f"live-{started_at:%Y%m%d-%H%M%S}.json"
        )
        out.write_text(
            json.dumps(
                {"meta": meta, "levels": summaries, "batch": batch, **outcome},
                ensure_ascii=False,
                indent=2,
                default=float,
            )
        )
        platform.close()
        for name, path in platform.logs.items():
            with contextlib.suppress(OSError):
                shutil.copy(path, out.with_suffix(f".{name}.log"))
        print(f"\nresults saved to {out}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the platform", file=sys.stderr)
        return 130
    finally:
        if platform is not None:
            platform.close()
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("levels are positive numbers of clients")
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.live",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--levels", type=_levels, default=[1, 2, 4], help="concurrent clients per run (1,2,4)"
    )
    parser.add_argument("--db-name", default="stt_bench_live", help="database to use (created)")
    parser.add_argument(
        "--fresh-db",
        action="store_true",
        help="drop and recreate that database first (e.g. after a migration was rewritten)",
    )
    parser.add_argument(
        "--redis-db", type=int, default=14, help="Redis database number for the bench's queues"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=120.0,
        help="seconds a client waits after stop for its outstanding finals",
    )
    parser.add_argument(
        "--same-order",
        action="store_true",
        help="every client streams the clips in the same order (utterances end together)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each level wait up to this many seconds for the machine to be idle",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="times each level is streamed; latency figures pool every round's finals, the "
        "backlog is judged per round (the worst one counts)",
    )
    parser.add_argument(
        "--plain-repeat",
        type=int,
        default=3,
        help="times each distinct utterance is timed with plain faster-whisper (median)",
    )
    parser.add_argument("--output", help="JSON file (default bench/results/live-<time>.json)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGHUP, raise_interrupt)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
