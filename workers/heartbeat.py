"""Worker heartbeats in Redis: which workers are online, on which queues and devices.

Each Celery worker's main process writes a small JSON record every few seconds
under ``stt:worker:<hostname>`` with a time-to-live, so a worker that dies
vanishes from ``/api/health`` on its own, without a broadcast to every worker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time

import redis
from celery import signals

from workers.queues import runs_whisper

log = logging.getLogger(__name__)
KEY_PREFIX = "stt:worker:"
# Where a worker's pool process says where it runs Whisper (``publish_runtime``), keyed by the
# host and the pid of the worker's main process, whose heartbeat carries it; refreshed by every
# beat, so it outlives a worker that died by this much at most.
RUNTIME_PREFIX = "stt:runtime:"
RUNTIME_TTL_S = 3600
INTERVAL_S = 5.0
SWEEP_INTERVAL_S = 60.0

_stop = threading.Event()
_hostname: list[str] = []


def _redis() -> redis.Redis:
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def worker_record(hostname: str, queues: list[str], runtime: dict | None = None) -> dict:
    """The heartbeat of a worker on ``queues``. ``runtime`` is where its pool process runs
    Whisper (``read_runtime``): until the model is loaded, where the settings would put it.
    ``cuda_error`` says why a worker with a GPU runs Whisper on the CPU."""
    from django.conf import settings

    from workers.gpu import list_gpus, resolve_runtime, visible_devices

    visible = visible_devices()
    gpus = [gpu.as_dict() for gpu in list_gpus()] if runs_whisper(queues) else []
    if runtime is None:
        device, compute_type = resolve_runtime(
            settings.WHISPER_DEVICE, settings.WHISPER_COMPUTE_TYPE, len(gpus)
        )
        runtime = {"device": device, "compute_type": compute_type, "cuda_error": None}
    return {
        "hostname": hostname,
        "queues": sorted(queues),
        "pid": os.getpid(),
        # The machine (WORKER_HOST, or its own name): workers are listed by host.
        "host": settings.WORKER_HOST,
        "cuda_visible_devices": None if visible is None else ",".join(visible),
        "device": runtime["device"] if runs_whisper(queues) else "cpu",
        "compute_type": runtime["compute_type"] if runs_whisper(queues) else None,
        "cuda_error": runtime.get("cuda_error") if runs_whisper(queues) else None,
        "gpus": gpus,
        "whisper_model": settings.WHISPER_MODEL if runs_whisper(queues) else None,
        "seen_at": time.time(),
    }


def runtime_key(host: str, main_pid: int) -> str:
    return f"{RUNTIME_PREFIX}{host}:{main_pid}"


def publish_runtime(client: redis.Redis, report: dict, main_pid: int | None = None) -> None:
    """Called in a pool process once its model is loaded: tell the main process's heartbeat
    (by default this process's parent) where Whisper runs."""
    main_pid = os.getppid() if main_pid is None else main_pid
    key = runtime_key(socket.gethostname(), main_pid)
    client.set(key, json.dumps(report), ex=RUNTIME_TTL_S)


def read_runtime(client: redis.Redis, main_pid: int | None = None) -> dict | None:
    """What this worker's pool process published, or None before its model is loaded."""
    key = runtime_key(socket.gethostname(), os.getpid() if main_pid is None else main_pid)
    raw = client.getex(key, ex=RUNTIME_TTL_S)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def publish(client: redis.Redis, record: dict, ttl_s: int) -> None:
    client.set(KEY_PREFIX + record["hostname"], json.dumps(record), ex=ttl_s)


def online_workers(client: redis.Redis) -> list[dict]:
    """Records of workers whose heartbeat has not expired, sorted by hostname."""
    keys = sorted(client.scan_iter(match=KEY_PREFIX + "*", count=100))
    records = []
    for raw in client.mget(keys) if keys else []:
        if raw:
            try:
                records.append(json.loads(raw))
            except ValueError:
                continue
    return sorted(records, key=lambda r: r.get("hostname", ""))


def _beat(hostname: str, queues: list[str]) -> None:
    from django.conf import settings

    client = _redis()
    last_sweep = 0.0
    while not _stop.is_set():
        try:
            runtime = read_runtime(client) if runs_whisper(queues) else None
            record = worker_record(hostname, queues, runtime)
            publish(client, record, settings.WORKER_HEARTBEAT_TTL_S)
        except Exception as exc:  # noqa: BLE001 - Redis may be restarting; keep beating
            log.warning("worker heartbeat failed: %s", exc)
        if "stt" in queues and time.monotonic() - last_sweep >= SWEEP_INTERVAL_S:
            last_sweep = time.monotonic()
            _sweep()
        _stop.wait(INTERVAL_S)


def _sweep() -> None:
    from django.db import close_old_connections

    from transcription.batch.sweeper import sweep_orphans
    from transcription.batch.turns import dispatch_waiting
    from transcription.live.records import end_orphaned_sessions

    try:
        swept = sweep_orphans()
        if swept:
            log.warning("marked %d stuck upload(s) failed", swept)
        ended = end_orphaned_sessions()
        if ended:
            log.warning("marked %d orphaned live session(s) done", ended)
        dispatched = dispatch_waiting()
        if dispatched:
            log.info("sent %d waiting upload(s) to the workers", dispatched)
    except Exception as exc:  # noqa: BLE001 - the database may be restarting; try next time
        log.warning("orphan sweep failed: %s", exc)
    finally:
        close_old_connections()


@signals.worker_ready.connect
def _start_heartbeat(sender=None, **_kwargs) -> None:
    hostname = sender.hostname
    _hostname.append(hostname)
    queues = [queue.name for queue in sender.task_consumer.queues] if sender.task_consumer else []
    threading.Thread(target=_beat, args=(hostname, queues), name="heartbeat", daemon=True).start()


@signals.worker_process_init.connect
def _report_runtime(**_kwargs) -> None:
    # In each pool process: where Whisper runs (the CPU when CUDA could not load) is decided
    # at its model load, here, and the main process's heartbeat carries it.
    from workers.warmup import consumed_queues

    if not runs_whisper(consumed_queues(sys.argv)):
        return
    from transcription.speech import engine

    engine.on_model_loaded(lambda report: publish_runtime(_redis(), report))


@signals.worker_shutdown.connect
def _stop_heartbeat(**_kwargs) -> None:
    # Withdraw the record at once so health checks do not count a stopped worker
    # until its heartbeat expires.
    _stop.set()
    for hostname in _hostname:
        with contextlib.suppress(redis.RedisError):
            _redis().delete(KEY_PREFIX + hostname, runtime_key(socket.gethostname(), os.getpid()))
