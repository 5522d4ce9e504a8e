"""./start_system.sh on embedded defaults: brings the platform up, stops it cleanly, reuses data.

This runs the real script with its own data folder and ports, so it can run beside
anything else on the machine. With default settings only the web ports (HTTP and HTTPS)
listen beyond loopback, and everything on loopback (PostgreSQL, Redis, Flower) asks for a password: other
users of the machine reach loopback too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
import redis

from bench.common import free_port
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


class Platform:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        names = ("web", "https", "flower", "pg", "redis", "metrics")
        self.ports = {name: free_port() for name in names}
        self.lines: list[str] = []
        self.process: subprocess.Popen | None = None
        self.extra_env: dict[str, str] = {}

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
            HTTPS_PORT=str(self.ports["https"]),
            FLOWER_PORT=str(self.ports["flower"]),
            METRICS_PORT=str(self.ports["metrics"]),
            EMBEDDED_PG_PORT=str(self.ports["pg"]),
            EMBEDDED_REDIS_PORT=str(self.ports["redis"]),
            KEYWORD_WORKER_CONCURRENCY="1",
            STT_GPUS="none",
            # A port nothing listens on: no LLM here, the embedded keyword backend answers.
            VLLM_API_URL=f"http://127.0.0.1:{free_port()}/v1",
        )
        # Flower's settings at their defaults (FLOWER_HOST, FLOWER_BASIC_AUTH), whatever this
        # process has; a test adds its own in extra_env.
        env = {k: v for k, v in env.items() if not k.startswith("FLOWER_") or k == "FLOWER_PORT"}
        env.update(self.extra_env)
        return env

    def password(self, name: str) -> str:
        return (self.data_dir / f"{name}_password").read_text().strip()

    def pids(self) -> set[int]:
        """The script's processes and the embedded servers, which daemonize out of its tree."""
        pids = {self.process.pid}
        pids |= {child.pid for child in psutil.Process(self.process.pid).children(recursive=True)}
        postmaster = int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        pids |= {postmaster, *(c.pid for c in psutil.Process(postmaster).children())}
        pids.add(int((self.data_dir / "run" / "redis.pid").read_text()))
        return pids

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
                auth=("flower", platform.password("flower")),
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


