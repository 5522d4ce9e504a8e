"""Who opens a WebSocket: an API token, a one-time ticket, or the browser's session cookie.

- ``Authorization: Token <key>`` or ``Bearer <key>`` on the handshake: a program (REST takes
  the same header, transcription/access.py).
- ``?ticket=<ticket>``: a browser program, which cannot set headers on a WebSocket; the
  ticket comes from ``POST /api/ws-ticket/`` and opens one handshake (transcription/web/
  tickets.py).
- neither: the session cookie, for the site's own pages only (sttproject/origins.py).

A handshake that brings a token or a ticket is judged by it alone: a bad one is refused even
when a good cookie comes with it, as DRF answers 401 to a bad token whatever the session.
The refusal is the consumer's own (transcription/live/consumer.py): the socket is accepted,
gets ``{"type":"error","code":"unauthorized",...}`` and is closed with 4401, so a client
handles a bad credential and a missing one alike.

Origins: a token or a ticket is let in whatever the page's Origin. Cross-site WebSocket
hijacking works because the browser attaches the cookie to a handshake that any page opens;
it attaches no ``Authorization: Token|Bearer`` header and no ticket by itself, so a page
that sends one already holds the credential, and could use it from anywhere (curl) without
a browser. A foreign page cannot mint a ticket from the user's cookie either: the ticket
endpoint wants the CSRF token with a cookie, and without CORS the page cannot read the
answer. A page of another app (its server keeps the API token, its browser gets tickets) is
exactly what tickets are for. The cookie alone, ambient authority, stays bound to the
site's own origins.

The long-lived token is never taken from the URL (proxies, access logs and browser history
keep URLs): a query that names one (``?token=``, ``?access_token=``, ...) is refused with a
message that says so, cookie or not, so the mistake shows the first time it is made.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from sttproject.origins import scope_header
from transcription.access import token_key, user_for_token
from transcription.web import tickets

UNAUTHORIZED = 4401
# Query names a program might put its API token under; none of them is ever read.
TOKEN_PARAMS = frozenset({"token", "access_token", "api_key", "apikey", "key", "authorization"})


def _query(scope: dict) -> dict[str, list[str]]:
    raw = scope.get("query_string", b"")
    try:
        return parse_qs(raw.decode("ascii"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}


async def refuse(receive, send, message: str) -> None:
    """Answer the handshake as the consumer answers one without credentials."""
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    event = {"type": "error", "code": "unauthorized", "message": message}
    await send({"type": "websocket.send", "text": json.dumps(event)})
    await send({"type": "websocket.close", "code": UNAUTHORIZED})


class WebSocketCredentials:
    """ASGI middleware for WebSocket handshakes: a token or a ticket authenticates the
    handshake and it goes to ``application`` with ``scope["user"]`` set; with neither, it
    goes to ``cookies`` (the Origin check and the session, see sttproject/asgi.py)."""

    def __init__(self, application, *, cookies) -> None:
        self.application = application
        self.cookies = cookies

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("WebSocketCredentials only authenticates WebSocket connections")
        query = _query(scope)
        if TOKEN_PARAMS & {name.lower() for name in query}:
            return await refuse(
                receive,
                send,
                "an API token is never accepted in the URL: send it in the Authorization "
                "header, or open the socket with a ticket from POST /api/ws-ticket/",
            )
        key = token_key(scope_header(scope, b"authorization"))
        if key is not None:
            user = await database_sync_to_async(user_for_token)(key)
            if user is None:
                return await refuse(receive, send, "invalid token")
        elif "ticket" in query:
            found = query["ticket"]
            user = (
                await database_sync_to_async(tickets.redeem)(found[0]) if len(found) == 1 else None
            )
            if user is None:
                return await refuse(
                    receive, send, "invalid ticket: unknown, expired or already used"
                )
        else:
            return await self.cookies(scope, receive, send)
        return await self.application(dict(scope, user=user), receive, send)
