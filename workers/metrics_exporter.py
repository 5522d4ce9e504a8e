"""A host's metrics exporter: its processes' series over HTTP, for Prometheus.

``python -m workers.metrics_exporter [--platform]`` serves, on ``METRICS_HOST:METRICS_PORT``
(127.0.0.1:9560 by default), every process of this host that records into its
``PROMETHEUS_MULTIPROC_DIR``; ``--platform`` adds the platform-wide gauges (queue depth,
workers online), which only one target may carry: the launcher passes it on the host that
runs the web. It answers anyone who reaches the port, so it listens on loopback unless told
otherwise; the web's ``/metrics`` serves the same over the web port, behind a staff token.

With ``METRICS_EXPORTER=thread`` (compose: one process per container), the web process or
a Celery worker's main process serves its container's metrics itself (``serve_in_thread``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from prometheus_client import start_http_server

log = logging.getLogger(__name__)
RETRY_S = 30.0
_serving: list[object] = []


def serve_in_thread(host: str, port: int, *, platform: bool):
    """Serve this host's metrics on ``host:port`` from a daemon thread; returns the server, or
    None when the port is taken (logged: the process goes on without it)."""
    from workers.metrics import registry

    try:
        server, _thread = start_http_server(port, host, registry(platform=platform))
    except OSError as exc:
        log.warning("metrics exporter not started on %s:%s: %s", host, port, exc)
        return None
    _serving.append(server)
    log.info("metrics on http://%s:%s/metrics", host, port)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.metrics_exporter", description=__doc__)
    parser.add_argument(
        "--platform", action="store_true", help="add the platform-wide gauges (the web host)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sttproject.settings")
    import django

    django.setup()
    from django.conf import settings

    if not settings.METRICS_PORT:
        raise SystemExit("METRICS_PORT=0: no metrics exporter")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    # A taken port is tried again rather than given up: under the launcher, a process that
    # exits stops the whole platform, and metrics are not worth that.
    while (
        serve_in_thread(settings.METRICS_HOST, settings.METRICS_PORT, platform=args.platform)
        is None
    ):
        if stop.wait(RETRY_S):
            return 0
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
