"""Live transcription through ``/ws`` at real-time pace, with 1, 2 and 4 clients at once.

``make bench-live`` (or ``python -m bench.live`` with ``DATABASE_URL`` / ``REDIS_URL`` set)
sets the platform up as a deployment runs it: daphne in a subprocess, the Celery workers
``workers.launch.device_workers()`` lists for one device, each with the launcher's command
(concurrency 1) and niceness: uploads on ``stt_live,stt`` at nice 10, live finals on
``stt_live`` (none with ``LIVE_FINAL_WORKERS=false``), partials on ``stt_partial`` at nice
19 (none with ``LIVE_PARTIAL_QUEUE=stt``); and one on ``keywords`` with the embedded
extractor, a database of its own (``stt_bench_live``, created
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

Live first (issue 12): after the levels, one client streams the level-1 stream again, the
same number of rounds, while ``--uploads`` (8) uploads of ``--upload-s`` (120) seconds of
Korean speech (the eval clips with 4 s silences, written once under the bench's temporary
folder) are queued through ``POST /api/transcripts/`` with an API token of the bench's
user, just before the first round (topped up to 8 before each later one), so that the
upload worker is busy all through the stream. Reported: final latency p50 and p95 with the
uploads queued against the level-1 figures of the same run, the ratio at p95 against 1.5x,
which part of the latency grew (mean endpoint, queue, compute, delivery: means add up), and
the upload audio the workers transcribed during each round (``processed_s`` of the uploads
before and after) with the upload worker's CPU time. The platform is stopped right after
that run and the uploads deleted, so plain compute is timed on a quiet machine.
``--uploads 0`` skips it.

One run of a level is six finals per client, and this machine's Whisper calls vary by 10-15%
from one run to the next: ``--rounds N`` streams each level N times and pools the finals for
the latency figures (the backlog is judged per round, the worst round counting).

The streams are built in ``bench/live_stream.py``; the analysis and the report are in
``bench/live_report.py`` (tested on synthetic runs in ``tests/test_bench_live_report.py``).
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
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import free_port, pct, raise_interrupt, wait_until_quiet
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
from bench.live_report import (
    TASK_FAILED,
    analyse_client,
    cer_of,
    live_first,
    report,
    score,
    summarise_level,
    upload_seconds_done,
    worker_tasks,
    workers_label,
)
from bench.live_stream import (
    FRAME,
    FRAME_S,
    RATE,
    REPO_ROOT,
    ClientRun,
    Stream,
    build_stream,
    build_upload,
    load_clips,
    write_wav,
)
from bench.wsclient import WsClient
from workers.launch import device_workers, web_command

RESULTS_DIR = REPO_ROOT / "bench" / "results"

WARMUP_CLIP = "ko_picovoice_leopard_test_ko"
# The queues of live work; an upload's transcription is on ``stt``.
LIVE_QUEUES = ("stt_live", "stt_partial", "keywords")
# The uploads run's uploads belong to the same user as its live session.
UPLOADS_USER = "bench-live"


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
    from transcription.speech import engine
    from transcription.speech.hallucination import filter_segments

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
    """daphne, the speech workers ``workers.launch.device_workers()`` lists for one device
    (uploads on ``stt_live,stt`` at nice 10, live finals on ``stt_live``, partials on
    ``stt_partial`` at nice 19, as the environment leaves them on) and a keyword worker, on
    the bench's database and Redis, each started with the launcher's command and niceness:
    the bench measures what a deployment runs."""

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
        self.base = f"http://127.0.0.1:{self.port}"
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
        self.workers: dict[str, subprocess.Popen] = {}
        # The speech workers' queues, in the launcher's order: their logs hold the tasks.
        self.speech = [queue for _prefix, queue in device_workers()]
        try:
            workers = [(queue, {}) for queue in self.speech]
            workers.append(("keywords", {"KEYWORD_BACKEND": "embedded"}))
            for queue, extra in workers:
                worker = self._stack.enter_context(
                    running_worker(queue, extra_env=extra, timeout=120)
                )
                self.workers[queue] = worker
                self.logs[queue] = workdir / f"{queue}.log"
                mirror_log(worker, self.logs[queue])
            deadline = time.monotonic() + 60
            while True:
                if self.web.poll() is not None:
                    raise RuntimeError(f"daphne exited:\n{log_tail(self.logs['web'])}")
                try:
                    httpx.get(f"{self.base}/api/config", timeout=5)
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

    def log_sizes(self) -> dict[str, int]:
        return {queue: self.log_size(queue) for queue in self.speech}

    def tasks_since(self, offsets: dict[str, int]) -> tuple[dict, list[str]]:
        """Tasks each speech worker finished since ``offsets`` (from ``log_sizes``), and
        the failures any of them logged."""
        tasks, failures = {}, []
        for queue, offset in offsets.items():
            text = self.log_text(queue, offset)
            tasks[queue] = worker_tasks(text)
            failures += TASK_FAILED.findall(text)
        return tasks, failures

    def queued(self, queues: tuple[str, ...] = LIVE_QUEUES + ("stt",)) -> int:
        return sum(self.redis.llen(q) for q in queues)

    def worker_cpu(self, queue: str) -> float:
        """CPU seconds of a worker and its pool so far."""
        import psutil

        total = 0.0
        with contextlib.suppress(KeyError, psutil.NoSuchProcess):
            main = psutil.Process(self.workers[queue].pid)
            for proc in [main, *main.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = proc.cpu_times()
                    total += times.user + times.system
        return total

    def close(self) -> None:
        # Twice is fine: the uploads run stops the platform early (its uploads would go on
        # using the CPU that plain compute is timed on afterwards).
        self._stack.close()
        stop_process(self.web)


# --- rounds of streaming, idle or with uploads queued ----------------------------------


def stream_rounds(
    platform: Platform,
    args: argparse.Namespace,
    entries: list[dict],
    clip_audio: dict[str, np.ndarray],
    cookie: str,
    level: int,
    load: UploadLoad | None = None,
) -> dict:
    """``args.rounds`` rounds of ``level`` clients streaming at once; with ``load``, one
    client (the level-1 stream) while ``load`` keeps uploads queued."""
    offsets = platform.log_sizes()
    runs, clients, other, wall = [], [], 0.0, 0.0
    for round_ in range(args.rounds):
        platform.clear_sessions()
        # Uploads are meant to be queued under load: wait for the live queues only then.
        queues = LIVE_QUEUES if load else (*LIVE_QUEUES, "stt")
        deadline = time.monotonic() + 60
        while platform.queued(queues) and time.monotonic() < deadline:
            time.sleep(0.5)
        # Under load only before the uploads start: after that the machine is busy on purpose.
        quiet = args.quiet_wait and (load is None or round_ == 0)
        waited = wait_until_quiet(args.quiet_wait) if quiet else 0.0
        note = load.prepare(round_) if load else ""
        streams = [
            build_stream(entries, clip_audio, 0 if args.same_order else i) for i in range(level)
        ]
        print(
            ("uploads queued, " if load else "")
            + f"level {level}"
            + (f", round {round_ + 1}/{args.rounds}" if args.rounds > 1 else "")
            + f": {level} client(s) x {streams[0].duration:.1f} s"
            + (f" (waited {waited:.0f} s for a quiet machine)" if waited > 1 else "")
            + (f"; {note}" if note else ""),
            flush=True,
        )
        if load:
            load.started()
        busy_before, own_before, wall_before = machine_busy_cpu(), own_cpu(), time.time()
        round_runs = asyncio.run(
            run_level("127.0.0.1", platform.port, streams, args.drain_timeout, cookie)
        )
        other += max(0.0, (machine_busy_cpu() - busy_before) - (own_cpu() - own_before))
        round_wall = time.time() - wall_before
        wall += round_wall
        if load:
            print(f"  {load.finished(round_wall)}", flush=True)
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
    time.sleep(1)  # the workers' last log lines
    tasks, failures = platform.tasks_since(offsets)
    if failures:
        print(f"  WARNING: {len(failures)} stt task(s) failed: {failures[-1]}", flush=True)
    return {
        "level": level,
        "runs": runs,
        "clients": clients,
        "other": other,
        "wall": wall,
        "tasks": tasks,
        "failures": failures,
    }


def upload_files(
    workdir: Path,
    entries: list[dict],
    clip_audio: dict[str, np.ndarray],
    count: int,
    seconds: float,
) -> list[Path]:
    """``count`` WAV files of about ``seconds`` of Korean speech each (the clips from a
    different one on in each), written once under the bench's temporary folder."""
    folder = workdir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_wav(folder / f"upload-{i}.wav", build_upload(entries, clip_audio, seconds, i))
        for i in range(count)
    ]


