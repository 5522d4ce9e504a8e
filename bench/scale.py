"""How cost grows: wall time and peak memory of the web and worker processes as work doubles.

``make bench-scale`` (or ``python -m bench.scale`` with ``DATABASE_URL`` / ``REDIS_URL`` set)
measures three dimensions on this machine, each a few steps of growing work:

* uploads: 1, 2, 4, 8 people upload a 2-minute Korean file at the same moment (the eval clips
  with 4 s silences, as ``bench.live`` builds its uploads); wall time from the first POST to
  the last transcript ``done`` (the workers' own ``finished_at``), mean processing per file
  (claimed to done), the workers' CPU time;
* live: 1, 2, 4 clients stream the ``bench.live`` timeline (the Korean clips, then the
  no-speech clips, about two minutes) through ``/ws`` at real-time pace; final latency p50 and
  p95 (end of speech to the ``final``, pooled over the clients) and the session's wall time
  per stream (first frame to the last final);
* search: a history of 10k, 100k and 1M Korean segments (``bench.search.fill``, 20 per
  transcript), then ``bench.search.measure``'s common, medium and rare queries on
  ``/api/segments/?q=`` and ``/api/transcripts/?q=`` over HTTP through a fresh daphne;
  latency p50 and p95 pooled per endpoint, the segment table's size with its indexes.

Throughout each step the resident memory (RSS) of the web process and of every worker, each
with all its children (a Celery worker's pool child holds the model), is sampled every
``--sample-s`` seconds; the peaks are reported, the web's and the workers' (summed at each
sample) apart. The platform is ``bench.live``'s: daphne, the launcher's speech workers for one
device (uploads on ``stt_live,stt`` at nice 10, live finals on ``stt_live``, partials at nice
19) and a keyword worker, warmed up (each has loaded its model) before the first step.

Every step waits (up to ``--quiet-wait`` s) for an idle machine first and records the CPU
other processes used while it ran; the report names the steps where the machine was busy.
Each figure is printed with its ratio to the previous step and a reading per dimension (flat,
slower than the work, linear, worse than linear; ``bench/scale_report.py``, tested in
``tests/test_bench_scale_report.py``). ``--quick`` runs small steps as a smoke test;
``--only search`` (or ``uploads``, ``live``) runs one dimension.

The bench uses a database of its own (``<DATABASE_URL's database>_bench_scale``, created fresh
and dropped at the end) and a Redis database number of its own (``--redis-db``, 11).
Results are saved as JSON under ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform as platform_info
import shutil
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import raise_interrupt, wait_until_quiet
from bench.harness import (
    drop_bench_database,
    open_database,
    prepare_environment,
    server_name,
    stop_all,
    stop_process,
)
from bench.scale_report import report

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
MIB = 1 << 20
USER_PREFIX = "bench-scale-"
WARMUP_CLIP = "ko_picovoice_leopard_test_ko"
PLATFORM_QUEUES = ("stt", "stt_live", "stt_partial", "keywords")

FULL = {
    "uploads": [1, 2, 4, 8],
    "streams": [1, 2, 4],
    "history": [10_000, 100_000, 1_000_000],
    "upload_s": 120.0,
    "rounds": 20,
    "warmup": 6.0,
    "quiet_wait": 60.0,
}
# A smoke run: every code path, in a few minutes.
QUICK = {
    "uploads": [1, 2],
    "streams": [1, 2],
    "history": [2_000, 4_000],
    "upload_s": 30.0,
    "rounds": 3,
    "warmup": 1.0,
    "quiet_wait": 10.0,
}


# --- memory ---------------------------------------------------------------------------


class MemorySampler:
    """Peak resident memory of groups of processes, each process with all its descendants,
    sampled in a thread every ``interval`` seconds while the ``with`` block runs.

    ``combined`` names sums of groups taken at the same sample (the workers together), so a
    combined peak is a moment's total, not the sum of peaks reached at different times.
    Which processes belong to a tree is looked up every ``refresh`` seconds (and whenever one
    is gone): walking /proc for children costs milliseconds, reading an RSS microseconds, and
    on two cores the sampler must not take CPU from what it measures."""

    def __init__(
        self,
        groups: dict[str, list[int]],
        combined: dict[str, list[str]] | None = None,
        interval: float = 0.25,
        refresh: float = 2.0,
    ) -> None:
        self.groups = groups
        self.combined = combined or {}
        self.interval = interval
        self.refresh = refresh
        names = [*groups, *self.combined]
        self.peaks = dict.fromkeys(names, 0)
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.samples = 0
        self._trees: dict[str, list] = {}
        self._found = -float("inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _find_trees(self) -> None:
        import psutil

        children: dict[int, list[int]] = {}
        for proc in psutil.process_iter(["pid", "ppid"]):
            children.setdefault(proc.info["ppid"], []).append(proc.info["pid"])
        trees = {}
        for name, roots in self.groups.items():
            pids, todo = [], list(roots)
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo += children.get(pid, [])
            procs = []
            for pid in pids:
                with contextlib.suppress(psutil.NoSuchProcess):
                    procs.append(psutil.Process(pid))
            trees[name] = procs
        self._trees = trees
        self._found = time.monotonic()

    def _rss(self, name: str) -> int | None:
        """The tree's RSS, or None when a process of it is gone (the tree must be found again)."""
        import psutil

        total = 0
        for proc in self._trees.get(name, []):
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                return None
            except psutil.AccessDenied:
                continue
        return total

    def sample(self) -> dict[str, int]:
        if time.monotonic() - self._found > self.refresh:
            self._find_trees()
        now = {}
        for name in self.groups:
            value = self._rss(name)
            if value is None:
                self._find_trees()
                value = self._rss(name) or 0
            now[name] = value
        for name, members in self.combined.items():
            now[name] = sum(now[m] for m in members)
        for name, value in now.items():
            self.peaks[name] = max(self.peaks[name], value)
        if not self.first:
            self.first = dict(now)
        self.last = now
        self.samples += 1
        return now

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def peak_mib(self, name: str) -> float:
        return self.peaks[name] / MIB

    def summary(self) -> dict:
        return {
            "samples": self.samples,
            "peak_mib": {k: round(v / MIB, 1) for k, v in self.peaks.items()},
            "start_mib": {k: round(v / MIB, 1) for k, v in self.first.items()},
            "end_mib": {k: round(v / MIB, 1) for k, v in self.last.items()},
        }


