from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sttproject.settings")

app = Celery("sttproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Routing and worker heartbeats are wiring; the logic lives in workers/.
from workers import heartbeat, priority, warmup  # noqa: E402,F401  (connect the worker signals)
from workers.queues import task_routes  # noqa: E402

app.conf.task_routes = task_routes()
