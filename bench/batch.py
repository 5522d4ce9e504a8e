"""Batch transcription through the platform against plain faster-whisper.

``make bench-batch`` (or ``python -m bench.batch`` with ``DATABASE_URL`` / ``REDIS_URL``
set) runs the Korean and no-speech clips of the shared evaluation set, a long file
built from the Korean clips with silence gaps (each clip twice, in order, 3 s apart) and
``--shuffled`` (3) more of them in other orders with gaps of 1-5 s, through two paths in
one run:

* platform: upload over HTTP to a real daphne, a real Celery worker on queue ``stt``,
  poll the transcript until it is done. Wall time runs from the start of the upload
  to the poll that sees ``done``.
* plain: ``WhisperModel.transcribe(path, language="ko", beam_size=..., vad_filter=True)``
  in this process, with the same model, device, compute type and thread count, all
  segments consumed (audio decoding included).

and, unless ``--no-engine``, a third, in-process run of the platform's own engine
functions (decode, VAD, batched Whisper, hallucination filter) without HTTP, Celery or
the database, timed per stage, to show where the platform's time goes.

Nothing of the bench runs at the same time as a timed run: for each file the paths take
turns. Other people's processes may, on a small shared machine: before each timed run
the bench waits (up to ``--quiet-wait`` s) for the CPU to be idle, measures the CPU that
other processes use during the run and flags runs it inflated. ``--repeat N`` runs each
file N times per path and reports the median run (``--stat min``: the fastest).

The platform gets a database of its own (``stt_bench``, dropped at the end), its own
Redis database number (so no other worker on the server takes its jobs) and a
temporary data folder for the uploads. Results are printed and saved as JSON under
``bench/results/``. Exit status is 0 whether targets pass or not; it is a benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform as platform_info
import random
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import fmt, free_port, pct, raise_interrupt, wait_until_quiet
from bench.harness import (
    children_pids,
    drop_database,
    log_tail,
    open_database,
    prepare_environment,
    server_name,
    setup_django,
    start_process,
    stop_all,
    stop_process,
)
from workers.launch import web_command, worker_command

REPO_ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or REPO_ROOT.parent / "shared" / "eval")
RESULTS_DIR = REPO_ROOT / "bench" / "results"
WARMUP_CLIP = "ko_picovoice_leopard_test_ko"
LONG_ID = "long_ko_x2_gaps"
# Gaps the shuffled long files draw from, seconds.
SHUFFLED_GAPS_S = (1.0, 2.0, 3.0, 5.0)

# Targets of the issue, for this machine.
MAX_SINGLE_RATIO = 1.15

# --- what is measured ----------------------------------------------------------------


@dataclass
class BenchFile:
    id: str
    path: Path
    kind: str  # "ko" (single Korean clip), "none" (no speech) or "long"
    reference: str  # reference_nospace; "" for no-speech
    duration: float
    runs: dict[str, list[dict]] = field(default_factory=dict)


def score(reference: str, hypothesis: str) -> dict:
    """Edits and reference length, as-is and with Arabic numerals read as Sino-Korean."""
    from bench.cer import edit_distance, normalise

    ref = normalise(reference)
    result = {"ref_chars": len(ref)}
    for key, numerals in (("asis", False), ("numerals", True)):
        hyp = normalise(hypothesis, numerals=numerals)
        result[f"edits_{key}"] = edit_distance(ref, hyp) if ref else len(hyp)
        result[f"cer_{key}"] = result[f"edits_{key}"] / len(ref) if ref else None
    return result


def describe(text: str, segments: int) -> dict:
    return {"text": text, "segments": segments, "words": len(text.split())}


def cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = p.cpu_times()
                total += times.user + times.system
    return total


def self_cpu() -> float:
    times = os.times()
    return times.user + times.system


def busy_cpu() -> float:
    """CPU seconds spent by the whole machine so far, idle and I/O wait excluded."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def own_cpu() -> float:
    """CPU seconds of this process and every process it started (daphne, the worker)."""
    return self_cpu() + cpu_seconds(children_pids())


# --- stage timing of the in-process paths ------------------------------------------------


