"""The embedded PostgreSQL and Redis (workers/embedded.py) as real servers.

Each test starts its own in a temporary DATA_DIR on free ports, so it runs beside anything
else on the machine. The attack: another local user connects to 127.0.0.1 without a
password and gets a superuser session or the broker (every user's task arguments).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from bench.common import free_port
from workers import embedded
from workers.embedded_servers import wait_for_port

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Iterator[Path]:
    # Not under tmp_path: as root, PostgreSQL runs as the user pgserver, which must traverse
    # every parent, and a pytest starting elsewhere on the machine closes pytest-of-root
    # to its owner again (0700) at any moment.
    root = Path(tempfile.mkdtemp(prefix="stt-embedded-")) / "data"
    monkeypatch.setenv("DATA_DIR", str(root))
    monkeypatch.setenv("EMBEDDED_PG_PORT", str(free_port()))
    monkeypatch.setenv("EMBEDDED_REDIS_PORT", str(free_port()))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    # libpq would otherwise find a password on its own.
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    yield root
    shutil.rmtree(root.parent, ignore_errors=True)


@pytest.fixture
def postgres(data_dir):
    server = embedded.EmbeddedPostgres(data_dir, embedded.pg_port())
    yield server
    server.stop()


@pytest.fixture
def redis_server(data_dir):
    server = embedded.EmbeddedRedis(data_dir, embedded.redis_port())
    yield server
    server.stop()


def refuses_postgres_without_password(port: int) -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=5
        ):
            return False
    except psycopg.OperationalError as error:
        assert "password" in str(error), error
        return True


def redis_answer_without_password(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(200).decode()


def assert_private_file(path: Path) -> None:
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32


def listening_addresses(pid: int) -> set[str]:
    return {c.laddr.ip for c in psutil.Process(pid).net_connections("tcp") if c.status == "LISTEN"}


def test_postgres_refuses_a_local_user_without_the_password(postgres, data_dir):
    assert postgres.start()
    assert refuses_postgres_without_password(postgres.port)
    # A wrong password is refused too; the platform's URL carries the right one.
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(
            f"postgresql://postgres:guess@127.0.0.1:{postgres.port}/stt", connect_timeout=5
        ).close()
    with psycopg.connect(embedded.embedded_database_url(), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("stt",)
    assert_private_file(data_dir / "postgres_password")
    postmaster = int((postgres.pgdata / "postmaster.pid").read_text().split()[0])
    assert listening_addresses(postmaster) == {"127.0.0.1"}

    # The next start (a restart on the same data) still asks for the same password.
    postgres.stop()
    assert postgres.start()
    assert refuses_postgres_without_password(postgres.port)
    psycopg.connect(embedded.embedded_database_url(), connect_timeout=5).close()


def _start_the_old_way(server: embedded.EmbeddedPostgres) -> None:
    """A data folder as the embedded server made it before passwords: trust for everyone."""
    server.pgdata.mkdir(parents=True)
    server.log.parent.mkdir(parents=True)
    server._prepare_user()
    for args in (
        ("initdb", "-D", str(server.pgdata), "--auth=trust", "-U", "postgres"),
        ("pg_ctl", "-D", str(server.pgdata), "-w", "-l", str(server.log), "-o",
         f"-h 127.0.0.1 -p {server.port} -c unix_socket_directories=''", "start"),
    ):  # fmt: skip
        result = server._run(server._bin(args[0]), *args[1:])
        assert result.returncode == 0, result.stderr
    assert not refuses_postgres_without_password(server.port)


def test_a_trust_data_folder_is_upgraded_running_and_stopped(postgres, data_dir):
    _start_the_old_way(postgres)
    # Found running: the password is set and pg_hba.conf rewritten, then reloaded.
    assert not postgres.start()
    assert refuses_postgres_without_password(postgres.port)
    psycopg.connect(embedded.embedded_database_url(), connect_timeout=5).close()
    assert "trust" not in _hba_rules(postgres)

    # Found stopped, with trust written back (as an older copy of the platform would leave it).
    postgres.stop()
    (postgres.pgdata / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
    assert postgres.start()
    assert refuses_postgres_without_password(postgres.port)
    psycopg.connect(embedded.embedded_database_url(), connect_timeout=5).close()


def _hba_rules(server: embedded.EmbeddedPostgres) -> str:
    text = (server.pgdata / "pg_hba.conf").read_text()
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def test_a_lost_password_file_is_written_again_and_the_server_follows_it(postgres, data_dir):
    assert postgres.start()
    postgres.stop()
    (data_dir / "postgres_password").unlink()
    assert postgres.start()
    assert_private_file(data_dir / "postgres_password")
    psycopg.connect(embedded.embedded_database_url(), connect_timeout=5).close()


def test_redis_refuses_a_local_user_without_the_password(redis_server, data_dir):
    assert redis_server.start()
    assert redis_answer_without_password(redis_server.port).startswith("-NOAUTH")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_server.port, password="guess").ping()
    assert redis.Redis.from_url(embedded.embedded_redis_url()).ping()
    password = (data_dir / "redis_password").read_text().strip()
    assert_private_file(data_dir / "redis_password")
    # Not on its command line, which every local user can read.
    pid = int(redis_server.pidfile.read_text())
    assert password not in Path(f"/proc/{pid}/cmdline").read_text()
    assert listening_addresses(pid) == {"127.0.0.1"}


def test_a_running_redis_without_a_password_gets_one(redis_server, data_dir):
    # As the embedded Redis was started before passwords.
    for path in (redis_server.dir, redis_server.pidfile.parent, redis_server.log.parent):
        path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [redis_server._executable(), "--bind", "127.0.0.1", "--port", str(redis_server.port),
         "--dir", str(redis_server.dir), "--daemonize", "yes",
         "--pidfile", str(redis_server.pidfile), "--logfile", str(redis_server.log)],
        check=True, capture_output=True,
    )  # fmt: skip
    wait_for_port(redis_server.port, "old Redis", redis_server.log)
    assert redis_answer_without_password(redis_server.port).startswith("+PONG")

    assert not redis_server.start()
    assert redis_answer_without_password(redis_server.port).startswith("-NOAUTH")
    assert redis.Redis.from_url(embedded.embedded_redis_url()).ping()


def test_the_wrapped_command_gets_urls_with_the_passwords(data_dir):
    code = (
        "import os, psycopg, redis; "
        "psycopg.connect(os.environ['DATABASE_URL']).close(); "
        "redis.Redis.from_url(os.environ['REDIS_URL']).ping(); print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "workers.embedded", "run", "--", sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=embedded.REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
