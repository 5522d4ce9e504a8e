"""Forwarded headers, believed only from the proxies named in ``TRUSTED_PROXIES``.

Anyone can send ``X-Forwarded-For: 127.0.0.1``; daphne's ``--proxy-headers`` believed it from
every peer, so a client chose the address the sign-in throttle counted. Here the headers are
read only when the direct peer is a trusted proxy, and then the client is the first address,
from the right, that is not a trusted proxy itself (the left of the list is what the client
wrote, the right what our proxies appended). ``X-Forwarded-Proto`` from a trusted proxy
gives the scheme (``https`` makes a WebSocket ``wss``), so secure cookies, CSRF and the
socket's own origin see what the browser used. Covers HTTP and WebSocket alike.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(names: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(name, strict=False) for name in names)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client of a dual-stack socket shows as ::ffff:192.0.2.1.
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def _header_values(scope: dict, name: bytes) -> list[str]:
    """Every comma-separated item of every ``name`` header, in order."""
    values = []
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            values.extend(item.strip() for item in value.decode("latin1").split(","))
    return [value for value in values if value]


def forwarded_scope(scope: dict, trusted: list[str] | tuple[str, ...]) -> dict:
    """``scope`` with ``client`` and ``scheme`` as the trusted proxies forwarded them, or
    unchanged when the direct peer is not one of ``trusted``."""
    client = scope.get("client")
    networks = _networks(tuple(trusted))
    if not client or not networks or not _trusted(_address(str(client[0])), networks):
        return scope
    changed = dict(scope)
    hops = _header_values(scope, b"x-forwarded-for")
    if hops:
        chosen = None
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break  # garbage: nothing left of it can be believed
            chosen = address
            if not _trusted(address, networks):
                break
        if chosen is not None:
            changed["client"] = (str(chosen), 0)
    protos = _header_values(scope, b"x-forwarded-proto")
    if protos and protos[-1].lower() in ("http", "https"):
        secure = protos[-1].lower() == "https"
        if scope["type"] == "websocket":
            changed["scheme"] = "wss" if secure else "ws"
        else:
            changed["scheme"] = "https" if secure else "http"
    return changed


class TrustedProxyMiddleware:
    """ASGI middleware: the scope's client and scheme as ``TRUSTED_PROXIES`` forwarded them."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = forwarded_scope(scope, settings.TRUSTED_PROXIES)
        return await self.application(scope, receive, send)
