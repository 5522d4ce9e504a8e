"""JSON 503 from the API while PostgreSQL or Redis is down.

Without this, a request to ``/api/...`` or ``/v1/...`` during an outage got Django's HTML
500 page: a program can parse neither it nor the fact that trying again later will work.
These are the failures of the services themselves (connection refused or lost, time-outs),
not bugs: a client is told to come back after ``Retry-After`` seconds.
"""

from __future__ import annotations

import logging

import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from kombu.exceptions import OperationalError as BrokerError

log = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/v1/")
RETRY_AFTER_S = 30
DATABASE_ERRORS = (OperationalError, InterfaceError)
# The cache (upload counters), the channel layer and the Celery broker all live in Redis.
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, BrokerError)
# The services' names as the message shows them, in the request's language.
# People are not told which product is down, only what and when to try again.
SERVICE_NAMES = {"database": gettext_lazy("database"), "Redis server": gettext_lazy("job queue")}


def outage_response(path: str, service: str) -> JsonResponse:
    message = _("The %(service)s is unavailable; try again in %(seconds)s seconds.") % {
        "service": SERVICE_NAMES.get(service, service),
        "seconds": RETRY_AFTER_S,
    }
    error: str | dict = message
    if path.startswith("/v1/"):
        # The OpenAI-compatible endpoint's clients read errors in OpenAI's shape.
        error = {"message": message, "type": "server_error", "param": None, "code": None}
    response = JsonResponse({"error": error}, status=503, json_dumps_params={"ensure_ascii": False})
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


class ApiOutageMiddleware(MiddlewareMixin):
    """Turns a database or Redis outage raised by an API view into a JSON 503."""

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not request.path.startswith(API_PREFIXES):
            return None
        if isinstance(exception, DATABASE_ERRORS):
            service = "database"
        elif isinstance(exception, REDIS_ERRORS):
            service = "Redis server"
        else:
            return None
        log.warning("%s %s: %s unavailable: %s", request.method, request.path, service, exception)
        return outage_response(request.path, service)
