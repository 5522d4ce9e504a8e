"""The sign-in throttle's policy and its answer, for django-axes (settings: LOGIN_*).

Every password check goes through ``django.contrib.auth.authenticate`` with the request (the
sign-in page and the admin's; API clients use tokens, never passwords), and axes' backend
refuses it while the account or the address is locked. Wrong passwords are counted per
username and per client address; after ``LOGIN_MAX_FAILURES`` of them within
``LOGIN_LOCKOUT_S`` the next one is refused, and so is every attempt, right password or not,
until ``LOGIN_LOCKOUT_S`` has passed since the last counted one. A successful sign-in before
then clears the count.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

LOCKED_STATUS = 429


def failure_limit(request: HttpRequest | None = None, credentials: dict | None = None) -> int:
    # axes locks on the failure that reaches its limit; LOGIN_MAX_FAILURES wrong passwords
    # are answered normally, so the limit is one more.
    return settings.LOGIN_MAX_FAILURES + 1


def lockout_window(request: HttpRequest | None = None) -> timedelta:
    return timedelta(seconds=settings.LOGIN_LOCKOUT_S)


def client_ip(request: HttpRequest) -> str | None:
    """The address the throttle counts: the direct peer, or the client a trusted proxy
    forwarded for (sttproject/proxies.py has already rewritten it). Never a header read
    here: anyone can send X-Forwarded-For."""
    return request.META.get("REMOTE_ADDR")


def _wait_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    if seconds >= 60:
        minutes = -(-seconds // 60)
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}


def lockout_message() -> str:
    wait = _wait_text(settings.LOGIN_LOCKOUT_S)
    return _(
        "Too many failed sign-ins for this account or from this address. Signing in is "
        "refused, even with the right password, until %(wait)s after the last attempt."
    ) % {"wait": wait}


def lockout_response(request: HttpRequest, *_ignored: object) -> HttpResponse:
    """What a locked account or address gets instead of the sign-in: 429 with Retry-After,
    and the sign-in page saying why and for how long (axes calls this with two or three
    arguments depending on the request path; the original response is not needed)."""
    message = lockout_message()
    if request.path.startswith(("/api/", "/v1/")) or request.headers.get("x-requested-with") == (
        "XMLHttpRequest"
    ):
        response: HttpResponse = JsonResponse({"error": message}, status=LOCKED_STATUS)
    else:
        response = render(
            request,
            "registration/login.html",
            {"form": AuthenticationForm(request), "locked_message": message, "next": ""},
            status=LOCKED_STATUS,
        )
    response["Retry-After"] = str(settings.LOGIN_LOCKOUT_S)
    return response
