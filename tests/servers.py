"""The real web server (daphne) for browser and WebSocket tests, on the test database."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

import httpx
from django.conf import settings

from bench.common import free_port
from tests.celery_workers import log_text, process_group, test_database_url
from workers.launch import web_command


@contextmanager
def running_web(extra_env: dict[str, str] | None = None, timeout: float = 60.0):
    with running_web_process(extra_env, timeout) as (url, _process):
        yield url


@contextmanager
def running_web_process(extra_env: dict[str, str] | None = None, timeout: float = 60.0):
    """The web server as ``(url, process)``, for tests that watch the process itself."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "true",  # static files straight from the source folders
        **(extra_env or {}),
    }
    command = web_command("127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    with process_group(command, env, stop_timeout=15) as (process, log):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{log_text(log)}")
            try:
                httpx.get(url + "/api/config", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("daphne did not answer")
        yield url, process
