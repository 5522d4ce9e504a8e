"""A minimal RFC 6455 WebSocket client on asyncio streams, for the live benchmark.

Nothing installed will do: ``websockets`` and ``aiohttp`` are not dependencies, and
autobahn's asyncio flavour cannot be loaded once Django is set up (daphne, an installed app,
has already committed txaio to Twisted).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
import time

import numpy as np

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class WsClient:
    """A WebSocket client over TCP whose incoming messages land in ``inbox`` with their
    arrival time (stamped when the frame has been read, not when someone gets to it)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.inbox: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()
        self.closed = False
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        cookie: str = "",
        path: str = "/ws",
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> WsClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                + (f"Cookie: {cookie}\r\n" if cookie else "")
                + "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
                + "\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest()).decode()
        if " 101 " not in lines[0] + " " or headers.get("sec-websocket-accept") != accept:
            writer.close()
            raise ConnectionError(f"WebSocket handshake refused: {lines[0]}")
        return cls(reader, writer)

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.closed:
            return
        size = len(payload)
        if size < 126:
            header = bytes([0x80 | opcode, 0x80 | size])
        elif size < 1 << 16:
            header = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", size)
        else:
            header = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", size)
        mask = os.urandom(4)
        data = np.frombuffer(payload, dtype=np.uint8)
        masked = data ^ np.resize(np.frombuffer(mask, dtype=np.uint8), data.size)
        self.writer.write(header + mask + masked.tobytes())

    def send_json(self, message: dict) -> None:
        self._send(_TEXT, json.dumps(message).encode())

    def send_bytes(self, data: bytes) -> None:
        self._send(_BINARY, data)

    async def _read_frame(self) -> tuple[int, bool, bytes]:
        first, second = await self.reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        mask = await self.reader.readexactly(4) if second & 0x80 else None
        payload = await self.reader.readexactly(size)
        if mask:
            data = np.frombuffer(payload, dtype=np.uint8)
            payload = (data ^ np.resize(np.frombuffer(mask, dtype=np.uint8), size)).tobytes()
        return first & 0x0F, bool(first & 0x80), payload

    async def _read_loop(self) -> None:
        code, parts, kind = None, [], None
        try:
            while True:
                opcode, fin, payload = await self._read_frame()
                if opcode == _PING:
                    self._send(_PONG, payload)
                    continue
                if opcode == _CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self._send(_CLOSE, payload[:2])
                    break
                if opcode in (_TEXT, _BINARY):
                    kind, parts = opcode, []
                parts.append(payload)
                if fin and kind == _TEXT:
                    arrived = time.time()
                    self.inbox.put_nowait((arrived, json.loads(b"".join(parts).decode())))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed = True
            self.inbox.put_nowait((time.time(), {"type": "_closed", "code": code}))
            self.writer.close()

    async def receive(self, timeout: float) -> tuple[float, dict]:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._send(_CLOSE, struct.pack("!H", 1000))
                await self.writer.drain()
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(self._task), 5)
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
