"""The live benchmark's analysis and report (bench/live.py runs the clients and the
platform): per-utterance latency split into endpointing, queue, compute and delivery, CER of
the finals against each clip, backlog over time, and the issue's targets, PASS or FAIL."""

from __future__ import annotations

import contextlib
import datetime as dt
import re

import numpy as np

from bench.cer import char_edits
from bench.common import fmt, pct
from bench.live_stream import FRAME, FRAME_S, GAP_S, RATE, ClientRun, Piece
from workers.launch import device_workers, partial_workers_wanted, worker_niceness
from workers.queues import consumed_queues

PARTIALS_LABEL = (
    "1 partial worker (nice 19)" if partial_workers_wanted() else "partials on the stt worker"
)


def workers_label(workers: list[tuple[str, str]] | None = None) -> str:
    """The speech workers the bench starts, as ``workers.launch.device_workers()`` lists
    them for one device: their queues and CPU priority."""
    parts = []
    for _prefix, queue in device_workers() if workers is None else workers:
        nice = worker_niceness(queue)
        parts.append(
            f"{queue} ({','.join(consumed_queues(queue))}" + (f", nice {nice})" if nice else ")")
        )
    return "workers " + " + ".join(parts)


# Targets of the issue, for the embedded base model on this machine.
MAX_OVERHEAD_P50_S = 0.3
MAX_CER_GAP = 0.02  # CER points (0.02 = 2 percentage points) above the batch path
# Live first: with uploads queued, a live final's latency p95 stays within this factor of
# the same stream's p95 on an idle platform.
MAX_BUSY_RATIO = 1.5
# "No growing backlog": the audio cut into utterances but not yet transcribed (all clients
# together) keeps returning to zero; a worker that keeps up is idle between utterances,
# one that falls behind never empties its queue. Longest stretch it may stay above zero:
MAX_BUSY_STRETCH_S = 20.0


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
    chars, plain, numerals = char_edits(reference, hypothesis)
    return {"ref_chars": chars, "edits_plain": plain, "edits_numerals": numerals}


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


# --- the report ---------------------------------------------------------------------------


def worker_tasks(log_text: str) -> dict[str, dict[str, float]]:
    """Tasks the stt worker finished, per task name: how many and their total seconds."""
    out: dict[str, dict[str, float]] = {}
    for name, seconds in _TASK_DONE.findall(log_text):
        entry = out.setdefault(name.rsplit(".", 1)[-1], {"count": 0, "seconds": 0.0})
        entry["count"] += 1
        entry["seconds"] += float(seconds)
    return out


TASK_FAILED = re.compile(r"Task \S+\[[^\]]+\] raised unexpected: (.*)")
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
        "parts_mean": parts_mean(timed),
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


LATENCY_PARTS = ("endpoint_s", "queue_wait_s", "compute_s", "delivery_s")


def parts_mean(rows: list[dict]) -> dict[str, float | None]:
    """Mean latency and mean of each of its parts over the finals that have all of them:
    means add up (latency = endpoint + queue + compute + delivery), so the growth of the
    latency under load splits exactly into the growth of its parts."""
    full = [
        r for r in rows if "latency_s" in r and all(r.get(p) is not None for p in LATENCY_PARTS)
    ]
    keys = ("latency_s", *LATENCY_PARTS)
    out: dict[str, float | None] = {
        key: (float(np.mean([r[key] for r in full])) if full else None) for key in keys
    }
    out["finals"] = len(full)
    return out


def upload_seconds_done(before: dict[str, float], after: dict[str, float]) -> float:
    """Seconds of upload audio transcribed between two snapshots of ``processed_s`` per
    upload (an upload missing from ``before`` was sent in between and started at 0)."""
    return sum(max(0.0, done - before.get(pk, 0.0)) for pk, done in after.items())


def live_first(idle: dict | None, busy: dict, uploads: dict) -> dict:
    """The "live first" comparison: the same stream's final latency on an idle platform
    (``idle``, the level-1 summary) and with uploads queued (``busy``), their ratio at p95
    against ``MAX_BUSY_RATIO``, which part of the latency grew, and how much upload audio the
    workers got through meanwhile (``uploads``: per round ``done_s``, ``stream_s``,
    ``outstanding_after``)."""
    rounds = uploads.get("rounds", [])
    result: dict = {
        "uploads": uploads,
        "idle_p50": idle.get("latency_p50") if idle else None,
        "idle_p95": idle.get("latency_p95") if idle else None,
        "busy_p50": busy.get("latency_p50"),
        "busy_p95": busy.get("latency_p95"),
        "upload_s_done": sum(r.get("done_s", 0.0) for r in rounds),
        # Uploads still waiting when a round's stream ended: the worker had work all along.
        "uploads_outlasted_stream": bool(rounds)
        and all(r.get("outstanding_after", 0) > 0 for r in rounds),
        "max_ratio": MAX_BUSY_RATIO,
    }
    for q in ("p50", "p95"):
        lo, hi = result[f"idle_{q}"], result[f"busy_{q}"]
        result[f"ratio_{q}"] = hi / lo if lo and hi is not None else None
    ratio = result["ratio_p95"]
    result["passed"] = None if ratio is None else ratio <= MAX_BUSY_RATIO
    # Growth of the mean latency, part by part (they add up).
    growth: dict[str, float] = {}
    if idle:
        before, after = idle.get("parts_mean") or {}, busy.get("parts_mean") or {}
        for key in ("latency_s", *LATENCY_PARTS):
            if before.get(key) is not None and after.get(key) is not None:
                growth[key] = after[key] - before[key]
    result["mean_growth"] = growth
    parts_q = ("endpoint", "queue", "compute", "delivery")
    result["parts_p95"] = {
        name: {part: summary.get(f"{part}_p95") for part in parts_q}
        for name, summary in (("idle", idle or {}), ("busy", busy))
    }
    result["busy_cer"] = busy.get("cer")
    parts = {k: v for k, v in growth.items() if k != "latency_s"}
    result["dominant"] = max(parts, key=parts.get) if parts else None
    return result


