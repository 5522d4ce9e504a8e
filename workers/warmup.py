"""Load models when a worker process starts, so the first job does not pay for it.

Models stay per process (prefork children), loaded after the fork: CTranslate2
and onnxruntime thread pools do not survive a fork.
"""

from __future__ import annotations

import logging
import sys

from celery import signals

from workers.queues import runs_whisper

log = logging.getLogger(__name__)


def consumed_queues(argv: list[str]) -> set[str]:
    """Queues named with -Q/--queues on the worker's command line (the pool child inherits it)."""
    queues: set[str] = set()
    for i, arg in enumerate(argv):
        value = None
        if arg in ("-Q", "--queues") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--queues="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-Q") and len(arg) > 2:
            value = arg[2:]
        if value:
            queues.update(q.strip() for q in value.split(",") if q.strip())
    return queues


@signals.worker_process_init.connect
def _warm_up(**_kwargs) -> None:
    from django.conf import settings

    # Parsed by the settings, so a bad value has already stopped the worker, naming it.
    if not settings.WORKER_WARMUP:
        return
    queues = consumed_queues(sys.argv)
    try:
        if runs_whisper(queues):
            from transcription.speech.engine import get_model

            get_model()
        if "keywords" in queues:
            from keywords.extractors.embedded import warm_up

            warm_up()
    except Exception:  # noqa: BLE001 - a failed warm-up is retried by the first job, which reports it
        log.exception("warm-up failed")
