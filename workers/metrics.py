"""Prometheus series of the platform, and how a host's processes are read together.

Every process (the web, each Celery worker's main process and pool children) records into
the series below. With ``PROMETHEUS_MULTIPROC_DIR`` set (the launcher sets it to
``$DATA_DIR/metrics/<host>`` and empties it before any process starts; compose gives each
container a tmpfs), prometheus-client keeps each process's values in files there, and
``exposition`` adds them up for the whole host. Without it, each process keeps its own, and
only the one that answers is seen.

Gauges read at scrape time from Redis (queue depth, workers online) are platform-wide: they
come from ``PlatformCollector``, registered only where it is asked for (the web's
``/metrics`` and the web host's exporter), never recorded per process, so that Prometheus
sees them once.

Nothing here imports Django or the apps at module level: the series are defined before the
settings are read, in every process that records them.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = ["exposition", "negotiated"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


# prometheus-client opens its files as the first series is made: the folder must exist by
# then (a process started by hand with the variable set, a container without its tmpfs).
if (_folder := multiprocess_dir()) is not None:
    _folder.mkdir(parents=True, exist_ok=True)

# --- Buckets ----------------------------------------------------------------------------
# A live final is expected within a second or two of the pause; 30 s is LIVE_STOP_WAIT_S.
LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0)
# Seconds of work per second of audio: a GPU does 0.01-0.05, a CPU 0.1-1; past 1 it falls behind.
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
# From live finals (well under a second) to uploads queued behind hours of audio.
WAIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0)

# --- Series recorded by the processes ------------------------------------------------------
TASKS = Counter(
    "stt_tasks",
    "Celery tasks by name and outcome: success, failure (an exception, a time limit, a lost "
    "worker), retry, rejected, revoked, expired, unknown",
    ["task", "outcome"],
)
TASK_DURATION = Histogram(
    "stt_task_duration_seconds",
    "Run time of a Celery task in its worker, by task",
    ["task"],
    buckets=TASK_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "stt_queue_wait_seconds",
    "Time from a task's publication to the start of its run, by queue (clocks of the "
    "publishing and the working host: keep them in sync)",
    ["queue"],
    buckets=WAIT_BUCKETS,
)
REAL_TIME_FACTOR = Histogram(
    "stt_transcription_real_time_factor",
    "Processing seconds per second of audio (below 1: faster than real time), by kind: "
    "upload (a task's slice of a file, wall clock), live_final, live_partial",
    ["kind"],
    buckets=RTF_BUCKETS,
)
AUDIO_SECONDS = Counter(
    "stt_transcribed_audio_seconds",
    "Seconds of audio transcribed, by kind (as in stt_transcription_real_time_factor)",
    ["kind"],
)
PROCESSING_SECONDS = Counter(
    "stt_transcription_processing_seconds",
    "Seconds spent transcribing, by kind; rate() of it over rate() of "
    "stt_transcribed_audio_seconds_total is the real-time factor of the work done",
    ["kind"],
)
TRANSCRIPTIONS = Counter(
    "stt_transcriptions",
    "Uploaded recordings whose transcription ended, by status: done or failed",
    ["status"],
)
LIVE_LATENCY = Histogram(
    "stt_live_final_latency_seconds",
    "From the end of a live utterance (the silence that ends it) to its final reaching the "
    "web process: what a speaker waits for (status events' last_latency_s)",
    buckets=LATENCY_BUCKETS,
)
LIVE_ACTIVE = Gauge(
    "stt_live_sessions_active",
    "Live sockets signed in and counted against their user's session limit, now",
    multiprocess_mode="livesum",
)
LIVE_SESSIONS = Counter(
    "stt_live_sessions",
    "Live sockets signed in and counted against their user's session limit, since start",
)
LLM_CALLS = Counter(
    "stt_llm_calls",
    "Keyword extractions and summaries asked of a backend (vllm: the LLM through its "
    "OpenAI-compatible API; embedded: the Korean analyser), by outcome: success or failure "
    "(the LLM's failures are answered by the embedded analyser)",
    ["backend", "outcome"],
)
LLM_DURATION = Histogram(
    "stt_llm_call_duration_seconds",
    "Time a keyword extraction or summary took, retries included, by backend",
    ["backend"],
    buckets=LLM_BUCKETS,
)
UPLOADS = Counter("stt_uploads", "Uploaded recordings accepted")
UPLOAD_BYTES = Counter("stt_upload_bytes", "Bytes of uploaded recordings accepted")

# Kinds and outcomes known in advance are shown at 0 from the start, so that a query over
# them has a series before the first event (in multiprocess mode a series exists only once
# some process wrote it).
RTF_KINDS = ("upload", "live_final", "live_partial")
LLM_BACKENDS = ("vllm", "embedded")
for _kind in RTF_KINDS:
    REAL_TIME_FACTOR.labels(_kind)
    AUDIO_SECONDS.labels(_kind)
    PROCESSING_SECONDS.labels(_kind)
for _backend in LLM_BACKENDS:
    for _outcome in ("success", "failure"):
        LLM_CALLS.labels(_backend, _outcome)
for _status in ("done", "failed"):
    TRANSCRIPTIONS.labels(_status)


def observe_transcription(kind: str, audio_s: float, processing_s: float) -> None:
    """One piece of audio transcribed: its real-time factor and the running totals."""
    if audio_s <= 0 or processing_s < 0:
        return
    REAL_TIME_FACTOR.labels(kind).observe(processing_s / audio_s)
    AUDIO_SECONDS.labels(kind).inc(audio_s)
    PROCESSING_SECONDS.labels(kind).inc(processing_s)


# --- Gauges read at scrape time, once for the platform -----------------------------------
class PlatformCollector:
    """Queue depth on the broker and workers online, per queue, read from Redis as Prometheus
    scrapes (one round trip); ``stt_broker_up`` says whether Redis answered."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import redis

        from workers.health import redis_client, workers_by_queue
        from workers.queues import Queue

        up = GaugeMetricFamily("stt_broker_up", "Whether the broker (Redis) answered the scrape")
        depth = GaugeMetricFamily(
            "stt_queue_waiting_messages",
            "Tasks waiting on the broker for a worker, by queue",
            labels=["queue"],
        )
        online = GaugeMetricFamily(
            "stt_workers_online",
            "Celery workers with a fresh heartbeat, by queue they consume",
            labels=["queue"],
        )
        client = redis_client()
        try:
            with client.pipeline(transaction=False) as pipe:
                for queue in Queue:
                    pipe.llen(queue.value)
                lengths = pipe.execute()
            by_queue, _error = workers_by_queue(client)
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        finally:
            client.close()
        up.add_metric([], 1)
        for queue, length in zip(Queue, lengths, strict=True):
            depth.add_metric([queue.value], int(length))
            online.add_metric([queue.value], len(by_queue.get(queue.value, [])))
        yield from (up, depth, online)