def remove_uploads(username: str) -> None:
    """Delete the uploads of the bench's user (their files go with them)."""
    from django.db import connections

    from transcription.models import Transcript

    Transcript.objects.filter(owner__username=username, source=Transcript.Source.UPLOAD).delete()
    connections.close_all()


def api_headers(username: str) -> dict[str, str]:
    """An ``Authorization`` header with an API token of the bench's user."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username=username)
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


class UploadLoad:
    """Uploads of the bench's user queued through ``POST /api/transcripts/`` so that the
    upload worker has work all through a stream, and how far it got during each.

    Before each round the uploads still queued or running are topped up to ``count`` (the
    first round sends ``count``): at this machine's pace a round's stream is shorter than
    the audio queued, so the worker never runs out. The owner's turns (batch/turns.py) hold
    all but one per stt worker in PostgreSQL; the worker takes the next as one ends.
    """

    def __init__(self, platform: Platform, files: list[Path], count: int, username: str) -> None:
        import httpx

        self.platform = platform
        self.files = files
        self.count = count
        self.client = httpx.Client(
            base_url=platform.base, timeout=120, headers=api_headers(username)
        )
        self.ids: list[str] = []
        self.rounds: list[dict] = []
        self._before: dict[str, float] = {}
        self._cpu_before = 0.0

    def state(self) -> dict[str, tuple[str, float]]:
        """Each upload's status and seconds of its audio transcribed so far."""
        from django.db import connections

        from transcription.models import Transcript

        rows = Transcript.objects.filter(pk__in=self.ids).values_list("pk", "status", "processed_s")
        state = {str(pk): (status, processed) for pk, status, processed in rows}
        connections.close_all()
        return state

    @staticmethod
    def _outstanding(state: dict[str, tuple[str, float]]) -> int:
        return sum(status in ("queued", "running") for status, _ in state.values())

    def prepare(self, round_: int) -> str:
        """Top the uploads up to ``count`` and wait (up to 30 s) until one is running."""
        missing = self.count - self._outstanding(self.state())
        started = time.perf_counter()
        for _ in range(max(0, missing)):
            path = self.files[len(self.ids) % len(self.files)]
            with path.open("rb") as handle:
                response = self.client.post(
                    "/api/transcripts/",
                    files={"file": (path.name, handle, "audio/wav")},
                    data={"language": "ko", "title": f"bench-live {path.name}"},
                )
            if response.status_code != 202:
                raise RuntimeError(f"upload of {path.name}: {response.status_code} {response.text}")
            self.ids.append(response.json()["id"])
        sent_s = time.perf_counter() - started
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(status == "running" for status, _ in self.state().values()):
                break
            time.sleep(0.2)
        outstanding = self._outstanding(self.state())
        return (
            f"{max(0, missing)} upload(s) sent in {sent_s:.1f} s, {outstanding} queued or running"
        )

    def started(self) -> None:
        self._before = {pk: done for pk, (_status, done) in self.state().items()}
        self._cpu_before = self.platform.worker_cpu("stt")

    def finished(self, stream_s: float) -> str:
        state = self.state()
        after = {pk: done for pk, (_status, done) in state.items()}
        done_s = upload_seconds_done(self._before, after)
        finished = sum(
            status == "done" and self._before.get(pk, -1.0) < after[pk]
            for pk, (status, _done) in state.items()
        )
        failed = [pk for pk, (status, _done) in state.items() if status == "failed"]
        round_ = {
            "done_s": done_s,
            "stream_s": stream_s,
            "finished": finished,
            "failed": len(failed),
            "outstanding_after": self._outstanding(state),
            "worker_cpu_s": self.platform.worker_cpu("stt") - self._cpu_before,
        }
        self.rounds.append(round_)
        return (
            f"uploads: {done_s:.0f} s of audio transcribed during {stream_s:.0f} s, "
            f"{finished} finished, {round_['outstanding_after']} still queued or running, "
            f"upload worker CPU {round_['worker_cpu_s']:.0f} s"
            + (f"; {len(failed)} FAILED" if failed else "")
        )

    def summary(self, file_s: float) -> dict:
        self.client.close()
        return {
            "files": self.count,
            "file_s": file_s,
            "sent": len(self.ids),
            "rounds": self.rounds,
        }