# --- measuring one step ------------------------------------------------------------------


SERVICES = ("postgres", "redis-server")


def services_cpu() -> float:
    """CPU seconds of PostgreSQL and Redis so far, backends that have exited included (the
    postmaster has reaped them: its children's times). They serve the bench's platform,
    whose database work is most of a search, so they are not "other processes"; on a
    shared machine they serve other people too, which the figure cannot tell apart."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["name", "ppid"]):
        if proc.info["name"] not in SERVICES:
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            total += times.user + times.system
            parent = psutil.Process(proc.info["ppid"]).name() if proc.info["ppid"] else ""
            if parent not in SERVICES:  # a server's main process: add what it reaped
                total += times.children_user + times.children_system
    return total


class Step:
    """What every step records around its work: the wait for a quiet machine, the CPU
    that PostgreSQL and Redis and that other processes used meanwhile, and the wall time of
    the whole step."""

    def __init__(self, quiet_wait: float) -> None:
        self.quiet_wait = quiet_wait
        self.waited = wait_until_quiet(quiet_wait) if quiet_wait else 0.0

    def __enter__(self) -> Step:
        from bench.live import machine_busy_cpu, own_cpu

        self._busy, self._own, self._services = machine_busy_cpu(), own_cpu(), services_cpu()
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        from bench.live import machine_busy_cpu, own_cpu

        self.wall_s = time.monotonic() - self._started
        self.services_cpu_s = max(0.0, services_cpu() - self._services)
        own = own_cpu() - self._own
        self.other_cpu_s = max(0.0, machine_busy_cpu() - self._busy - own - self.services_cpu_s)

    def record(self) -> dict:
        return {
            "quiet_wait_s": round(self.waited, 1),
            # wait_until_quiet gives up at quiet_wait; half a sample early counts as given up.
            "quiet_timeout": bool(self.quiet_wait) and self.waited >= self.quiet_wait - 0.6,
            "step_wall_s": round(self.wall_s, 1),
            "db_cpu_s": round(self.services_cpu_s, 1),  # PostgreSQL and Redis
            "other_cpu_s": round(self.other_cpu_s, 1),
        }


def quiet_label(step: Step) -> str:
    if step.quiet_wait and step.waited >= step.quiet_wait - 0.6:
        return f" (machine still busy after {step.waited:.0f} s; measuring anyway)"
    if step.waited > 1:
        return f" (waited {step.waited:.0f} s for a quiet machine)"
    return ""


def platform_sampler(platform, interval: float) -> MemorySampler:
    groups = {"web": [platform.web.pid]}
    groups.update({queue: [worker.pid] for queue, worker in platform.workers.items()})
    return MemorySampler(groups, {"workers": list(platform.workers)}, interval)


def workers_cpu(platform) -> float:
    return sum(platform.worker_cpu(queue) for queue in platform.workers)


def web_cpu(platform) -> float:
    from bench.batch import cpu_seconds

    return cpu_seconds([platform.web.pid])


def drain(platform, timeout: float = 600.0) -> None:
    """Wait until the platform's queues are empty and no upload is queued or running: a
    step must not time the previous step's keyword jobs or leftovers."""
    from django.db import connections

    from transcription.models import Transcript

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = Transcript.objects.filter(
            source=Transcript.Source.UPLOAD, status__in=("queued", "running")
        ).exists()
        connections.close_all()
        if not busy and not platform.queued(PLATFORM_QUEUES):
            return
        time.sleep(0.5)
    print(f"  note: the queues did not drain within {timeout:.0f} s", flush=True)