# --- Reading a host's processes together ---------------------------------------------------
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def sweep_dead_processes(path: Path | None = None) -> list[int]:
    """Forget the live gauges of processes that are gone without saying so (a pool child
    killed by the kernel, a web process that crashed); returns their pids. The folder is
    this host's, so a pid in it is a pid here."""
    path = path or multiprocess_dir()
    if path is None:
        return []
    dead = set()
    for name in glob.glob(str(path / "gauge_live*_*.db")):
        found = _LIVE_FILE.search(name)
        if found and not _alive(int(found.group(1))):
            dead.add(int(found.group(1)))
    for pid in dead:
        mark_process_dead(pid, str(path))
    return sorted(dead)


def mark_dead(pid: int | None = None) -> None:
    """Drop a process's live gauges as it ends (Celery pool children, worker shutdown)."""
    path = multiprocess_dir()
    if path is not None:
        mark_process_dead(pid if pid is not None else os.getpid(), str(path))


class _ThisProcess:
    """The default registry of a process not in multiprocess mode, as one collector."""

    def collect(self):
        return REGISTRY.collect()


class _HostProcesses:
    """Every process of this host, from the multiprocess folder, after forgetting the live
    gauges of dead ones."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def collect(self):
        sweep_dead_processes(self.path)
        return MultiProcessCollector(None, str(self.path)).collect()


def registry(*, platform: bool) -> CollectorRegistry:
    """What a scrape of this host answers: its processes' series and, with ``platform``, the
    platform-wide gauges."""
    result = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    result.register(_HostProcesses(path) if path is not None else _ThisProcess())
    if platform:
        result.register(PlatformCollector())
    return result


def exposition(*, platform: bool) -> bytes:
    """The Prometheus text format of ``registry(platform=...)``."""
    return generate_latest(registry(platform=platform))


def negotiated(accept: str | None, *, platform: bool) -> tuple[bytes, str]:
    """``registry(platform=...)`` in the format the scraper's Accept header asks for (as
    prometheus-client's own server answers): the text format 0.0.4 unless it asks for a later
    one or for OpenMetrics. Returns the body and its Content-Type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry(platform=platform)), content_type
