"""Real Celery worker processes for tests, on the real broker.

Workers run as subprocesses with the test database in DATABASE_URL, so what a
task writes is visible to the test (use ``transactional_db``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager

import redis
from django.conf import settings
from django.db import connection

from tests.conftest import REPO_ROOT
from workers.heartbeat import KEY_PREFIX, online_workers
from workers.launch import worker_command, worker_niceness


def log_text(log, limit: int | None = 5000) -> str:
    """The process's output so far: its last ``limit`` characters, or all of it (None)."""
    log.flush()
    log.seek(0)
    text = log.read()
    return text if limit is None else text[-limit:]


@contextmanager
def process_group(command: list[str], env: dict[str, str], stop_timeout: float = 20.0):
    """Run ``command`` in a session of its own with its output in a temporary file; on exit,
    stop the whole group (SIGTERM, then SIGKILL) so no pool child outlives the test."""
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            # A file, not a pipe: nobody reads a pipe while the test runs, and a chatty
            # process blocks once the pipe's buffer is full.
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            yield process, log
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=stop_timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def worker_heartbeats(queue: str) -> list[dict]:
    """The workers on ``queue`` that are online in this test run's Redis."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    return [record for record in online_workers(client) if queue in record["queues"]]


def test_database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def running_worker(queue: str, *, extra_env: dict[str, str] | None = None, timeout: float = 60.0):
    """Start ``celery worker -Q queue`` (at the CPU priority the launcher gives it) and wait
    until its heartbeat is in Redis."""
    name = f"{queue}-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CUDA_VISIBLE_DEVICES": "",
        **(extra_env or {}),
    }
    command = [
        *worker_command(queue, f"{name}@%h", niceness=worker_niceness(queue)),
        *("--without-mingle", "--without-gossip"),
    ]
    with process_group(command, env) as (process, log):
        client = redis.Redis.from_url(settings.REDIS_URL)
        hostname = None
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                keys = [k.decode() for k in client.scan_iter(match=f"{KEY_PREFIX}{name}@*")]
                if keys:
                    hostname = keys[0].removeprefix(KEY_PREFIX)
                    break
                if process.poll() is not None:
                    raise RuntimeError(f"worker exited early:\n{log_text(log)}")
                time.sleep(0.2)
            else:
                raise RuntimeError(f"worker {name} sent no heartbeat within {timeout} s")
            process.hostname = hostname
            process.log = log
            yield process
        finally:
            if hostname:
                client.delete(KEY_PREFIX + hostname)
