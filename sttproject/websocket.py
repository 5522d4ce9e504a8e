"""WebSocket frames over the transport's size limit: an ``error`` event, then close 1009.

Daphne caps what it reads of one WebSocket message (1 MiB by default,
``--websocket-max-message-size`` / ``--websocket-max-frame-size``), and autobahn enforces
the cap by dropping the TCP connection: the client sees 1006 and no reason. Here a message
over the cap is not read either (its bytes are dropped as they arrive, never buffered), but
the application is told first, in order after every message received before it:

- the server puts ``{"type": "websocket.oversized", "size", "limit"}`` on the application's
  queue, so the consumer answers like any other error (numbered in a native live session)
  and closes with 1009, message too big; the session then ends as on any disconnect;
- should the application not close within ``ANSWER_WAIT_S``, the server sends a plain error
  event and closes 1009 itself.

Each consumer on a WebSocket route handles ``websocket.oversized`` (a test checks it).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

log = logging.getLogger(__name__)

OVERSIZED = "websocket.oversized"
MESSAGE_TOO_BIG = 1009  # RFC 6455: a message too big to process
# The application answers within this, else the server closes on its own.
ANSWER_WAIT_S = 10.0
# After the close frame, the client is still sending the rest of its big frame and can reply
# to the close only after it: autobahn's 1 s would cut most of them off (then the client sees
# 1006 again, and its socket may be reset before it read the error event).
DRAIN_S = 10.0


def oversized_event(message: dict[str, Any]) -> dict[str, Any]:
    """The ``error`` event answering a ``websocket.oversized`` notice."""
    return {
        "type": "error",
        "code": "frame_too_large",
        "message": (
            f"a message of {message['size']} bytes is over the server's limit of "
            f"{message['limit']} bytes; it was not read and the connection is closed"
        ),
    }


class SizeLimitedWebSocketProtocol(WebSocketProtocol):
    """Daphne's WebSocket protocol, telling the application about an oversized message
    instead of dropping the connection."""

    _answer_call = None

    def _max_message_size_exceeded(self, msg_size: int, max_msg_size: int, reason: str) -> None:
        # Autobahn's hook for both limits (a frame's declared length, a message's total).
        if (
            self.state != self.STATE_OPEN
            or self.failedByMe
            or getattr(self, "application_queue", None) is None
        ):
            super()._max_message_size_exceeded(msg_size, max_msg_size, reason)
            return
        log.info("WebSocket %s: %s; closing with 1009", self.client_addr, reason)
        # Autobahn's own flag for a failed connection: it goes on parsing what arrives (the
        # rest of this frame, anything after it) and hands none of it on.
        self.failedByMe = True
        self.closeHandshakeTimeout = max(self.closeHandshakeTimeout, DRAIN_S)
        notice = {"type": OVERSIZED, "size": msg_size, "limit": max_msg_size}
        self.application_queue.put_nowait(notice)
        # The timer autobahn's own timeouts (handshakes, pings) run on.
        timer = self.factory._batched_timer
        self._answer_call = timer.call_later(ANSWER_WAIT_S, self._close_unanswered, notice)

    def _close_unanswered(self, notice: dict[str, Any]) -> None:
        self._answer_call = None
        if self.state == self.STATE_OPEN:
            log.warning("WebSocket %s: the application did not close; closing", self.client_addr)
            self.sendMessage(json.dumps(oversized_event(notice)).encode(), False)
            self.serverClose(MESSAGE_TOO_BIG)

    def serverClose(self, code: int | None = None) -> None:
        if code == MESSAGE_TOO_BIG:
            # Autobahn's sendClose takes only 1000 and 3000-4999 from an application; 1009 is
            # the protocol's own code for exactly this.
            self._cancel_answer_call()
            self.sendCloseFrame(code=code, reasonUtf8=b"message too big")
        else:
            super().serverClose(code)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self._cancel_answer_call()
        super().onClose(wasClean, code, reason)

    def _cancel_answer_call(self) -> None:
        if self._answer_call is not None:  # set to None when it runs
            self._answer_call.cancel()
        self._answer_call = None


class SizeLimitedWebSocketFactory(WebSocketFactory):
    protocol = SizeLimitedWebSocketProtocol