def check_alive(platform) -> None:
    from bench.harness import log_tail

    for queue, worker in platform.workers.items():
        if worker.poll() is not None:
            raise RuntimeError(f"the {queue} worker exited:\n{log_tail(platform.logs[queue])}")
    if platform.web.poll() is not None:
        raise RuntimeError(f"daphne exited:\n{log_tail(platform.logs['web'])}")


# --- uploads ----------------------------------------------------------------------------


def upload_all(platform, wav: Path, headers: list[dict], title: str) -> tuple[float, list[str]]:
    """POST ``wav`` once per header set, all at the same moment (one thread each, released
    together); returns the wall clock at the release and the transcripts' ids."""
    import httpx

    count = len(headers)
    ids: list[str | None] = [None] * count
    errors: list[str] = []
    barrier = threading.Barrier(count + 1)

    def send(i: int) -> None:
        try:
            with httpx.Client(base_url=platform.base, headers=headers[i], timeout=300) as client:
                client.get("/api/config")  # the connection is open before the release
                barrier.wait()
                with wav.open("rb") as handle:
                    response = client.post(
                        "/api/transcripts/",
                        files={"file": (wav.name, handle, "audio/wav")},
                        data={"language": "ko", "title": f"{title} #{i + 1}"},
                    )
        except (httpx.HTTPError, threading.BrokenBarrierError) as exc:
            errors.append(repr(exc))
            barrier.abort()  # nobody waits for a sender that will not come
            return
        if response.status_code != 202:
            errors.append(f"{response.status_code} {response.text[:300]}")
        else:
            ids[i] = response.json()["id"]

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=120)
    released = time.time()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} upload(s) refused: {errors[0]}")
    return released, [i for i in ids if i]


