"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit, urlunsplit


def with_path(url: str, path: str) -> str:
    """``url`` with its path replaced (a Redis database number, a PostgreSQL database)."""
    return urlunsplit(urlsplit(url)._replace(path=path))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_interrupt(signum, _frame):
    """Signal handler: turn SIGTERM into KeyboardInterrupt so cleanup runs."""
    raise KeyboardInterrupt(f"signal {signum}")


def wait_until_quiet(max_wait_s: float, busy_share: float = 0.25) -> float:
    """Wait (up to ``max_wait_s``) until the machine is mostly idle: other people's test runs
    on a shared machine would otherwise be timed as part of ours. Returns seconds waited."""
    import psutil

    started = time.monotonic()
    while time.monotonic() - started < max_wait_s:
        if psutil.cpu_percent(interval=0.5) < busy_share * 100:
            break
    return time.monotonic() - started


def fmt(value, spec: str = ".2f", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def pct(value) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"