class StageTimer:
    """Seconds and call counts per stage. The in-process paths run one at a time, so one
    timer serves both: reset before a run, read after it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def reset(self) -> None:
        self.seconds, self.counts = {}, {}

    def wrap(self, name: str, fn, count=None):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
                self.counts[name] = self.counts.get(name, 0) + (
                    count(*args, **kwargs) if count else 1
                )

        return timed

    def result(self) -> dict:
        out = {f"{k}_s": v for k, v in self.seconds.items()}
        out.update({f"{k}_calls": v for k, v in self.counts.items()})
        return out


STAGES = StageTimer()


class _Forward:
    """Forwards every attribute to the wrapped object except the ones set here."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _TimedFeatures(_Forward):
    def __init__(self, inner) -> None:
        super().__init__(inner)
        self._call = STAGES.wrap("features", inner.__call__)

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)


def instrument(model) -> None:
    """Time the encoder (counting 30 s windows), the decoder (counting calls, temperature
    fallbacks included) and the log-mel features of a faster-whisper ``WhisperModel``.
    The wrappers cost microseconds per call; the models are otherwise untouched."""
    if isinstance(model.model, _Forward):
        return
    ct2 = _Forward(model.model)
    ct2.encode = STAGES.wrap("encoder", model.model.encode, count=lambda f, **_: f.shape[0])
    ct2.generate = STAGES.wrap("decoder", model.model.generate)
    model.model = ct2
    model.feature_extractor = _TimedFeatures(model.feature_extractor)


def instrument_plain_io() -> None:
    """Audio decoding and VAD inside plain ``WhisperModel.transcribe``."""
    import faster_whisper.transcribe as fwt

    if getattr(fwt.decode_audio, "_bench", False):
        return
    fwt.decode_audio = STAGES.wrap("decode", fwt.decode_audio)
    fwt.get_speech_timestamps = STAGES.wrap("vad", fwt.get_speech_timestamps)
    fwt.decode_audio._bench = True


# --- the three paths ------------------------------------------------------------------


def bench_credentials() -> dict[str, str]:
    """Headers of an API token for a user of the bench database (uploads need a login)."""
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username="bench")
    try:
        from rest_framework.authtoken.models import Token
    except (ImportError, RuntimeError):  # a platform without API tokens: uploads are open
        return {}
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