def run(args: argparse.Namespace) -> int:
    # The hourly audio budget is an abuse limit, not what is measured: off, so that repeated
    # uploads runs in the one database never meet it.
    env = prepare_environment("bench-live-", args.redis_db, UPLOAD_AUDIO_PER_HOUR_S="0")
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
        if args.uploads and 1 not in args.levels:
            print("note: without level 1 there is no idle figure for the uploads run's ratio")
        # Uploads an interrupted earlier run left queued would be dispatched by the sweep.
        remove_uploads(UPLOADS_USER)
        print(f"starting daphne, {workers_label()}, a keyword worker ...", flush=True)
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
        level_results = [
            stream_rounds(platform, args, entries, clip_audio, cookie, level)
            for level in args.levels
        ]
        busy_result, uploads_info = None, None
        if args.uploads:
            files = upload_files(workdir, entries, clip_audio, args.uploads, args.upload_s)
            load = UploadLoad(platform, files, args.uploads, UPLOADS_USER)
            busy_result = stream_rounds(platform, args, entries, clip_audio, cookie, 1, load=load)
            uploads_info = load.summary(args.upload_s)
            # The uploads left would go on using the CPU that plain compute is timed on.
            platform.close()
            remove_uploads(UPLOADS_USER)
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
        for result in [*level_results, *([busy_result] if busy_result else [])]:
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
        first = None
        if busy_result is not None:
            busy = summarise_level(
                1,
                busy_result["clients"],
                busy_result["other"],
                busy_result["wall"],
                busy_result["tasks"],
            )
            busy["clients"] = busy_result["clients"]
            busy["worker_failures"] = busy_result["failures"]
            idle = next((summary for summary in summaries if summary["level"] == 1), None)
            first = {**live_first(idle, busy, uploads_info), "level": busy}
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
            "workers": workers_label(),
            "uploads": args.uploads,
            "upload_s": args.upload_s,
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
        outcome = report(summaries, batch, meta, first)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = (
            Path(args.output)
            if args.output
            else RESULTS_DIR / f"live-{started_at:%Y%m%d-%H%M%S}.json"
        )
        out.write_text(
            json.dumps(
                {
                    "meta": meta,
                    "levels": summaries,
                    "live_first": first,
                    "batch": batch,
                    **outcome,
                },
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
    parser.add_argument(
        "--uploads",
        type=int,
        default=8,
        help="after the levels, stream one client again (same rounds) with this many uploads "
        "queued through the REST API, and compare its latency with level 1's (0 skips it)",
    )
    parser.add_argument(
        "--upload-s",
        type=float,
        default=120.0,
        help="seconds of Korean speech in each upload (built from the eval clips)",
    )
    parser.add_argument("--output", help="JSON file (default bench/results/live-<time>.json)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGHUP, raise_interrupt)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
