"""Checks behind ``/api/health``, ``/api/config`` and the status page."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from keywords.backends import LlmStatus, active_backend, probe_llm
from workers.heartbeat import online_workers
from workers.queues import REQUIRED_QUEUES, Queue


@dataclass
class Check:
    ok: bool
    detail: str = ""
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail, **self.data}


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        # A broken connection must not poison the next request in this thread.
        connection.close_if_unusable_or_obsolete()
        return Check(False, f"PostgreSQL unreachable: {str(exc).strip()[:300]}")
    return Check(True, f"PostgreSQL {connection.pg_version // 10000}")


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def check_redis(client: redis.Redis) -> Check:
    try:
        client.ping()
    except redis.RedisError as exc:
        return Check(False, f"Redis unreachable: {exc}")
    return Check(True, "Redis answers")


def workers_by_queue(client: redis.Redis) -> tuple[dict[str, list[dict]], str]:
    """Online workers per queue, and an error text when Redis could not be read."""
    try:
        records = online_workers(client)
    except redis.RedisError as exc:
        return {}, str(exc)
    by_queue: dict[str, list[dict]] = {queue.value: [] for queue in REQUIRED_QUEUES}
    for record in records:
        for queue in record.get("queues", []):
            by_queue.setdefault(queue, []).append(record)
    return by_queue, ""


def hosts_of(workers: list[dict]) -> dict[str, list[str]]:
    """The workers' names by the host they run on (a GPU host with its stt, live and partial
    workers): ``{"gpu-2": ["stt-gpu0@gpu-2", ...]}``."""
    hosts: dict[str, list[str]] = {}
    for worker in workers:
        hosts.setdefault(worker.get("host") or "?", []).append(worker["hostname"])
    return {host: sorted(names) for host, names in sorted(hosts.items())}


def check_llm(llm: LlmStatus) -> Check:
    backend = active_backend(llm)
    required = settings.KEYWORD_BACKEND == "vllm"
    if llm.serves_model:
        return Check(
            True, f"{settings.VLLM_MODEL} answers", {"required": required, "backend": backend}
        )
    detail = llm.error or "no answer"
    # With ``auto`` or ``embedded`` the embedded extractor answers instead, so a
    # dead LLM is reported but does not make the platform unavailable.
    return Check(not required, detail, {"required": required, "backend": backend})


def check_queue(
    queue: str, workers: list[dict], error: str, *, required: bool = True, meanwhile: str = ""
) -> Check:
    """The workers consuming ``queue``. A queue that is not required is reported with what
    happens ``meanwhile`` and does not fail the platform."""
    data: dict = {"workers": [w["hostname"] for w in workers], "hosts": hosts_of(workers)}
    if not required:
        data["required"] = False
    if workers:
        return Check(True, f"{len(workers)} worker(s)", data)
    detail = error or f"no worker is consuming queue {queue}" + (
        f": {meanwhile}" if meanwhile else ""
    )
    return Check(not required, detail, data)


def platform_health() -> tuple[bool, dict]:
    client = redis_client()
    checks: dict[str, Check] = {"database": check_database(), "redis": check_redis(client)}
    by_queue, error = workers_by_queue(client) if checks["redis"].ok else ({}, "Redis unreachable")
    for queue in REQUIRED_QUEUES:
        checks[f"queue:{queue.value}"] = check_queue(
            queue.value, by_queue.get(queue.value, []), error
        )
    if settings.LIVE_PARTIAL_QUEUE == Queue.STT_PARTIAL:
        # Live interim text: without its worker the stt workers do it; not a failure.
        partial = Queue.STT_PARTIAL.value
        checks[f"queue:{partial}"] = check_queue(
            partial,
            by_queue.get(partial, []),
            error,
            required=False,
            meanwhile="the stt workers do interim text between finals",
        )
    checks["llm"] = check_llm(probe_llm())
    failing = [name for name, check in checks.items() if not check.ok]
    body = {
        "status": "ok" if not failing else "unavailable",
        "failing": failing,
        "checks": {name: check.as_dict() for name, check in checks.items()},
    }
    return not failing, body
