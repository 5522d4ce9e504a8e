"""Batch transcription through the platform against plain faster-whisper.

``make bench-batch`` (or ``python -m bench.batch`` with ``DATABASE_URL`` / ``REDIS_URL``
set) runs the Korean and no-speech clips of the shared evaluation set, a long file
built from the Korean clips with silence gaps (each clip twice, in order, 3 s apart) and
``--shuffled`` (3) more of them in other orders with gaps of 1-5 s, through two paths in
one run:

* platform: upload over HTTP to a real daphne, a real Celery worker on queue ``stt``,
  then wait for ``done`` as a program using the API would: on the transcript's event
  stream (``/ws/transcripts/<id>/`` with the API token, what the pages use too), then
  one GET of the transcript (``--wait poll``: GET it until it is done instead, every
  ``--poll`` s at first). Wall time runs from the start of the upload to the answer of
  the GET that sees ``done``.
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
``bench/results/`` (scoring and the report: ``bench/batch_report.py``, tested in
``tests/test_bench_batch_report.py``). Exit status is 0 whether targets pass or not; it is
a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
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
from pathlib import Path

from bench.batch_report import BenchFile, describe, report, summarise_file
from bench.common import free_port, raise_interrupt, wait_until_quiet
from bench.harness import (
    children_pids,
    drop_bench_database,
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
from workers.launch import web_command, worker_command

REPO_ROOT = Path(__file__).resolve().parent.parent
# A transcript's statuses after which it does not change.
ENDED = ("done", "failed")
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or REPO_ROOT.parent / "shared" / "eval")
RESULTS_DIR = REPO_ROOT / "bench" / "results"
WARMUP_CLIP = "ko_picovoice_leopard_test_ko"
LONG_ID = "long_ko_x2_gaps"
# Gaps the shuffled long files draw from, seconds.
SHUFFLED_GAPS_S = (1.0, 2.0, 3.0, 5.0)

# --- CPU accounting ------------------------------------------------------------------------


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

    def __init__(
        self, workdir: Path, redis_url: str, poll_s: float, poll_max_s: float, wait: str = "events"
    ) -> None:
        import httpx
        import redis

        from workers.heartbeat import KEY_PREFIX

        self.poll_s, self.poll_max_s = poll_s, poll_max_s
        self.wait = wait
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
        if self.wait == "events":
            body, polls = asyncio.run(self._await_end(url, response.json()["id"], started))
        else:
            body, polls = self._poll_until_end(url, started)
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

    def _check(self, body: dict, started: float, path_name: str) -> None:
        if self.worker.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{log_tail(self.worker.log_path)}")
        if time.perf_counter() - started > 3600:
            raise RuntimeError(f"{path_name} still {body['status']} after an hour")

    def _poll_until_end(self, url: str, started: float) -> tuple[dict, int]:
        polls = 0
        while True:
            body = self.client.get(url).json()
            polls += 1
            if body["status"] in ENDED:
                return body, polls
            self._check(body, started, url)
            # Every poll costs the web process CPU that the worker would use on a small
            # machine, so the interval grows with the wait (5% of it, between the bounds).
            elapsed = time.perf_counter() - started
            time.sleep(min(self.poll_max_s, max(self.poll_s, 0.05 * elapsed)))

    async def _await_end(self, url: str, transcript_id: str, started: float) -> tuple[dict, int]:
        """The transcript once its event stream says it ended: subscribed first, then one
        GET (an end before the subscription shows there), then GET again at the event."""
        host, port = self.base.removeprefix("http://").split(":")
        events = await WsClient.connect(
            host,
            int(port),
            path=f"/ws/transcripts/{transcript_id}/",
            headers={"Authorization": self.client.headers["Authorization"]},
        )
        try:
            body, polls = self.client.get(url).json(), 1
            while body["status"] not in ENDED:
                try:
                    _at, event = await events.receive(timeout=5.0)
                except TimeoutError:
                    event = None  # 5 s without the end: look (the check finds a dead worker)
                if event and event.get("type") == "_closed":
                    raise RuntimeError(f"the event stream closed: {event}")
                if event and not (event.get("type") == "status" and event.get("status") in ENDED):
                    continue
                body, polls = self.client.get(url).json(), polls + 1
                self._check(body, started, url)
            return body, polls
        finally:
            await events.close()

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
        from transcription.speech import engine

        instrument(engine.get_model())

    def transcribe(self, path: Path) -> dict:
        from transcription.speech import engine
        from transcription.speech.audio import decode_audio
        from transcription.speech.hallucination import filter_segments

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


def long_arrangements(
    clips: list, copies: int, gap_s: float, shuffled: int
) -> list[tuple[str, list, float]]:
    """The long files as (id, clips in order, gap): every clip ``copies`` times in order,
    ``gap_s`` apart, then ``shuffled`` seeded shuffles with gaps from SHUFFLED_GAPS_S.

    One arrangement is a handful of words: 1 CER point of the long file is five characters,
    and where a 30 s window happens to fall decides a few. More orders and gaps (fixed by
    their seed, so every run builds the same files) make the comparison mean something."""
    arrangements = [(LONG_ID, clips * copies, gap_s)]
    for seed in range(1, shuffled + 1):
        rng = random.Random(seed)
        order = clips * copies
        rng.shuffle(order)
        arrangements.append((f"long_ko_mix{seed}", order, rng.choice(SHUFFLED_GAPS_S)))
    return arrangements


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
    for file_id, order, gap in long_arrangements(korean, copies, gap_s, shuffled):
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


def run(args: argparse.Namespace) -> int:
    # Uploads go to the temporary data folder, not into the platform's media; the bench
    # uploads more files per hour than a person may.
    env = prepare_environment("bench-batch-", args.redis_db, UPLOAD_AUDIO_PER_HOUR_S="0")
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
        platform = Platform(
            workdir, redis_url, args.poll, max(args.poll, args.poll_max), wait=args.wait
        )
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
            "wait": args.wait,
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
            drop_bench_database(base_db, args.db_name)
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
    parser.add_argument(
        "--wait",
        choices=("events", "poll"),
        default="events",
        help="how the platform's client learns that a file is done: its event stream, or polls",
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
