"""What a browser asks of every site by itself: ``/favicon.ico``."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe


@cache
def _favicon() -> bytes:
    return (settings.BASE_DIR / "static" / "favicon.svg").read_bytes()


@login_not_required
@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    """The same SVG as ``static/favicon.svg`` (base.html links that one): browsers and feed
    readers that ask for /favicon.ico without reading the page get it too, before sign-in."""
    return HttpResponse(_favicon(), content_type="image/svg+xml")
