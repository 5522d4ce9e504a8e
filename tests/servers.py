"""The real web server (daphne) for browser and WebSocket tests, on the test database."""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings

from bench.common import free_port
from sttproject.tls import TLSFiles, tls_files
from tests.celery_workers import log_text, process_group, test_database_url
from workers.launch import web_command


@contextmanager
def running_web(extra_env: dict[str, str] | None = None, timeout: float = 60.0):
    with running_web_process(extra_env, timeout) as (url, _process):
        yield url


def assert_live_socket_starts(url: str, context, headers: dict[str, str]) -> None:
    """Open the live socket at ``url`` (``wss://host:port/ws``) trusting ``context``, with
    ``headers`` (the cookie, the page's Origin), start a session, see ``ready``, stop."""
    from websockets.sync.client import connect

    with connect(url, ssl=context, additional_headers=headers, open_timeout=10) as socket_:
        socket_.send(json.dumps({"type": "start", "language": "ko"}))
        ready = json.loads(socket_.recv(timeout=10))
        assert ready["type"] == "ready", ready
        socket_.send(json.dumps({"type": "stop"}))


@dataclass(frozen=True)
class SecureWeb:
    """The web server with HTTPS beside HTTP, as ./start_system.sh runs it."""

    http: str  # http://127.0.0.1:<port>
    https_port: int
    files: TLSFiles

    def https(self, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.https_port}"


@contextmanager
def running_web_https(data_dir: Path, extra_env: dict[str, str] | None = None, hosts=("stt.lan",)):
    """The web server on HTTP and on HTTPS with the certificate the first start makes in
    ``data_dir`` (covering the machine's names, addresses and ``hosts``)."""
    files = tls_files(data_dir, {"TLS_HOSTS": ",".join(hosts)})
    https_port = free_port()
    env = {**(extra_env or {}), "DATA_DIR": str(data_dir), "HTTPS_PORT": str(https_port)}
    with running_web_process(env, https=(https_port, files)) as (url, _process):
        yield SecureWeb(url, https_port, files)


@contextmanager
def running_web_process(
    extra_env: dict[str, str] | None = None,
    timeout: float = 60.0,
    *,
    https: tuple[int, TLSFiles] | None = None,
):
    """The web server as ``(url, process)``, for tests that watch the process itself."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "true",  # static files straight from the source folders
        # The tests' own key, whatever DATA_DIR says: the sessions they sign in with are signed
        # with it.
        "SECRET_KEY": settings.SECRET_KEY,
        **(extra_env or {}),
    }
    command = web_command("127.0.0.1", port, https=https)
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
