"""Which pages may open the platform's WebSocket: the site's own origins only.

A browser sends the user's cookie with a WebSocket handshake whatever page opens it, and
WebSockets are not bound by the same-origin policy, so the Origin header is the only thing
that tells our page from a page on ``http://evil.example`` (cross-site WebSocket hijacking).
``ALLOWED_HOSTS`` is no origin list: it defaults to ``*``. The site's own origins are
``CSRF_TRUSTED_ORIGINS`` (the same list Django trusts for forms) and the origin of the host
the handshake was sent to: ``ws://host:port`` is opened by ``http://host:port``, ``wss://``
by ``https://``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

_DEFAULT_PORTS = {"http": 80, "https": 443}


def scope_header(scope: dict, name: bytes) -> str | None:
    """The first ``name`` header of an ASGI scope, as text (None when absent)."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            try:
                return value.decode("latin1")
            except UnicodeDecodeError:
                return None
    return None


def _parts(origin: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin, the port filled in; None if it is no origin
    (``null`` from a sandboxed frame or a file, garbage)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _matches(origin: tuple[str, str, int], pattern: str) -> bool:
    wanted = _parts(pattern)
    if wanted is None:
        return False
    scheme, host, port = wanted
    if host.startswith("*."):
        # Django's spelling of "this domain and its subdomains" in CSRF_TRUSTED_ORIGINS.
        host = host[1:]
    return origin[0] == scheme and origin[2] == port and is_same_domain(origin[1], host)


def own_origin(scope: dict) -> str | None:
    """The origin of the page that belongs to the host the handshake was sent to, if that
    host is one of ALLOWED_HOSTS."""
    host = scope_header(scope, b"host")
    if not host:
        return None
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return f"{scheme}://{host}"


def site_origins(scope: dict) -> list[str]:
    origins = list(settings.CSRF_TRUSTED_ORIGINS)
    own = own_origin(scope)
    if own:
        origins.append(own)
    return origins


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """Programs (the API, benchmarks) send no Origin and are let through to authentication;
    every browser sends one, and it must be one of ``allowed``."""
    if origin is None:
        return True
    parts = _parts(origin)
    return parts is not None and any(_matches(parts, pattern) for pattern in allowed)


class SiteOriginValidator:
    """ASGI middleware for WebSocket connections: refuses a handshake whose Origin is not
    one of the site's own (closed before the consumer runs, so nothing is sent)."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("SiteOriginValidator only guards WebSocket connections")
        if origin_allowed(scope_header(scope, b"origin"), site_origins(scope)):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
