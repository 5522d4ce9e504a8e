"""``GET /metrics``: Prometheus text format (or OpenMetrics, when asked), for operators.

What it serves: every process of the web's host that records into its metrics folder (the
web, and the workers the launcher started beside it), plus the platform-wide gauges (queue
depth, workers online), which only this endpoint and the web host's exporter carry
(workers/metrics.py). Workers on other hosts are scraped on their own exporters.

Who may read it: a staff user's API token (``Authorization: Token|Bearer <key>``) or
signed-in session, or a client on this machine's loopback that no proxy forwards for (a
local reverse proxy without TRUSTED_PROXIES would make everyone look local). Anonymous
requests from elsewhere get 401, a signed-in or token user who is not staff 403.
"""

from __future__ import annotations

import ipaddress

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from transcription.access import token_key, user_for_token
from workers.metrics import negotiated

# Headers a proxy adds for the client it forwards: a loopback peer that sends one is a
# proxy on this machine, not the client.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def from_loopback(request: HttpRequest) -> bool:
    """Whether the client is on this machine: a loopback peer (after TRUSTED_PROXIES have
    been believed, sttproject/proxies.py) that forwards for no one."""
    if any(request.META.get(name) for name in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", "")).strip())
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _refused(status: int, message: str) -> JsonResponse:
    response = JsonResponse({"detail": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Token realm="metrics"'
    return response


def _user(request: HttpRequest):
    """The token's user (None for a bad token), else the session's; ``False`` when the
    request carries no credentials at all."""
    key = token_key(request.META.get("HTTP_AUTHORIZATION"))
    if key is not None:
        return user_for_token(key)
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else False


@login_not_required
@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if user is None:
        return _refused(401, "invalid token")
    if user is False:
        if not from_loopback(request):
            return _refused(401, "send a staff user's API token: Authorization: Token <key>")
    elif not user.is_staff:
        return _refused(403, "metrics are for staff")
    body, content_type = negotiated(request.headers.get("Accept"), platform=True)
    return HttpResponse(body, content_type=content_type)