def wait_done(platform, ids: list[str], timeout: float) -> list[tuple]:
    """Poll the database (not the web: polls would be timed as the web's work) until every
    transcript is done or failed; returns (status, created, started, finished) per id."""
    from django.db import connections

    from transcription.models import Transcript

    deadline = time.monotonic() + timeout
    while True:
        rows = list(
            Transcript.objects.filter(pk__in=ids).values_list(
                "status", "created_at", "started_at", "finished_at"
            )
        )
        connections.close_all()
        if len(rows) == len(ids) and all(r[0] in ("done", "failed") for r in rows):
            return rows
        check_alive(platform)
        if time.monotonic() > deadline:
            raise RuntimeError(f"uploads not done within {timeout:.0f} s: {rows}")
        time.sleep(0.5)


def upload_step(platform, wav: Path, count: int, args: argparse.Namespace) -> dict:
    from bench.live import api_headers

    drain(platform)
    step = Step(args.quiet_wait)
    print(f"uploads: {count} at once{quiet_label(step)}", flush=True)
    headers = [api_headers(f"{USER_PREFIX}{i}") for i in range(count)]
    cpu_before, web_before = workers_cpu(platform), web_cpu(platform)
    with step, platform_sampler(platform, args.sample_s) as memory:
        released, ids = upload_all(platform, wav, headers, f"bench-scale {count}x")
        rows = wait_done(platform, ids, timeout=args.upload_timeout)
    finished = [r[3].timestamp() for r in rows if r[3]]
    processing = [(r[3] - r[2]).total_seconds() for r in rows if r[2] and r[3]]
    queued = [(r[2] - r[1]).total_seconds() for r in rows if r[1] and r[2]]
    result = {
        "uploads": count,
        "failed": sum(r[0] == "failed" for r in rows),
        "wall_s": round(max(finished) - released, 2) if finished else None,
        "processing_mean_s": round(statistics.fmean(processing), 2) if processing else None,
        "audio_s": round(count * args.upload_s, 1),
        "queue_max_s": round(max(queued), 2) if queued else None,
        "worker_cpu_s": round(workers_cpu(platform) - cpu_before, 1),
        "web_cpu_s": round(web_cpu(platform) - web_before, 1),
        "web_peak_mib": round(memory.peak_mib("web"), 1),
        "workers_peak_mib": round(memory.peak_mib("workers"), 1),
        "memory": memory.summary(),
        **step.record(),
    }
    print(
        f"  wall {result['wall_s']} s, processing {result['processing_mean_s']} s per file, "
        f"worker CPU {result['worker_cpu_s']} s, web {result['web_peak_mib']:.0f} MiB, "
        f"workers {result['workers_peak_mib']:.0f} MiB, others' CPU {result['other_cpu_s']} s"
        + (f"; {result['failed']} FAILED" if result["failed"] else ""),
        flush=True,
    )
    return result


# --- live streams --------------------------------------------------------------------------


def live_step(
    platform, entries: list[dict], clip_audio: dict, cookie: str, count: int, args
) -> dict:
    from bench.live import run_level
    from bench.live_report import analyse_client, percentile
    from bench.live_stream import build_stream

    platform.clear_sessions()
    drain(platform)
    step = Step(args.quiet_wait)
    streams = [build_stream(entries, clip_audio, i) for i in range(count)]
    print(f"live: {count} stream(s) x {streams[0].duration:.1f} s{quiet_label(step)}", flush=True)
    cpu_before = workers_cpu(platform)
    with step, platform_sampler(platform, args.sample_s) as memory:
        runs = asyncio.run(
            run_level("127.0.0.1", platform.port, streams, args.drain_timeout, cookie)
        )
    clients = [analyse_client(run) for run in runs]
    latencies = [r["latency_s"] for c in clients for r in c["utterances"] if "latency_s" in r]
    walls = [r.done_wall - r.t0_wall for r in runs if r.complete and r.done_wall]
    result = {
        "streams": count,
        "stream_s": round(streams[0].duration, 1),
        "finals": len(latencies),
        "complete": sum(r.complete for r in runs),
        "errors": [e for c in clients for e in c["errors"]],
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "latency_max_s": max(latencies) if latencies else None,
        "session_wall_s": round(statistics.fmean(walls), 2) if walls else None,
        "session_wall_max_s": round(max(walls), 2) if walls else None,
        "worker_cpu_s": round(workers_cpu(platform) - cpu_before, 1),
        "web_peak_mib": round(memory.peak_mib("web"), 1),
        "workers_peak_mib": round(memory.peak_mib("workers"), 1),
        "memory": memory.summary(),
        **step.record(),
    }
    print(
        f"  {result['finals']} finals, latency p50 {result['latency_p50_s'] or 0:.2f} s, p95 "
        f"{result['latency_p95_s'] or 0:.2f} s, session {result['session_wall_s']} s per "
        f"stream, {result['complete']}/{count} complete, web {result['web_peak_mib']:.0f} MiB, "
        f"workers {result['workers_peak_mib']:.0f} MiB, others' CPU {result['other_cpu_s']} s",
        flush=True,
    )
    return result