class Platform:
    """daphne + one stt worker on the bench database; files go in over HTTP."""

    def __init__(self, workdir: Path, redis_url: str, poll_s: float, poll_max_s: float) -> None:
        import httpx
        import redis

        from workers.heartbeat import KEY_PREFIX

        self.poll_s, self.poll_max_s = poll_s, poll_max_s
        self.transcript_ids: list[str] = []
        self.redis = redis.Redis.from_url(redis_url)
        others = [k.decode() for k in self.redis.scan_iter(match=KEY_PREFIX + "*")]
        if others:
            print(f"warning: other workers beat in the bench's Redis database: {others}")
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.web = start_process(web_command("127.0.0.1", port), workdir / "web.log")
        self.worker_name = f"stt-bench-{uuid.uuid4().hex[:8]}"
        # The worker as workers/launch.py starts it in production (one process, prefork).
        self.worker = start_process(
            [
                *worker_command("stt", f"{self.worker_name}@%h"),
                "--without-mingle",
                "--without-gossip",
            ],
            workdir / "worker.log",
        )
        self.client = httpx.Client(timeout=120, headers=bench_credentials())
        deadline = time.monotonic() + 120
        web_up = worker_up = False
        while time.monotonic() < deadline and not (web_up and worker_up):
            for process, what in ((self.web, "daphne"), (self.worker, "worker")):
                if process.poll() is not None:
                    raise RuntimeError(f"{what} exited:\n{log_tail(process.log_path)}")
            if not web_up:
                with contextlib.suppress(httpx.HTTPError):
                    self.client.get(self.base + "/api/config", timeout=5)
                    web_up = True
            if not worker_up:
                worker_up = any(self.redis.scan_iter(match=f"{KEY_PREFIX}{self.worker_name}@*"))
            time.sleep(0.2)
        if not (web_up and worker_up):
            raise RuntimeError(
                f"platform not up in 120 s (web {web_up}, worker {worker_up}):\n"
                f"{log_tail(self.worker.log_path)}"
            )

    def transcribe(self, path: Path) -> dict:
        cpu_before = cpu_seconds([self.worker.pid])
        web_cpu_before = cpu_seconds([self.web.pid])
        wall_start = time.time()
        started = time.perf_counter()
        with path.open("rb") as handle:
            response = self.client.post(
                self.base + "/api/transcripts/",
                files={"file": (path.name, handle, "application/octet-stream")},
                data={"language": "ko", "title": f"bench {path.name}"},
            )
        upload_s = time.perf_counter() - started
        if response.status_code != 202:
            raise RuntimeError(f"upload of {path.name}: {response.status_code} {response.text}")
        url = self.base + response.json()["url"]
        self.transcript_ids.append(response.json()["id"])
        polls = 0
        while True:
            body = self.client.get(url).json()
            polls += 1
            if body["status"] in ("done", "failed"):
                break
            if self.worker.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{log_tail(self.worker.log_path)}")
            if time.perf_counter() - started > 3600:
                raise RuntimeError(f"{path.name} still {body['status']} after an hour")
            # Every poll costs the web process CPU that the worker would use on a small
            # machine, so the interval grows with the wait (5% of it, between the bounds).
            elapsed = time.perf_counter() - started
            time.sleep(min(self.poll_max_s, max(self.poll_s, 0.05 * elapsed)))
        wall_s = time.perf_counter() - started
        wall_end = wall_start + wall_s

        def epoch(stamp):
            return dt.datetime.fromisoformat(stamp).timestamp() if stamp else None

        created, begun, finished = (
            epoch(body["created_at"]),
            epoch(body["started_at"]),
            epoch(body["finished_at"]),
        )
        text = " ".join(s["text"] for s in body.get("segments", []))
        run = {
            "wall_s": wall_s,
            "status": body["status"],
            "error": body.get("error", ""),
            "request_s": upload_s,
            # created_at is stamped when the row is inserted, after the body was received
            # and probed; started_at when the worker claims it; finished_at when it is done.
            "to_row_s": created - wall_start if created else None,
            "queue_s": begun - created if begun and created else None,
            "processing_s": finished - begun if finished and begun else None,
            "poll_lag_s": wall_end - finished if finished else None,
            "polls": polls,
            "worker_cpu_s": cpu_seconds([self.worker.pid]) - cpu_before,
            "web_cpu_s": cpu_seconds([self.web.pid]) - web_cpu_before,
            **describe(text, len(body.get("segments", []))),
        }
        return run

    def remove_leftovers(self) -> None:
        """Take this run's follow-up keyword jobs out of Redis: no keyword worker runs here,
        and a later one would look for transcripts in a database that is gone."""
        if not self.transcript_ids:
            return
        ids = set(self.transcript_ids)
        removed = 0
        for key in self.redis.scan_iter(match="keywords*"):
            if self.redis.type(key) != b"list":
                continue
            for raw in self.redis.lrange(key, 0, -1):
                try:
                    headers = json.loads(raw).get("headers", {})
                except ValueError:
                    continue
                if any(i in str(headers.get("argsrepr", "")) for i in ids):
                    removed += self.redis.lrem(key, 1, raw)
        if removed:
            print(f"removed {removed} queued keyword job(s) of this run from Redis")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        stop_process(self.worker)
        stop_process(self.web)


class Plain:
    """Bare faster-whisper, as a user of the library would call it."""

    def __init__(self) -> None:
        from django.conf import settings
        from faster_whisper import WhisperModel

        self.beam_size = settings.WHISPER_BEAM_SIZE
        # Same threads as the worker's model (WHISPER_CPU_THREADS, 0: CTranslate2's default).
        self.model = WhisperModel(
            settings.WHISPER_MODEL,
            device="cpu",
            compute_type="int8",
            cpu_threads=settings.WHISPER_CPU_THREADS,
        )
        instrument(self.model)
        instrument_plain_io()

    def transcribe(self, path: Path) -> dict:
        STAGES.reset()
        cpu_before = self_cpu()
        started = time.perf_counter()
        segments, _info = self.model.transcribe(
            str(path), language="ko", beam_size=self.beam_size, vad_filter=True
        )
        segments = list(segments)
        wall_s = time.perf_counter() - started
        text = " ".join(s.text.strip() for s in segments)
        return {
            "wall_s": wall_s,
            "status": "done",
            "cpu_s": self_cpu() - cpu_before,
            **STAGES.result(),
            **describe(text, len(segments)),
        }


