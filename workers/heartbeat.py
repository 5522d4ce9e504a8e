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
import threading
import time

import redis
from celery import signals

from workers.queues import runs_whisper

log = logging.getLogger(__name__)
KEY_PREFIX = "stt:worker:"
INTERVAL_S = 5.0
SWEEP_INTERVAL_S = 60.0

_stop = threading.Event()
_hostname: list[str] = []


def _redis() -> redis.Redis:
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def worker_record(hostname: str, queues: list[str]) -> dict:
    from django.conf import settings

    from workers.gpu import list_gpus, visible_devices

    visible = visible_devices()
    gpus = [gpu.as_dict() for gpu in list_gpus()] if runs_whisper(queues) else []
    return {
        "hostname": hostname,
        "queues": sorted(queues),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "cuda_visible_devices": None if visible is None else ",".join(visible),
        "device": "cuda" if gpus else "cpu",
        "gpus": gpus,
        "whisper_model": settings.WHISPER_MODEL if runs_whisper(queues) else None,
        "seen_at": time.time(),
    }


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
            publish(client, worker_record(hostname, queues), settings.WORKER_HEARTBEAT_TTL_S)
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


@signals.worker_shutdown.connect
def _stop_heartbeat(**_kwargs) -> None:
    # Withdraw the record at once so health checks do not count a stopped worker
    # until its heartbeat expires.
    _stop.set()
    for hostname in _hostname:
        with contextlib.suppress(redis.RedisError):
            _redis().delete(KEY_PREFIX + hostname)
