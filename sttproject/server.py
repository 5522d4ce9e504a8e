"""The web server: daphne, refusing a request body before it is read.

Daphne (through Twisted) reads a request's whole body before the application sees the
request, then hands all of it to the application at once: three anonymous 525 MB POSTs grew
the web process by 6.7 GB and were answered 401 only after the last byte. Here the headers
are judged as soon as they arrive:

- a declared length over the path's limit is answered 413 before any of the body is read;
- a body over ``ANONYMOUS_BODY_BYTES`` needs credentials (a session cookie or an API token),
  checked against the database while the connection is paused, else 401;
- a chunked body (no declared length) is counted as it arrives and refused the moment it
  passes the same limits.

Views still authenticate and check sizes as before; this only stops the bytes early.
A WebSocket message over daphne's size limit is answered, not just dropped
(``sttproject/websocket.py``). ``python -m sttproject.server`` takes daphne's own arguments.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from http import HTTPStatus

from daphne.http_protocol import HTTPFactory, WebRequest

log = logging.getLogger(__name__)

# Forms and JSON bodies (a login, a rename) stay under this; anything larger must say who
# sends it before it is read.
ANONYMOUS_BODY_BYTES = 64 * 1024
# The multipart envelope around an uploaded file (boundaries, field headers, language, title).
ENVELOPE_BYTES = 64 * 1024
# Paths that take a recording in the body; every other path takes form or JSON bodies only.
UPLOAD_PATHS = ("/api/transcripts/", "/v1/audio/transcriptions")
# After refusing, what the client still sends is read and dropped for this long, so that it
# can read the answer (closing with unread data makes the kernel reset the connection,
# which can destroy the answer before it is read); then the connection is cut.
LINGER_S = 10.0


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str

    def response(self, path: str) -> bytes:
        error: str | dict = self.message
        if path.startswith("/v1/"):
            # The OpenAI-compatible endpoint's clients read errors in OpenAI's shape.
            kind = "server_error" if self.status >= 500 else "invalid_request_error"
            code = "invalid_api_key" if self.status == 401 else None
            message = self.message
            if self.status == 401:
                message = (
                    "Incorrect API key provided. "
                    "Your API token is on your account page (/account/)."
                )
            error = {"message": message, "type": kind, "param": None, "code": code}
        body = json.dumps({"error": error}, ensure_ascii=False).encode()
        reason = HTTPStatus(self.status).phrase
        head = [
            f"HTTP/1.1 {self.status} {reason}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if self.status == 401:
            head.append('WWW-Authenticate: Token realm="api"')
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def body_limit(path: str) -> int:
    """The most bytes a request body to ``path`` may have."""
    from django.conf import settings

    if path.startswith(UPLOAD_PATHS):
        return settings.UPLOAD_MAX_MB * 1024 * 1024 + ENVELOPE_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + ENVELOPE_BYTES


def too_large(path: str) -> Refusal:

    if path.startswith(UPLOAD_PATHS):
        from transcription.batch.uploads import too_large as upload_too_large

        # The upload service's own answer, as its views would give it after the read.
        return Refusal(413, str(upload_too_large()))
    return Refusal(413, "the request body is too large")


UNAUTHENTICATED = Refusal(
    401,
    "sign in or send an API token (Authorization: Token <key>) before sending a body this large",
)


def credentials(headers) -> tuple[str | None, str | None]:
    """The session id cookie and the Authorization header of a Twisted request's headers."""
    from django.conf import settings

    authorization = headers.getRawHeaders(b"authorization")
    session = None
    name = settings.SESSION_COOKIE_NAME.encode()
    for line in headers.getRawHeaders(b"cookie") or []:
        for pair in line.split(b";"):
            key, _, value = pair.strip().partition(b"=")
            if key == name and value:
                session = value.decode("latin-1")
    token = authorization[0].decode("latin-1") if authorization else None
    return session, token


def _valid_in_thread(session: str | None, authorization: str | None) -> bool:
    from django.db import close_old_connections, connection

    from transcription.access import credentials_valid

    close_old_connections()
    try:
        return credentials_valid(session, authorization)
    finally:
        # This thread is Twisted's, not a request's: nothing else would close it.
        connection.close()


