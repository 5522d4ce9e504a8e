"""The real web server (daphne) for browser and WebSocket tests, on the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import httpx
from django.conf import settings

from tests.celery_workers import log_text, test_database_url
from tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_web(extra_env: dict[str, str] | None = None, timeout: float = 60.0):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "true",  # static files straight from the source folders
        **(extra_env or {}),
    }
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "sttproject.asgi:application",
        ],
        cwd=REPO_ROOT,
        env=env,
        # A file, not a pipe: nobody reads a pipe while the test runs, and a chatty process
        # blocks once the pipe's buffer is full.
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
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
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
