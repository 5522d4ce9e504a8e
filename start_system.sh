#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the whole platform in the foreground:
# web + WebSocket on :5000, Celery workers on queues stt and keywords, Flower on :5555,
# and, unless DATABASE_URL / REDIS_URL are set, a private PostgreSQL and Redis under var/.
# Ctrl-C or SIGTERM stops all of it.
set -euo pipefail
cd "$(dirname "$0")"

make --no-print-directory -s install
.venv/bin/python manage.py prepare_model
exec .venv/bin/python -m workers.embedded run -- .venv/bin/python -m workers.launch serve
