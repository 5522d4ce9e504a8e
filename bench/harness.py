"""Setting the platform up for a benchmark: environment, database, child processes.

Usable before Django is set up (``prepare_environment`` decides the settings the
benchmark's own Django and its children read), and shared by ``bench.batch``,
``bench.live`` and ``bench.search`` so that each sets the platform up the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import with_path

REPO_ROOT = Path(__file__).resolve().parent.parent

_children: list[subprocess.Popen] = []


# --- child processes ------------------------------------------------------------------


def start_process(
    args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """A child in its own session (so it can be stopped with everything it forks), logging
    to a file: a pipe nobody reads would block a chatty worker once its buffer is full."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=dict(os.environ) if env is None else env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process.log_path = log_path
    _children.append(process)
    return process


def stop_process(process: subprocess.Popen, timeout: float = 20.0) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if process in _children:
        _children.remove(process)


def stop_all() -> None:
    """Stop every child still running, the last started first."""
    for process in list(reversed(_children)):
        stop_process(process)


def children_pids() -> list[int]:
    return [process.pid for process in _children]


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# --- database and environment -----------------------------------------------------------


def server_name(url: str, default_port: int) -> str:
    """host:port of a URL, for messages (no user name or password)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or default_port}"


def _admin_connect(database_url: str):
    import psycopg

    return psycopg.connect(with_path(database_url, "/postgres"), autocommit=True)


def _drop(conn, name: str) -> None:
    try:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # noqa: BLE001 - PostgreSQL before 13 has no FORCE
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def ensure_database(database_url: str, name: str, *, fresh: bool = False) -> tuple[str, bool]:
    """Create ``name`` on the server of ``database_url`` unless it exists (``fresh``: drop it
    first); return its URL and whether it was created."""
    with _admin_connect(database_url) as conn:
        if fresh:
            _drop(conn, name)
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return with_path(database_url, "/" + name), not exists


def drop_database(database_url: str, name: str) -> None:
    with _admin_connect(database_url) as conn:
        _drop(conn, name)


def drop_bench_database(database_url: str, name: str) -> None:
    """Drop the bench's throw-away database at the end of a run: this process's Django
    connections closed first; a failure is a note on stderr, not a traceback."""
    with contextlib.suppress(Exception):
        from django.db import connections

        connections.close_all()
    try:
        drop_database(database_url, name)
    except Exception as exc:  # noqa: BLE001 - leave a note, not a traceback
        print(f"could not drop database {name}: {exc}", file=sys.stderr)


@dataclass(frozen=True)
class BenchEnvironment:
    base_database_url: str  # the server's URL as configured, before the bench's database
    redis_url: str  # with the bench's own database number
    workdir: Path  # temporary; DATA_DIR is its "data" folder


def prepare_environment(prefix: str, redis_db: int, **extra: str) -> BenchEnvironment:
    """Settings for this process and every child it starts: the configured (or embedded)
    servers, the bench's own Redis database number (so no other worker takes its jobs), a
    temporary data folder for uploads, the embedded model on the CPU with int8 (as the
    issues state their targets) and the embedded keyword extractor. ``extra`` adds more."""
    from workers.embedded import data_dir, embedded_database_url, embedded_redis_url

    base_db = os.environ.get("DATABASE_URL") or embedded_database_url()
    base_redis = os.environ.get("REDIS_URL") or embedded_redis_url()
    redis_url = with_path(base_redis, f"/{redis_db}")
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    # The model and the secret key stay where the platform keeps them.
    os.environ.setdefault("WHISPER_MODEL", str(data_dir() / "models" / "whisper-base"))
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="sttproject.settings",
        REDIS_URL=redis_url,
        DATA_DIR=str(workdir / "data"),
        WHISPER_DEVICE="cpu",
        WHISPER_COMPUTE_TYPE="int8",
        CUDA_VISIBLE_DEVICES="",
        KEYWORD_BACKEND="embedded",
        **extra,
    )
    return BenchEnvironment(base_db, redis_url, workdir)


def open_database(base_url: str, name: str, *, fresh: bool, make_target: str) -> bool:
    """Create (or reuse) the bench's database and point DATABASE_URL at it; returns whether
    it was created. Exits with advice when the server will not have it."""
    try:
        os.environ["DATABASE_URL"], created = ensure_database(base_url, name, fresh=fresh)
    except Exception as exc:  # noqa: BLE001 - say what to do instead of a traceback
        raise SystemExit(
            f"could not open or create database {name!r} on {server_name(base_url, 5432)}: "
            f"{exc}\nrun `make {make_target}`, or set DATABASE_URL to a server where you may "
            "create databases"
        ) from exc
    return created


def setup_django(quiet_loggers: tuple[str, ...]) -> None:
    """Django on the bench's settings, its database migrated; the model must be there."""
    import django

    django.setup()
    for noisy in quiet_loggers:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    if not Path(settings.WHISPER_MODEL).exists():
        raise SystemExit(f"no model at {settings.WHISPER_MODEL}; run `make model`")
    call_command("migrate", verbosity=0, interactive=False)
    connections.close_all()