class GatedRequest(WebRequest):
    """Daphne's request, judging the body by its headers and its running length."""

    _limit = 0
    _anonymous = False
    _received = 0
    _refused = False
    _checking = None  # a Deferred while credentials are being checked

    def gotLength(self, length):
        super().gotLength(length)
        path = (getattr(self.channel, "_path", b"") or b"").split(b"?", 1)[0].decode("latin-1")
        self._path = path
        self._limit = body_limit(path)
        if length is not None and length <= ANONYMOUS_BODY_BYTES:
            return
        session, authorization = credentials(self.requestHeaders)
        if not session and not authorization:
            if length is not None:
                self._refuse(UNAUTHENTICATED)
            else:
                # A chunked body of unknown size: anonymous up to the small-body limit.
                self._anonymous = True
            return
        if length is not None and length > self._limit:
            self._refuse(too_large(path))
            return
        self._check(session, authorization)

    def _check(self, session: str | None, authorization: str | None) -> None:
        from twisted.internet.threads import deferToThread

        channel = self.channel
        producer = channel._networkProducer
        producer.pauseProducing()
        # "Expect: 100-continue" is answered once the credentials are known to be good, not
        # by Twisted as soon as the headers are in: a client that waits for it sends nothing.
        expects = self._take_expect()

        def judged(valid: bool) -> bool:
            self._checking = None
            if not valid:
                self._refuse(UNAUTHENTICATED)
            elif not self._refused:
                if expects and channel.transport is not None:
                    channel._send100Continue()
                producer.resumeProducing()
            return valid and not self._refused

        def failed(failure) -> bool:
            log.error("could not check credentials before a request body: %s", failure.value)
            self._checking = None
            self._refuse(Refusal(503, "the server cannot check credentials right now"))
            return False

        self._checking = deferToThread(_valid_in_thread, session, authorization)
        self._checking.addCallbacks(judged, failed)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._anonymous and self._received > ANONYMOUS_BODY_BYTES:
            self._refuse(UNAUTHENTICATED)
            return
        if self._received > self._limit:
            self._refuse(too_large(self._path))
            return
        super().handleContentChunk(data)

    def process(self):
        if self._refused:
            return None
        if self._checking is not None:
            # The whole (small) body came before the credentials were judged.
            self._checking.addCallback(lambda ok: WebRequest.process(self) if ok else None)
            return None
        return super().process()

    def _take_expect(self) -> bool:
        expect = self.requestHeaders.getRawHeaders(b"expect") or []
        self.requestHeaders.removeHeader(b"expect")
        return any(value.lower() == b"100-continue" for value in expect)

    def _refuse(self, refusal: Refusal) -> None:
        if self._refused:
            return
        self._refused = True
        # Refused from the headers: no "100 Continue" must follow the answer.
        self._take_expect()
        channel = self.channel
        log.info(
            "refused a request body to %s before reading it: %d %s",
            self._path,
            refusal.status,
            refusal.message,
        )
        # Answer at once, beside Twisted's request machinery (the request never reaches the
        # application), drop the rest of the body, and cut the connection after a while.
        self.content.close()
        channel.transport.write(refusal.response(self._path))
        channel._networkProducer.resumeProducing()
        from twisted.internet import reactor

        reactor.callLater(LINGER_S, _cut, channel)


def _cut(channel) -> None:
    if channel.transport is not None:
        channel.transport.abortConnection()


class GatedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = GatedRequest
        return protocol


def secure_server_class():
    """Daphne's server, giving a WebSocket that came in over TLS the scheme ``wss``.

    Daphne puts ``scheme`` in an HTTP request's scope (https on its TLS endpoint) but none in
    a WebSocket's, and ASGI then means ``ws``: the live page opened over https would open
    ``wss://`` and be refused as a foreign origin (``sttproject/origins.py`` compares the
    page's ``https://`` origin with the socket's scheme)."""
    from daphne.server import Server
    from twisted.internet.interfaces import ISSLTransport

    class SecureSchemeServer(Server):
        def create_application(self, protocol, scope):
            if (
                scope.get("type") == "websocket"
                and "scheme" not in scope
                and ISSLTransport.providedBy(getattr(protocol, "transport", None))
            ):
                scope = {**scope, "scheme": "wss"}
            return super().create_application(protocol, scope)

    return SecureSchemeServer


def main(argv: list[str] | None = None) -> None:
    import daphne.server
    from daphne.cli import CommandLineInterface

    from sttproject.websocket import SizeLimitedWebSocketFactory

    # Daphne builds its factories by these module-level names in Server.run and offers no
    # setting for the request or WebSocket protocol class.
    daphne.server.HTTPFactory = GatedHTTPFactory
    daphne.server.WebSocketFactory = SizeLimitedWebSocketFactory
    cli = CommandLineInterface()
    cli.server_class = secure_server_class()
    cli.run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
