from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sttproject.settings")

app = Celery("sttproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Routing, worker heartbeats and task metrics are wiring; the logic lives in workers/.
from workers import (  # noqa: E402,F401  (connect the worker signals)
    celery_metrics,
    heartbeat,
    priority,
    warmup,
)
from workers.queues import task_routes  # noqa: E402

app.conf.task_routes = task_routes()
