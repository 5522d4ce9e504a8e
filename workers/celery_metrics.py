"""Task metrics from Celery's signals, in every process that publishes or runs tasks.

- ``before_task_publish`` (web and workers): stamps each message with the time it was sent,
  so the worker that runs it can tell how long it waited (``stt_queue_wait_seconds``).
- ``task_prerun``/``task_postrun`` (pool child): the wait, and the run time.
- ``task_success``, ``task_failure``, ``task_retry`` (pool child; a hard time limit or a
  lost worker is reported as a failure by the main process), ``task_rejected``,
  ``task_revoked``, ``task_unknown`` (main process): ``stt_tasks_total`` by outcome.
- ``worker_process_shutdown``, ``worker_shutdown``: a process that ends drops its live
  gauges from the host's metrics folder (``multiprocess.mark_process_dead``); the ones
  that die without a word are swept when the host is scraped (workers/metrics.py).
- ``worker_ready``: with ``METRICS_EXPORTER=thread`` (one worker per container), the
  worker's main process serves its container's metrics itself (workers/metrics_exporter.py).
"""

from __future__ import annotations

import logging
import os
import time

from celery import signals

from workers import metrics

log = logging.getLogger(__name__)
SENT_AT_HEADER = "stt_sent_at"
_started: dict[str, float] = {}


def _name(task) -> str:
    return getattr(task, "name", None) or "unknown"


@signals.before_task_publish.connect
def _stamp_sent_at(headers=None, **_kwargs) -> None:
    # Overwritten on every publication: a retry waits from its own sending, not the first.
    if headers is not None:
        headers[SENT_AT_HEADER] = time.time()


def queue_wait(request, now: float) -> tuple[str, float] | None:
    """(queue, seconds waited) of a task's request, or None when it was not stamped."""
    sent_at = request.get(SENT_AT_HEADER) if request is not None else None
    if not isinstance(sent_at, int | float):
        return None
    info = getattr(request, "delivery_info", None) or {}
    queue = info.get("routing_key") or "unknown"
    return str(queue), max(now - float(sent_at), 0.0)


@signals.task_prerun.connect
def _on_prerun(task_id=None, task=None, **_kwargs) -> None:
    now = time.time()
    waited = queue_wait(getattr(task, "request", None), now)
    if waited is not None:
        metrics.QUEUE_WAIT.labels(waited[0]).observe(waited[1])
    if task_id:
        _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def _on_postrun(task_id=None, task=None, **_kwargs) -> None:
    started = _started.pop(task_id, None) if task_id else None
    if started is not None:
        metrics.TASK_DURATION.labels(_name(task)).observe(time.monotonic() - started)


@signals.task_success.connect
def _on_success(sender=None, **_kwargs) -> None:
    metrics.TASKS.labels(_name(sender), "success").inc()


@signals.task_failure.connect
def _on_failure(sender=None, **_kwargs) -> None:
    metrics.TASKS.labels(_name(sender), "failure").inc()


@signals.task_retry.connect
def _on_retry(sender=None, **_kwargs) -> None:
    metrics.TASKS.labels(_name(sender), "retry").inc()


@signals.task_revoked.connect
def _on_revoked(sender=None, expired=False, **_kwargs) -> None:
    # Partials are sent with an expiry: an expired one means the partial workers are behind.
    metrics.TASKS.labels(_name(sender), "expired" if expired else "revoked").inc()


@signals.task_rejected.connect
def _on_rejected(message=None, **_kwargs) -> None:
    headers = getattr(message, "headers", None) or {}
    metrics.TASKS.labels(headers.get("task") or "unknown", "rejected").inc()


@signals.task_unknown.connect
def _on_unknown(name=None, **_kwargs) -> None:
    # Not the name it came with: an unknown name is anything a client sent, and every label
    # value is a series kept for ever.
    metrics.TASKS.labels("unregistered", "unknown").inc()


@signals.worker_process_shutdown.connect
def _on_child_exit(**_kwargs) -> None:
    metrics.mark_dead(os.getpid())


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_kwargs) -> None:
    metrics.mark_dead(os.getpid())


@signals.worker_ready.connect
def _serve_in_thread(**_kwargs) -> None:
    from django.conf import settings

    if settings.METRICS_EXPORTER == "thread" and settings.METRICS_PORT:
        from workers.metrics_exporter import serve_in_thread

        serve_in_thread(settings.METRICS_HOST, settings.METRICS_PORT, platform=False)