# --- search ----------------------------------------------------------------------------------


def segment_table_mib() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('transcription_segment')")
        return cursor.fetchone()[0] / MIB


def search_step(database_url: str, data_dir: str, segments: int, args) -> dict:
    import secrets

    import httpx
    from django.contrib.auth import get_user_model
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from bench.search import USERNAME, fill, measure, start_web, wait_ready

    Path(data_dir).mkdir(parents=True, exist_ok=True)  # daphne's log; no platform made it
    per = args.segments_per_transcript
    transcripts = max(1, segments // per)
    print(
        f"search: filling {transcripts * per:,} segments ({transcripts:,} transcripts)", flush=True
    )
    started = time.perf_counter()
    load = fill(transcripts, per)
    fill_s = time.perf_counter() - started
    size_mib = segment_table_mib()
    user = get_user_model().objects.get(username=USERNAME)
    Token.objects.filter(user=user).delete()
    token = Token.objects.create(user=user, key=secrets.token_hex(20))
    connections.close_all()
    print(f"  filled in {fill_s:.0f} s; segment table with indexes {size_mib:.0f} MiB", flush=True)
    step = Step(args.quiet_wait)
    print(f"  timing{quiet_label(step)}", flush=True)
    process, url, log_path = start_web(database_url, data_dir)
    try:
        memory = MemorySampler({"web": [process.pid]}, interval=args.sample_s)
        with (
            httpx.Client(headers={"Authorization": f"Token {token.key}"}, timeout=120) as client,
            step,
            memory,
        ):
            wait_ready(client, url, process, log_path)
            timing = measure(client, url, args.rounds, args.warmup)
    finally:
        stop_process(process, timeout=15)
    overall = timing["overall"]
    result = {
        "segments": load["segments"],
        "transcripts": load["transcripts"],
        "keywords": load["keywords"],
        "fill_s": round(fill_s, 1),
        "generate_s": load["generate_s"],
        "db_mib": round(size_mib, 1),
        "requests": sum(o["requests"] for o in overall.values()),
        "segments_p50_ms": overall["segments"]["p50_ms"],
        "segments_p95_ms": overall["segments"]["p95_ms"],
        "transcripts_p50_ms": overall["transcripts"]["p50_ms"],
        "transcripts_p95_ms": overall["transcripts"]["p95_ms"],
        "web_peak_mib": round(memory.peak_mib("web"), 1),
        "memory": memory.summary(),
        "per_kind": timing["summary"],
        **step.record(),
    }
    print(
        f"  segments p50/p95 {result['segments_p50_ms']}/{result['segments_p95_ms']} ms, "
        f"transcripts {result['transcripts_p50_ms']}/{result['transcripts_p95_ms']} ms, "
        f"web {result['web_peak_mib']:.0f} MiB, others' CPU {result['other_cpu_s']} s",
        flush=True,
    )
    return result


# --- the run ---------------------------------------------------------------------------------


def warm_up(platform, entries: list[dict], clip_audio: dict, args, wav: Path | None) -> None:
    """Every worker loads its model before the first step: a one-clip live session (live
    finals, partials, keywords) and, for uploads, one short upload."""
    from bench.live import api_headers, run_level
    from bench.live_stream import build_stream

    warm = [e for e in entries if e["id"] == WARMUP_CLIP] or entries[:1]
    stream = build_stream(warm, clip_audio, 0)
    run = asyncio.run(run_level("127.0.0.1", platform.port, [stream], 120, args.cookie))[0]
    finals = [e.get("text") for _t, e in run.events if e.get("type") == "final"]
    print(f"warm-up live: {finals}", flush=True)
    if wav is not None:
        _released, ids = upload_all(platform, wav, [api_headers(f"{USER_PREFIX}0")], "warm-up")
        rows = wait_done(platform, ids, timeout=args.upload_timeout)
        print(f"warm-up upload: {rows[0][0]}", flush=True)
    drain(platform)


def default_db_name() -> str:
    """``<the configured database>_bench_scale``: the bench's database is named after the
    one DATABASE_URL names, so that people sharing a server each get their own."""
    name = urlsplit(os.environ.get("DATABASE_URL") or "").path.strip("/")
    return f"{name or 'stt'}_bench_scale"


def setup_django(need_model: bool) -> None:
    import logging

    import django

    django.setup()
    for noisy in ("httpx", "httpcore", "faster_whisper", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    if need_model and not Path(settings.WHISPER_MODEL).exists():
        raise SystemExit(f"no model at {settings.WHISPER_MODEL}; run `make model`")
    call_command("migrate", verbosity=0, interactive=False)
    connections.close_all()


def run(args: argparse.Namespace) -> int:
    env = prepare_environment("bench-scale-", args.redis_db, UPLOAD_AUDIO_PER_HOUR_S="0")
    base_db, redis_url, workdir = env.base_database_url, env.redis_url, env.workdir
    started_at = dt.datetime.now()
    platform = None
    database_made = False
    results: dict[str, list[dict]] = {}
    meta: dict = {}
    try:
        open_database(base_db, args.db_name, fresh=True, make_target="bench-scale")
        database_made = True
        print(f"database {args.db_name} on {server_name(base_db, 5432)} (fresh, migrating)")
        needs_platform = bool({"uploads", "live"} & set(args.only))
        setup_django(needs_platform)
        from django.conf import settings

        print(f"Redis {server_name(redis_url, 6379)}, database {args.redis_db} (the bench's own)")
        import psutil

        meta = {
            "started_at": started_at.isoformat(timespec="seconds"),
            "host": platform_info.node(),
            "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
            "quick": args.quick,
            "only": args.only,
            "model": settings.WHISPER_MODEL,
            "beam_size": settings.WHISPER_BEAM_SIZE,
            "cpu_threads": settings.WHISPER_CPU_THREADS,
            "sample_s": args.sample_s,
            "quiet_wait_s": args.quiet_wait,
            "load_before": [round(x, 2) for x in os.getloadavg()],
        }
        if needs_platform:
            from bench.live import Platform, sign_in
            from bench.live_report import workers_label
            from bench.live_stream import build_upload, load_clips, write_wav

            entries, clip_audio = load_clips()
            if args.quick:
                # Two Korean clips: a stream of about 25 s.
                stream_entries = [e for e in entries if e["lang"] == "ko"][:2]
            else:
                stream_entries = entries
            wav = None
            if "uploads" in args.only:
                wav = write_wav(
                    workdir / "upload.wav", build_upload(entries, clip_audio, args.upload_s, 0)
                )
                meta["upload_s"] = args.upload_s
            meta["workers"] = workers_label()
            max_streams = max(args.streams) if "live" in args.only else 1
            print(f"starting daphne, {workers_label()}, a keyword worker ...", flush=True)
            platform = Platform(workdir, redis_url, max_streams)
            args.cookie = sign_in(f"{USER_PREFIX}live")
            warm_up(platform, entries, clip_audio, args, wav)
            if "uploads" in args.only:
                results["uploads"] = [
                    upload_step(platform, wav, count, args) for count in args.uploads
                ]
            if "live" in args.only:
                results["live"] = [
                    live_step(platform, stream_entries, clip_audio, args.cookie, count, args)
                    for count in args.streams
                ]
            platform.close()
            for name, path in platform.logs.items():
                with contextlib.suppress(OSError):
                    shutil.copy(path, workdir / f"kept.{name}.log")
            platform = None
        if "search" in args.only:
            results["search"] = [
                search_step(os.environ["DATABASE_URL"], str(workdir / "data"), size, args)
                for size in args.history
            ]
        meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
        lines = report(results, os.cpu_count() or 1)
        print("\n".join(lines))
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = (
            Path(args.output)
            if args.output
            else RESULTS_DIR / f"scale-{started_at:%Y%m%d-%H%M%S}.json"
        )
        out.write_text(
            json.dumps(
                {"meta": meta, "results": results, "printed": lines},
                ensure_ascii=False,
                indent=2,
                default=str,
            )
        )
        for log in workdir.glob("kept.*.log"):
            shutil.copy(log, out.with_suffix("." + log.name.removeprefix("kept.")))
        print(f"\nresults saved to {out}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the platform", file=sys.stderr)
        return 130
    finally:
        if platform is not None:
            platform.close()
        stop_all()
        clear_redis(redis_url)
        if database_made and not args.keep_db:
            drop_bench_database(base_db, args.db_name)
        shutil.rmtree(workdir, ignore_errors=True)


def clear_redis(redis_url: str) -> None:
    """Take the bench's leftover jobs and live state out of its own Redis database: a later
    worker there would look for rows in a database that is gone."""
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match="*"):
            if key.decode(errors="replace").startswith(("stt", "keywords", "live:")):
                client.delete(key)


def _numbers(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or min(values) < 1 or values != sorted(values):
        raise argparse.ArgumentTypeError("steps are positive numbers in increasing order")
    return values


def _dimensions(text: str) -> list[str]:
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(wanted) - {"uploads", "live", "search"}
    if unknown or not wanted:
        raise argparse.ArgumentTypeError("choose from uploads, live, search")
    return wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small steps for a smoke run: uploads 1,2 of 30 s; streams 1,2 of 25 s; "
        "history 2000,4000; 3 rounds (any step flag given still wins)",
    )
    parser.add_argument(
        "--only",
        type=_dimensions,
        default=["uploads", "live", "search"],
        help="dimensions to run, comma-separated: uploads, live, search (default all)",
    )
    parser.add_argument("--uploads", type=_numbers, help="concurrent uploads per step (1,2,4,8)")
    parser.add_argument("--streams", type=_numbers, help="live streams per step (1,2,4)")
    parser.add_argument(
        "--history", type=_numbers, help="segments of history per step (10000,100000,1000000)"
    )
    parser.add_argument("--upload-s", type=float, help="seconds of speech in the upload (120)")
    parser.add_argument("--rounds", type=int, help="timed requests per search query (20)")
    parser.add_argument("--warmup", type=float, help="seconds of untimed search requests (6)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        help="before each step wait up to this many seconds for an idle machine (60; 0: never)",
    )
    parser.add_argument("--segments-per-transcript", type=int, default=20)
    parser.add_argument("--sample-s", type=float, default=0.25, help="RSS sampling interval")
    parser.add_argument(
        "--drain-timeout", type=float, default=180.0, help="seconds a client waits after stop"
    )
    parser.add_argument(
        "--upload-timeout", type=float, default=3600.0, help="seconds a step's uploads may take"
    )
    parser.add_argument("--db-name", default=default_db_name(), help="throw-away database")
    parser.add_argument("--keep-db", action="store_true", help="do not drop it at the end")
    # Not REDIS_URL's own number: the bench clears its queues there before it starts.
    parser.add_argument(
        "--redis-db", type=int, default=11, help="Redis database number for the bench's queues"
    )
    parser.add_argument("--output", help="JSON file (default bench/results/scale-<time>.json)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGHUP, raise_interrupt)
    try:
        return run(args)
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
