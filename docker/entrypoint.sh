#!/bin/sh
# Container entrypoint.
#   web         apply migrations, make sure an admin exists, collect static files, then
#               serve HTTP and WebSocket with daphne on :5000 (the image's default)
#   anything    run as given: the Celery workers and Flower in compose.yml,
#   else        `python manage.py ...`, `sh`
set -eu

if [ "${1:-web}" = "web" ]; then
    python manage.py migrate --noinput
    # Prints a generated password once when ADMIN_PASSWORD is unset: see `docker compose logs web`.
    python manage.py ensure_admin
    python manage.py collectstatic --noinput --verbosity 0
    exec python -m sttproject.server -b 0.0.0.0 -p 5000 sttproject.asgi:application
fi

exec "$@"
