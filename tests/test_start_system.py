"""./start_system.sh on embedded defaults: brings the platform up, stops it cleanly, reuses data.

This runs the real script with its own data folder and ports, so it can run beside
anything else on the machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from bench.common import free_port
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


class Platform:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port() for name in ("web", "flower", "pg", "redis")}
        self.lines: list[str] = []
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            # The platform as a user starts it: its own settings, not the tests' module.
            if k not in ("DATABASE_URL", "REDIS_URL", "ADMIN_PASSWORD", "DJANGO_SETTINGS_MODULE")
        }
        env.update(
            DATA_DIR=str(self.data_dir),
            WEB_PORT=str(self.ports["web"]),
            FLOWER_PORT=str(self.ports["flower"]),
            EMBEDDED_PG_PORT=str(self.ports["pg"]),
            EMBEDDED_REDIS_PORT=str(self.ports["redis"]),
            FLOWER_BASIC_AUTH="ops:flowerpass",
            KEYWORD_WORKER_CONCURRENCY="1",
            STT_GPUS="none",
            # A port nothing listens on: no LLM here, the embedded keyword backend answers.
            VLLM_API_URL=f"http://127.0.0.1:{free_port()}/v1",
        )
        return env

    def start(self) -> None:
        self.lines = []
        self.process = subprocess.Popen(
            [str(REPO_ROOT / "start_system.sh")],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports['web']}{path}"

    def wait_healthy(self, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"start_system.sh exited early:\n{self.log[-5000:]}"
            try:
                response = httpx.get(self.url("/api/health"), timeout=5)
                body = response.json()
                if response.status_code == 200:
                    return body
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        raise AssertionError(f"not healthy in {timeout} s: {body}\n{self.log[-5000:]}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def leftovers(self) -> list[str]:
        """Processes still running that were started for this data folder or its ports."""
        marks = [str(self.data_dir)] + [str(p) for p in self.ports.values()]
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmdline = " ".join(proc.info["cmdline"] or [])
                env = proc.environ() if not any(m in cmdline for m in marks) else {}
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            mine = any(m in cmdline for m in marks) or env.get("DATA_DIR") == str(self.data_dir)
            if mine and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{proc.pid} {cmdline}")
        return found


def _login(platform: Platform, password: str) -> bool:
    with httpx.Client(base_url=platform.url(""), timeout=10) as http:
        page = http.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = http.post(
            "/admin/login/?next=/admin/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": platform.url("/admin/login/")},
        )
        return response.status_code == 302 and response.headers["location"] == "/admin/"


def _flower_workers(platform: Platform, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    workers: dict = {}
    while time.monotonic() < deadline:
        try:
            response = httpx.get(
                f"http://127.0.0.1:{platform.ports['flower']}/api/workers?refresh=1",
                auth=("ops", "flowerpass"),
                timeout=10,
            )
            if response.status_code == 200:
                workers = response.json()
                queues = {q["name"] for w in workers.values() for q in w.get("active_queues") or []}
                if {"stt", "stt_partial", "keywords"} <= queues:
                    return workers
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    raise AssertionError(f"Flower did not list workers on stt, stt_partial and keywords: {workers}")


def test_start_system_runs_stops_and_restarts_on_embedded_defaults(tmp_path):
    platform = Platform(tmp_path / "data")
    platform.start()
    try:
        health = platform.wait_healthy()
        assert (
            health["checks"]["queue:stt"]["workers"]
            and health["checks"]["queue:keywords"]["workers"]
        )

        config = httpx.get(platform.url("/api/config"), timeout=10).json()
        assert {"status", "device", "gpu", "mode", "llm_enabled"} <= config.keys()
        assert config["device"] == "cpu"
        assert config["whisper_model"] == str(platform.data_dir / "models" / "whisper-base")

        workers = _flower_workers(platform)
        assert any(name.startswith("stt-cpu@") for name in workers)
        assert any(name.startswith("stt-partial-cpu@") for name in workers)
        assert any(name.startswith("keywords@") for name in workers)
        # Flower is behind the basic auth it was given.
        assert (
            httpx.get(f"http://127.0.0.1:{platform.ports['flower']}/api/workers").status_code == 401
        )

        # Log lines are prefixed by process name.
        for name in ("web.1", "stt-cpu.1", "stt-partial-cpu.1", "keywords.1", "flower.1"):
            assert re.search(rf"^\d\d:\d\d:\d\d {re.escape(name)}\s+\|", platform.log, re.M), name
        created = re.search(r"Created admin account 'admin' with password: (\S+)", platform.log)
        assert created, platform.log[-3000:]
        password = created.group(1)
        assert _login(platform, password)
        assert (platform.data_dir / "models" / "whisper-base" / "model.bin").is_file()
    finally:
        code = platform.stop()
    assert code == 0, platform.log[-3000:]
    time.sleep(1)
    assert platform.leftovers() == []

    # Second start: same data, so no new admin and the old password still works.
    platform.start()
    try:
        platform.wait_healthy()
        assert "Created admin account" not in platform.log
        assert "already prepared" in platform.log
        assert _login(platform, password)
    finally:
        code = platform.stop()
    assert code == 0
    time.sleep(1)
    assert platform.leftovers() == []