def live_first_lines(result: dict) -> list[str]:
    """The printed section of the live-first run."""
    uploads = result["uploads"]
    lines = [
        "",
        f"== live first: 1 client x {len(uploads.get('rounds', []))} round(s) with "
        f"{uploads.get('files')} uploads of {fmt(uploads.get('file_s'), '.0f')} s queued "
        "(POST /api/transcripts/ just before the stream) ==",
        f"  {'final latency':<14} {'idle':>7} {'busy':>7} {'ratio':>6}",
    ]
    for q in ("p50", "p95"):
        lines.append(
            f"  {q:<14} {fmt(result['idle_' + q]):>7} {fmt(result['busy_' + q]):>7} "
            f"{fmt(result['ratio_' + q]):>6}"
        )
    for name, parts in result["parts_p95"].items():
        lines.append(
            f"  {name} p95 parts: " + ", ".join(f"{k} {fmt(v)} s" for k, v in parts.items())
        )
    cer = result.get("busy_cer") or {}
    lines.append(
        f"  CER of the finals under load: {pct(cer.get('plain'))} as-is, "
        f"{pct(cer.get('numerals'))} with numerals read"
    )
    growth = result["mean_growth"]
    if growth:
        names = {"endpoint_s": "endpoint", "queue_wait_s": "queue", "compute_s": "compute"}
        names["delivery_s"] = "delivery"
        lines.append(
            f"  mean latency {fmt(growth.get('latency_s'), '+.2f')} s under load; of it "
            + ", ".join(f"{names[k]} {fmt(growth.get(k), '+.2f')} s" for k in LATENCY_PARTS)
            + (f" (most: {names[result['dominant']]})" if result["dominant"] else "")
        )
    for i, round_ in enumerate(uploads.get("rounds", [])):
        lines.append(
            f"  round {i + 1}: {round_.get('done_s', 0.0):.0f} s of upload audio transcribed "
            f"during {round_.get('stream_s', 0.0):.0f} s of streaming, "
            f"{round_.get('finished', 0)} upload(s) finished, "
            f"{round_.get('outstanding_after', 0)} still queued or running at its end; upload "
            f"worker CPU {fmt(round_.get('worker_cpu_s'), '.0f')} s"
        )
    if not result["uploads_outlasted_stream"]:
        lines.append(
            "  WARNING: the uploads ran out before a stream ended: the upload worker was idle "
            "for part of it (raise --uploads)"
        )
    return lines


def worst_round_backlog(clients: list[dict]) -> dict:
    """``queued_backlog`` of each round (its clients streamed at the same time), the round
    whose backlog stayed above zero longest."""
    rounds: dict[int, list[dict]] = {}
    for client in clients:
        rounds.setdefault(client.get("round", 0), []).append(client)
    found = [queued_backlog(members) for members in rounds.values()]
    return max(found, key=lambda q: q.get("longest_busy_s") or 0.0, default={})


def report(levels: list[dict], batch: dict, meta: dict, first: dict | None = None) -> dict:
    """Print the levels, the batch path, the live-first run (``first``, from ``live_first``)
    and the targets; returns the targets and the printed lines."""
    lines: list[str] = []
    add = lines.append
    add("")
    add(
        f"Live benchmark: /ws at real-time pace ({FRAME_S * 1000:.0f} ms frames), "
        f"daphne + {meta.get('workers') or workers_label()} (concurrency 1 each) + 1 keyword "
        "worker (embedded)"
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
        for worker, tasks in summary["worker_tasks"].items():
            seconds = sum(t["seconds"] for t in tasks.values())
            add(
                f"  {worker} worker: "
                + (
                    ", ".join(
                        f"{name} {int(t['count'])}x {t['seconds']:.1f} s"
                        for name, t in tasks.items()
                    )
                    or "no tasks"
                )
                + f"; busy {seconds:.0f} s of {summary['wall_s']:.0f} s"
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
    if first is not None:
        lines.extend(live_first_lines(first))
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
    if first is not None:
        target(
            f"live first: final latency p95 with uploads queued <= {MAX_BUSY_RATIO}x idle",
            first["passed"],
            f"{fmt(first['busy_p95'])} s vs {fmt(first['idle_p95'])} s idle, ratio "
            f"{fmt(first['ratio_p95'])} (p50 {fmt(first['busy_p50'])} vs "
            f"{fmt(first['idle_p50'])} s); {first['upload_s_done']:.0f} s of upload audio "
            "transcribed meanwhile"
            + ("" if first["uploads_outlasted_stream"] else "; the uploads ran out early"),
        )
    add(f"load avg before {meta['load_before']}, after {meta['load_after']}")
    print("\n".join(lines), flush=True)
    return {"targets": targets, "printed": lines}