class Engine:
    """The worker's engine functions in this process, timed per stage (no HTTP, Celery, DB)."""

    def __init__(self) -> None:
        from transcription import engine

        instrument(engine.get_model())

    def transcribe(self, path: Path) -> dict:
        from transcription import engine
        from transcription.audio import decode_audio
        from transcription.hallucination import filter_segments

        STAGES.reset()
        cpu_before = self_cpu()
        t0 = time.perf_counter()
        audio = decode_audio(path)
        t1 = time.perf_counter()
        regions = engine.speech_regions(audio)
        t2 = time.perf_counter()
        kept = []
        for batch in engine.transcribe_regions(audio, regions, "ko"):
            kept += filter_segments(batch.segments, speech_spans=regions)
        t3 = time.perf_counter()
        text = " ".join(s.text for s in kept)
        return {
            "wall_s": t3 - t0,
            "status": "done",
            "decode_s": t1 - t0,
            "vad_s": t2 - t1,
            "whisper_s": t3 - t2,
            "utterances": len(regions),
            "cpu_s": self_cpu() - cpu_before,
            **STAGES.result(),
            **describe(text, len(kept)),
        }


# --- files -----------------------------------------------------------------------------


def load_files(
    workdir: Path, copies: int, gap_s: float, shuffled: int = 0
) -> tuple[list[BenchFile], Path]:
    """The clips, the long file (every Korean clip ``copies`` times in order, ``gap_s`` apart)
    and ``shuffled`` more long files of the same clips in other orders and gaps."""
    import wave

    from tests.audio_files import long_file_with_gaps

    manifest_path = EVAL_DIR / "manifest.jsonl"
    if not manifest_path.exists():
        raise SystemExit(f"evaluation set not found at {EVAL_DIR}; set EVAL_DIR")
    entries = [json.loads(line) for line in manifest_path.read_text().splitlines() if line.strip()]
    files = []
    for entry in entries:
        if entry["lang"] not in ("ko", "none"):
            continue
        files.append(
            BenchFile(
                id=entry["id"],
                path=EVAL_DIR / entry["file"],
                kind=entry["lang"],
                reference=entry["reference_nospace"] if entry["lang"] == "ko" else "",
                duration=entry["duration_s"],
            )
        )
    korean = [f for f in files if f.kind == "ko"]
    # One arrangement is a handful of words: 1 CER point of the long file is five characters,
    # and where a 30 s window happens to fall decides a few. More orders and gaps (fixed by
    # their seed, so every run builds the same files) make the comparison mean something.
    arrangements = [(LONG_ID, korean * copies, gap_s)]
    for seed in range(1, shuffled + 1):
        rng = random.Random(seed)
        order = korean * copies
        rng.shuffle(order)
        arrangements.append((f"long_ko_mix{seed}", order, rng.choice(SHUFFLED_GAPS_S)))
    for file_id, order, gap in arrangements:
        long_path, _spans = long_file_with_gaps(
            workdir / f"{file_id}.wav", [f.path for f in order], gap_s=gap, lead_s=1.0
        )
        with wave.open(str(long_path)) as wav:
            long_duration = wav.getnframes() / wav.getframerate()
        files.append(
            BenchFile(
                id=file_id,
                path=long_path,
                kind="long",
                reference="".join(f.reference for f in order),
                duration=long_duration,
            )
        )
    warmup = next(f.path for f in korean if f.id == WARMUP_CLIP)
    return files, warmup


# --- the run -----------------------------------------------------------------------------


def disturbed(run: dict) -> bool:
    """Other processes used a noticeable share of the CPU while this run was timed."""
    return run.get("other_cpu_s", 0.0) > max(0.25, 0.1 * run["wall_s"])