def _listening_sockets(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN that one of ``pids`` holds, read from
    /proc as `ss -ltnp` reads it (iproute2 need not be installed)."""
    listening: dict[int, tuple[str, int]] = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            hex_address, hex_port = fields[1].split(":")
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            raw = b"".join(
                bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8)
            )
            listening[int(fields[9])] = (socket.inet_ntop(family, raw), int(hex_port, 16))
    found = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except FileNotFoundError:
            continue  # it ended meanwhile
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:
                continue  # closed meanwhile
            inode = re.fullmatch(r"socket:\[(\d+)\]", link)
            if inode and int(inode.group(1)) in listening:
                found.add(listening[int(inode.group(1))])
    return found


def _is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")


def _https_addresses(platform: Platform) -> list[str]:
    """The https addresses the start printed for colleagues."""
    return re.findall(rf"(https://\S+:{platform.ports['https']}/)", platform.log)


def _assert_https_serves_with_the_certificate_made_here(platform: Platform) -> None:
    """What a colleague's browser does once it trusts the authority: the printed address
    verifies against it (name or address in the certificate), pages and the API answer,
    cookies set over HTTPS are Secure; the authority is offered at /tls/ca.crt over HTTP."""
    authority = platform.data_dir / "tls" / "ca.crt"
    offered = httpx.get(platform.url("/tls/ca.crt"), timeout=10)
    assert offered.status_code == 200 and offered.content == authority.read_bytes()
    urls = _https_addresses(platform)
    assert urls, platform.log[-3000:]
    # Beyond loopback when the machine has such an address (a colleague's view of it).
    url = urls[0]
    context = ssl.create_default_context(cafile=str(authority))
    with httpx.Client(base_url=url, verify=context, timeout=10) as http:
        config = http.get("/api/config")
        assert config.status_code == 200 and config.json()["device"] == "cpu"
        login = http.get("/accounts/login/")
        assert login.status_code == 200
        cookie = login.headers["set-cookie"]
        assert "csrftoken=" in cookie and "Secure" in cookie, cookie
    # Plain HTTP goes on as before, without Secure cookies.
    cookie = httpx.get(platform.url("/accounts/login/"), timeout=10).headers["set-cookie"]
    assert "Secure" not in cookie, cookie


def _redis_answer_without_password(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(200).decode()


def _assert_only_the_web_port_is_open_without_a_password(platform: Platform) -> None:
    sockets = _listening_sockets(platform.pids())
    ports = platform.ports
    beyond_loopback = {port for address, port in sockets if not _is_loopback(address)}
    assert beyond_loopback == {ports["web"], ports["https"]}, sockets
    on_loopback = {port for address, port in sockets if _is_loopback(address)}
    assert on_loopback == {ports["pg"], ports["redis"], ports["flower"], ports["metrics"]}, sockets
    # The metrics exporter alone answers without a password: counts and timings, no content
    # (README, Metrics), the whole host's with the platform's gauges.
    exported = httpx.get(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=10)
    assert exported.status_code == 200
    assert 'stt_workers_online{queue="stt"}' in exported.text

    # Each of those refuses a client without the password (another user of the machine).
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(
            host="127.0.0.1", port=ports["pg"], user="postgres", dbname="stt", connect_timeout=5
        )
    assert _redis_answer_without_password(ports["redis"]).startswith("-NOAUTH")
    flower = f"http://127.0.0.1:{ports['flower']}"
    for path in ("/", "/tasks", "/api/workers"):
        assert httpx.get(flower + path, timeout=10).status_code == 401, path
    # ...and lets the platform in with the one in var/.
    with psycopg.connect(
        host="127.0.0.1",
        port=ports["pg"],
        user="postgres",
        password=platform.password("postgres"),
        dbname="stt",
        connect_timeout=5,
    ) as conn:
        assert conn.execute("SELECT count(*) FROM auth_user").fetchone()[0] >= 1
    assert redis.Redis(port=ports["redis"], password=platform.password("redis")).ping()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under tmp_path: as root, PostgreSQL runs as the user pgserver, which must traverse
    # every parent, and a pytest starting elsewhere on the machine closes pytest-of-root to
    # its owner again (0700) at any moment (pg_ctl then waits for a server it cannot see).
    root = Path(tempfile.mkdtemp(prefix="stt-start-system-"))
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


def test_start_system_runs_stops_and_restarts_on_embedded_defaults(data_dir):
    platform = Platform(data_dir)
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
        assert any(name.startswith("stt-live-cpu@") for name in workers)
        assert any(name.startswith("stt-partial-cpu@") for name in workers)
        assert any(name.startswith("keywords@") for name in workers)
        _assert_only_the_web_port_is_open_without_a_password(platform)
        _assert_https_serves_with_the_certificate_made_here(platform)
        authority = (platform.data_dir / "tls" / "ca.crt").read_bytes()
        # The generated passwords stay in their files: not in the log (Celery and Flower print
        # the broker's URL with the password masked).
        for name in ("postgres", "redis", "flower"):
            assert platform.password(name) not in platform.log, name

        # Log lines are prefixed by process name.
        processes = ("web.1", "stt-cpu.1", "stt-live-cpu.1", "stt-partial-cpu.1", "keywords.1")
        for name in (*processes, "flower.1"):
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

    # Second start: same data, so no new admin and the old password still works. Flower takes
    # the logins it is given instead of the generated one (spaces around items as people type).
    platform.extra_env = {"FLOWER_BASIC_AUTH": "ops:flowerpass, viewer:pw"}
    platform.start()
    try:
        platform.wait_healthy()
        assert "Created admin account" not in platform.log
        assert "already prepared" in platform.log
        # The authority a colleague may have installed is kept across restarts.
        assert (platform.data_dir / "tls" / "ca.crt").read_bytes() == authority
        assert _https_addresses(platform)
        assert _login(platform, password)
        flower = f"http://127.0.0.1:{platform.ports['flower']}/api/workers"
        assert httpx.get(flower, auth=("viewer", "pw"), timeout=10).status_code == 200
        generated = ("flower", platform.password("flower"))
        assert httpx.get(flower, auth=generated, timeout=10).status_code == 401
        assert "flowerpass" not in platform.log
    finally:
        code = platform.stop()
    assert code == 0
    time.sleep(1)
    assert platform.leftovers() == []
