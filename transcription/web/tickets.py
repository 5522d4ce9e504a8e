"""Short-lived tickets for ``/ws``: how a browser program authenticates a WebSocket.

A browser cannot set headers on a WebSocket handshake, so a page that holds an API token
(or a signed-in page of another origin's app, through its own server) cannot send
``Authorization``; and the long-lived token must never ride in a URL, where proxies, logs
and browser history keep it. Instead an authenticated ``POST /api/ws-ticket/`` hands out a
ticket: random, bound to the user, good for one handshake (``/ws?ticket=...``) within
``TICKET_TTL_S``. It lives in the Django cache (Redis) under its SHA-256, so what Redis
holds cannot itself be replayed, and it is taken by whoever deletes it first: of two
handshakes racing with one ticket, exactly one gets in.
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.core.cache import cache
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

TICKET_TTL_S = 60
_KEY_PREFIX = "ws-ticket:"


def _cache_key(ticket: str) -> str:
    return _KEY_PREFIX + hashlib.sha256(ticket.encode("utf-8", "replace")).hexdigest()


def issue(user, ttl_s: int = TICKET_TTL_S) -> str:
    """A new ticket for ``user``, good for one handshake within ``ttl_s`` seconds."""
    ticket = secrets.token_urlsafe(32)
    cache.set(_cache_key(ticket), user.pk, timeout=ttl_s)
    return ticket


def redeem(ticket: str):
    """The active user ``ticket`` was issued to, once; None for an unknown, expired or
    already used ticket."""
    key = _cache_key(ticket)
    user_id = cache.get(key)
    # The delete is the claim: Redis answers 1 to exactly one of two racing deletes.
    if user_id is None or not cache.delete(key):
        return None
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


class WebSocketTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Good for one /ws handshake")
    expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid")
    url = serializers.CharField(
        help_text="The live socket with the ticket: ws(s)://host/ws?ticket="
    )


class WebSocketTicket(APIView):
    @extend_schema(
        summary="A one-time ticket for the live WebSocket",
        description=(
            "For browser programs, which cannot send an Authorization header on a WebSocket: "
            "open `url` (or `/ws?ticket=<ticket>`, `/ws/transcripts/<id>/?ticket=<ticket>`) "
            f"within {TICKET_TTL_S} s; the socket is yours, as with your token. A ticket "
            "works for one handshake only. Programs that can set headers send "
            "`Authorization: Token <key>` (or `Bearer <key>`) on the handshake instead; the "
            "API token itself is never accepted in a URL."
        ),
        request=None,
        responses={
            201: WebSocketTicketSerializer,
            401: OpenApiResponse(description="Not signed in, or a bad token"),
            403: OpenApiResponse(description="Signed in by cookie without the CSRF token"),
        },
    )
    def post(self, request: Request) -> Response:
        ticket = issue(request.user)
        scheme = "wss" if request.is_secure() else "ws"
        url = f"{scheme}://{request.get_host()}/ws?{urlencode({'ticket': ticket})}"
        return Response(
            {"ticket": ticket, "expires_in": TICKET_TTL_S, "url": url},
            status=status.HTTP_201_CREATED,
            # A credential: no cache along the way may keep it.
            headers={"Cache-Control": "no-store"},
        )