def representative(runs: list[dict], statistic: str) -> dict:
    """The run whose wall time is the statistic (the lower median for an even count), so
    that its breakdown, CPU figures and text all come from that one run."""
    done = [r for r in runs if r["status"] == "done"] or runs
    ordered = sorted(done, key=lambda r: r["wall_s"])
    return ordered[0] if statistic == "min" else ordered[(len(ordered) - 1) // 2]


def summarise_file(item: BenchFile, statistic: str) -> dict:
    out = {"id": item.id, "kind": item.kind, "duration_s": round(item.duration, 3)}
    for path, runs in item.runs.items():
        chosen = representative(runs, statistic)
        entry = {
            key: value
            for key, value in chosen.items()
            if key not in ("text", "segments", "words", "status")
        }
        entry.update(
            status="done" if all(r["status"] == "done" for r in runs) else "failed",
            segments=chosen["segments"],
            words=chosen["words"],
            text=chosen["text"],
            disturbed=disturbed(chosen),
            disturbed_runs=sum(disturbed(r) for r in runs),
            wall_s_all=[round(r["wall_s"], 3) for r in runs],
        )
        if item.kind != "none" and chosen["status"] == "done":
            entry.update(score(item.reference, chosen["text"]))
        out[path] = entry
    if "platform" in out and "plain" in out and out["plain"]["wall_s"]:
        out["ratio"] = out["platform"]["wall_s"] / out["plain"]["wall_s"]
    return out


def report(summary: list[dict], paths: list[str], meta: dict) -> dict:
    lines: list[str] = []
    add = lines.append
    add("")
    add(
        f"Batch benchmark: platform (upload -> done, real daphne + worker) vs plain faster-whisper; "
        f"times are the {meta['statistic']} of {meta['repeat']} run(s), in seconds"
    )
    add(
        f"model {meta['model']} | cpu int8 | beam {meta['beam_size']} | cpu_threads "
        f"{meta['cpu_threads']} (0: CTranslate2 default) | {meta['cores']} cores | "
        f"stt batch size {meta['stt_batch_size']} | poll every {meta['poll_s']}-{meta['poll_max_s']} s | "
        f"load avg before {meta['load_before']}"
    )
    add("CER: character-level on reference_nospace; CER# = Arabic numerals read as Sino-Korean")
    add("")
    header = (
        f"{'file':<34} {'audio':>6} {'platf':>7} {'plain':>7} {'ratio':>6}  "
        f"{'CER plat':>8} {'CER pln':>8} {'CER# plat':>9} {'CER# pln':>8}  {'segs p/pl':>9} "
        f"{'other cpu p/pl':>14}"
    )
    add(header)
    add("-" * len(header))
    for row in summary:
        p, q = row.get("platform", {}), row.get("plain", {})
        add(
            f"{row['id'][:34]:<34} {row['duration_s']:>6.1f} {fmt(p.get('wall_s')):>7} "
            f"{fmt(q.get('wall_s')):>7} {fmt(row.get('ratio')):>6}  "
            f"{pct(p.get('cer_asis')):>8} {pct(q.get('cer_asis')):>8} "
            f"{pct(p.get('cer_numerals')):>9} {pct(q.get('cer_numerals')):>8}  "
            f"{str(p.get('segments', '-')) + '/' + str(q.get('segments', '-')):>9} "
            f"{fmt(p.get('other_cpu_s')) + '/' + fmt(q.get('other_cpu_s')):>14}"
            + (" *" if p.get("disturbed") or q.get("disturbed") else "")
            + ("" if p.get("status", "done") == "done" else f"  PLATFORM {p.get('status')}")
        )

    add(
        "other cpu: CPU seconds used by processes outside the bench while the run was timed "
        "(* = more than 0.25 s and 10% of the reported run: its time is inflated by other load)"
    )
    add("")
    add("Where the platform's time goes (seconds, from the Transcript row's timestamps):")
    add(
        "  to_row = upload + probe until the row exists; queue = row -> worker claims it "
        "(commit, broker, worker); processing = claim -> done (decode, VAD, Whisper, DB); "
        "poll = done -> client sees it"
    )
    has_engine = "engine" in paths
    header = (
        f"{'file':<34} {'platf':>6} {'to_row':>6} {'queue':>6} {'proc':>6} {'poll':>5} "
        f"{'wrk cpu':>7} {'web cpu':>7}" + (f" {'engine':>6}" if has_engine else "")
    )
    add(header)
    add("-" * len(header))
    for row in summary:
        p, e = row.get("platform", {}), row.get("engine", {})
        add(
            f"{row['id'][:34]:<34} {fmt(p.get('wall_s')):>6} {fmt(p.get('to_row_s')):>6} "
            f"{fmt(p.get('queue_s')):>6} {fmt(p.get('processing_s')):>6} "
            f"{fmt(p.get('poll_lag_s')):>5} {fmt(p.get('worker_cpu_s')):>7} "
            f"{fmt(p.get('web_cpu_s')):>7}" + (f" {fmt(e.get('wall_s')):>6}" if has_engine else "")
        )
    add(
        "  engine = the worker's own functions (decode, VAD, batched Whisper, filter) run in "
        "this process without HTTP, Celery or the database"
    )

    add("")
    add(
        "Inside the in-process runs (seconds; enc = encoder, n = 30 s windows encoded; "
        "dec = decoder, n = generate calls incl. temperature fallbacks):"
    )
    inner = [path for path in ("engine", "plain") if path in paths]
    header = f"{'file':<34}" + "".join(
        f" | {path:<6} {'total':>6} {'decode':>6} {'vad':>5} {'feat':>5} {'enc':>5} {'n':>3} "
        f"{'dec':>6} {'n':>3} {'cpu':>6}"
        for path in inner
    )
    add(header)
    add("-" * len(header))
    for row in summary:
        line = f"{row['id'][:34]:<34}"
        for path in inner:
            r = row.get(path, {})
            line += (
                f" | {'':<6} {fmt(r.get('wall_s')):>6} {fmt(r.get('decode_s')):>6} "
                f"{fmt(r.get('vad_s')):>5} {fmt(r.get('features_s')):>5} "
                f"{fmt(r.get('encoder_s')):>5} {fmt(r.get('encoder_calls'), 'g'):>3} "
                f"{fmt(r.get('decoder_s')):>6} {fmt(r.get('decoder_calls'), 'g'):>3} "
                f"{fmt(r.get('cpu_s')):>6}"
            )
        add(line)

    # Totals.
    def total(kind: str, path: str, key: str = "wall_s") -> float | None:
        values = [r.get(path, {}).get(key) for r in summary if r["kind"] == kind]
        return None if not values or None in values else sum(values)

    def weighted(kinds: tuple[str, ...], path: str, key: str) -> float | None:
        rows = [r.get(path, {}) for r in summary if r["kind"] in kinds]
        if not rows or any(f"edits_{key}" not in r for r in rows):
            return None
        chars = sum(r["ref_chars"] for r in rows)
        return sum(r[f"edits_{key}"] for r in rows) / chars if chars else None

    totals: dict = {}
    add("")
    add("Totals")
    long_rows = [r for r in summary if r["kind"] == "long"]
    kinds = [("ko", "single Korean clips"), ("none", "no-speech clips")]
    if long_rows:
        kinds.append(("long", f"long files ({len(long_rows)})"))
    for kind, label in kinds:
        row = {path: total(kind, path) for path in paths}
        totals[f"time_{kind}"] = row
        ratio = (
            row["platform"] / row["plain"]
            if row.get("platform") is not None and row.get("plain")
            else None
        )
        totals[f"ratio_{kind}"] = ratio
        extra = f", engine {fmt(row.get('engine'))} s" if has_engine else ""
        add(
            f"  time, {label:<20}: platform {fmt(row['platform'])} s, plain "
            f"{fmt(row['plain'])} s, ratio {fmt(ratio, '.3f')}{extra}"
        )
    for kinds, label in ((("ko",), "single Korean clips"), (("long",), "long files")):
        for path in paths:
            cer_asis = weighted(kinds, path, "asis")
            cer_num = weighted(kinds, path, "numerals")
            totals[f"cer_{'_'.join(kinds)}_{path}"] = {"asis": cer_asis, "numerals": cer_num}
            add(
                f"  CER (total edits / total ref chars), {label:<19} {path:<8}: "
                f"{pct(cer_asis)} as-is, {pct(cer_num)} with numerals read"
            )
    for path in paths:
        rows = [r for r in summary if r["kind"] == "none"]
        segs = sum(r.get(path, {}).get("segments", 0) for r in rows)
        words = sum(r.get(path, {}).get("words", 0) for r in rows)
        totals[f"nospeech_{path}"] = {"segments": segs, "words": words}
        add(f"  no-speech clips, {path:<8}: {segs} segment(s), {words} word(s) emitted")
        for r in rows:
            text = r.get(path, {}).get("text")
            if text:
                add(f"      {r['id']}: {text!r}")

    # Targets.
    targets = []

    def target(name: str, ok: bool | None, detail: str) -> None:
        verdict = "PASS" if ok else ("FAIL" if ok is not None else "N/A ")
        targets.append({"target": name, "result": verdict.strip(), "detail": detail})
        add(f"  {verdict}  {name}: {detail}")

    add("")
    add("Targets")
    ratio = totals.get("ratio_ko")
    target(
        f"single clips: total time ratio platform/plain <= {MAX_SINGLE_RATIO}",
        None if ratio is None else ratio <= MAX_SINGLE_RATIO,
        f"{fmt(ratio, '.3f')}",
    )
    if long_rows:
        plat, plain = totals["time_long"].get("platform"), totals["time_long"].get("plain")
        target(
            "long files: platform faster than plain sequential faster-whisper",
            None if plat is None or plain is None else plat < plain,
            f"platform {fmt(plat)} s vs plain {fmt(plain)} s in total "
            f"(ratio {fmt(totals['ratio_long'], '.3f')}; per file "
            + ", ".join(f"{fmt(r.get('ratio'), '.2f')}" for r in long_rows)
            + ")",
        )
    for kinds, label in ((("ko",), "single clips"), (("long",), "long files")):
        key = "_".join(kinds)
        plat = totals[f"cer_{key}_platform"]
        plain = totals[f"cer_{key}_plain"]
        ok = None
        if None not in (plat["asis"], plain["asis"], plat["numerals"], plain["numerals"]):
            ok = plat["asis"] <= plain["asis"] and plat["numerals"] <= plain["numerals"]
        target(
            f"{label}: platform CER not worse than plain",
            ok,
            f"as-is {pct(plat['asis'])} vs {pct(plain['asis'])}, "
            f"with numerals {pct(plat['numerals'])} vs {pct(plain['numerals'])}",
        )
    ns = totals["nospeech_platform"]
    target(
        "no-speech clips: platform emits zero segments",
        ns["segments"] == 0 if any(r["kind"] == "none" for r in summary) else None,
        f"{ns['segments']} segment(s), {ns['words']} word(s) (plain: "
        f"{totals['nospeech_plain']['segments']} segment(s), "
        f"{totals['nospeech_plain']['words']} word(s))",
    )
    noisy = [
        f"{r['id']} ({path})" for r in summary for path in paths if r.get(path, {}).get("disturbed")
    ]
    if noisy:
        add(f"  NOTE  reported runs inflated by other load on the machine: {', '.join(noisy)}")
    failed = [r["id"] for r in summary if r.get("platform", {}).get("status") != "done"]
    if failed:
        add(f"  FAIL  platform runs that did not end done: {failed}")
    add(f"load avg after: {meta.get('load_after')}")
    print("\n".join(lines), flush=True)
    return {"totals": totals, "targets": targets, "printed": lines}


def run(args: argparse.Namespace) -> int:
    # Uploads go to the temporary data folder, not into the platform's media; the bench
    # uploads more files per hour than a person may.
    env = prepare_environment("bench-batch-", args.redis_db, UPLOAD_RATE_LIMIT="1000000/hour")
    base_db, redis_url, workdir = env.base_database_url, env.redis_url, env.workdir
    platform = None
    database_made = False
    started_at = dt.datetime.now()
    try:
        open_database(base_db, args.db_name, fresh=True, make_target="bench-batch")
        database_made = True
        print(f"database {args.db_name} on {server_name(base_db, 5432)} (fresh, migrating)")
        setup_django(("httpx", "httpcore", "faster_whisper"))
        from django.conf import settings

        print(
            f"Redis {server_name(redis_url, 6379)}, database {args.redis_db} "
            "(the bench's own, so that no other worker takes its jobs)"
        )

        files, warmup = load_files(workdir, args.long_copies, args.gap, args.shuffled)
        if args.only:
            wanted = [w.strip() for w in args.only.split(",") if w.strip()]
            files = [f for f in files if any(w in f.id for w in wanted)]
        print(
            f"{len(files)} files: "
            + ", ".join(f"{f.id} ({f.duration:.1f} s)" for f in files)
            + f"; working in {workdir}"
        )

        print("starting daphne and an stt worker ...", flush=True)
        platform = Platform(workdir, redis_url, args.poll, max(args.poll, args.poll_max))
        paths: dict[str, object] = {"platform": platform}
        print("loading the plain model ...", flush=True)
        paths["plain"] = Plain()
        if not args.no_engine:
            paths["engine"] = Engine()
        # Warm-up, not counted: the first job of each path pays for lazy loading and caches.
        for name, runner in paths.items():
            result = runner.transcribe(warmup)
            print(f"warm-up {name}: {result['wall_s']:.2f} s, {result['text']!r}", flush=True)

        load_before = [round(x, 2) for x in os.getloadavg()]
        for item in files:
            for rep in range(args.repeat):
                # The paths take turns; none runs while another is timed.
                for name, runner in paths.items():
                    waited = wait_until_quiet(args.quiet_wait) if args.quiet_wait else 0.0
                    busy_before, own_before = busy_cpu(), own_cpu()
                    result = runner.transcribe(item.path)
                    # CPU the rest of the machine used meanwhile (PostgreSQL and Redis
                    # serving the platform count here too, but they use little).
                    result["other_cpu_s"] = max(
                        0.0, (busy_cpu() - busy_before) - (own_cpu() - own_before)
                    )
                    result["quiet_wait_s"] = waited
                    item.runs.setdefault(name, []).append(result)
                    print(
                        f"  {item.id} [{rep + 1}/{args.repeat}] {name:<8} "
                        f"{result['wall_s']:7.2f} s  {result['segments']} seg  "
                        f"other cpu {result['other_cpu_s']:.2f} s  {result['text'][:50]!r}",
                        flush=True,
                    )
        load_after = [round(x, 2) for x in os.getloadavg()]

        summary = [summarise_file(item, args.stat) for item in files]
        meta = {
            "started_at": started_at.isoformat(timespec="seconds"),
            "statistic": args.stat,
            "repeat": args.repeat,
            "model": settings.WHISPER_MODEL,
            "beam_size": settings.WHISPER_BEAM_SIZE,
            "cpu_threads": settings.WHISPER_CPU_THREADS,
            "stt_batch_size": settings.STT_BATCH_SIZE or 4,
            "vad": {
                "threshold": settings.VAD_THRESHOLD,
                "min_silence_ms": settings.VAD_MIN_SILENCE_MS,
                "speech_pad_ms": settings.VAD_SPEECH_PAD_MS,
                "min_speech_ms": settings.VAD_MIN_SPEECH_MS,
                "max_utterance_s": settings.VAD_MAX_UTTERANCE_S,
            },
            "cores": os.cpu_count(),
            "host": platform_info.node(),
            "poll_s": args.poll,
            "poll_max_s": max(args.poll, args.poll_max),
            "long_file": {"copies": args.long_copies, "gap_s": args.gap, "shuffled": args.shuffled},
            "load_before": load_before,
            "load_after": load_after,
        }
        outcome = report(summary, list(paths), meta)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = started_at.strftime("%Y%m%d-%H%M%S")
        out = Path(args.output) if args.output else RESULTS_DIR / f"batch-{stamp}.json"
        runs = {item.id: item.runs for item in files}
        out.write_text(
            json.dumps(
                {"meta": meta, "files": summary, "runs": runs, **outcome},
                ensure_ascii=False,
                indent=2,
            )
        )
        for process, name in ((platform.worker, "worker"), (platform.web, "web")):
            shutil.copy(process.log_path, out.with_suffix(f".{name}.log"))
        print(f"\nresults saved to {out}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the platform", file=sys.stderr)
        return 130
    finally:
        if platform is not None:
            platform.close()
            with contextlib.suppress(Exception):
                platform.remove_leftovers()
        stop_all()
        if database_made and not args.keep_db:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            try:
                drop_database(base_db, args.db_name)
            except Exception as exc:  # noqa: BLE001 - leave a note, not a traceback
                print(f"could not drop database {args.db_name}: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="timed runs per file and path (see --stat)"
    )
    parser.add_argument(
        "--stat",
        choices=("median", "min"),
        default="median",
        help="which of the repeated runs to report (min suits a machine shared with others)",
    )
    parser.add_argument("--poll", type=float, default=0.1, help="shortest time between polls, s")
    parser.add_argument(
        "--poll-max", type=float, default=0.5, help="longest time between polls (5%% of the wait)"
    )
    parser.add_argument("--db-name", default="stt_bench", help="throw-away database to use")
    parser.add_argument("--keep-db", action="store_true", help="do not drop it at the end")
    parser.add_argument(
        "--redis-db", type=int, default=13, help="Redis database number for the bench's queues"
    )
    parser.add_argument("--long-copies", type=int, default=2, help="times each clip is in it")
    parser.add_argument("--gap", type=float, default=3.0, help="silence between clips, seconds")
    parser.add_argument(
        "--shuffled",
        type=int,
        default=3,
        help="more long files of the same clips in other orders, with gaps of 1-5 s",
    )
    parser.add_argument(
        "--no-engine", action="store_true", help="skip the in-process per-stage engine runs"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each timed run wait up to this many seconds for the machine to be idle "
        "(0: do not wait)",
    )
    parser.add_argument(
        "--only", help="comma-separated parts of file ids to run (default: all), e.g. long,0294"
    )
    parser.add_argument("--output", help="JSON file (default bench/results/batch-<time>.json)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGHUP, raise_interrupt)
    try:
        return run(args)
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
