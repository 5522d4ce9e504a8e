"""Request bodies judged by their headers before they are read (issue 12, item 3).

Reproduced on a running instance: three anonymous 525 MB POSTs to /api/transcripts/ grew the
web process from 1.2 to 7.9 GB and were answered 401 only after the whole body; a signed-in
one got 413 after 28 s and a full read; a chunked one got 400 "no file" instead of 413.
These tests send such bodies to the real web server over a socket and stop sending as soon
as an answer arrives.
"""

from __future__ import annotations

import json
import select
import socket
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from rest_framework.authtoken.models import Token

from tests.conftest import session_cookie_header
from tests.servers import running_web_process
from transcription.models import Transcript

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MB = 1024 * 1024
ATTACK = 525 * MB


def post_body(url, path, size, *, headers=(), chunked=False, piece=MB):
    """POST ``size`` bytes of zeros to ``path``, reading whatever the server answers while
    sending; stops sending when an answer is complete. Returns (status, json body, bytes of
    the body sent)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/octet-stream",
    ]
    head += [f"{name}: {value}" for name, value in headers]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sock.setblocking(False)
    zeros = b"\0" * piece
    frame = f"{piece:x}\r\n".encode() + zeros + b"\r\n" if chunked else zeros
    pending, sent, answer = b"", 0, b""
    try:
        while True:
            readable, writable, _ = select.select([sock], [sock] if sent < size else [], [], 30)
            if not readable and not writable:
                raise AssertionError(f"no answer after {sent} bytes")
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
                if _complete(answer):
                    break
            if writable:
                if not pending:
                    pending = frame
                try:
                    count = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    break
                pending = pending[count:]
                if not pending:
                    sent += piece
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1])
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    return status, body, sent


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def rss(process) -> int:
    return psutil.Process(process.pid).memory_info().rss


def test_huge_bodies_are_refused_before_they_are_read(cast):
    cookie = session_cookie_header(cast.owner)
    signed_in = [(cookie[0].decode(), cookie[1].decode())]
    with running_web_process() as (url, process):
        httpx.get(url + "/api/config")
        before = rss(process)

        # Anonymous, declared: 401 from the headers alone.
        status, body, sent = post_body(url, "/api/transcripts/", ATTACK)
        assert status == 401, body
        assert "sign in" in body["error"]
        assert sent < 16 * MB

        # Anonymous, chunked: refused once it passes what a form may be.
        status, body, sent = post_body(url, "/api/transcripts/", ATTACK, chunked=True)
        assert status == 401, body
        assert sent < 16 * MB

        # Signed in, but over the upload limit: 413 before the body.
        status, body, sent = post_body(url, "/api/transcripts/", ATTACK, headers=signed_in)
        assert status == 413, body
        assert "500 MB" in body["error"]
        assert sent < 16 * MB

        # A made-up token is no credential: checked before a body under the limit is read.
        bogus = [("Authorization", "Token 0123456789abcdef0123456789abcdef01234567")]
        status, body, sent = post_body(url, "/api/transcripts/", 400 * MB, headers=bogus)
        assert status == 401, body
        assert sent < 16 * MB

        grown = rss(process) - before
    assert grown < 50 * MB, f"the web process grew by {grown / MB:.0f} MB"
    assert not Transcript.objects.exists()


def test_a_chunked_body_over_the_limit_is_413_and_real_uploads_pass(cast, eval_clip):
    cookie = session_cookie_header(cast.owner)
    token = Token.objects.create(user=cast.owner).key
    with running_web_process({"UPLOAD_MAX_MB": "20"}) as (url, process):
        status, body, sent = post_body(
            url,
            "/api/transcripts/",
            60 * MB,
            chunked=True,
            headers=[("Authorization", f"Token {token}")],
        )
        assert status == 413, body
        assert "20 MB" in body["error"]
        assert 20 * MB <= sent < 40 * MB

        # Over the small-body limit, with good credentials, through to the view.
        path, _ = eval_clip("ko_zeroth_104_003_0253")
        assert path.stat().st_size > 64 * 1024
        with open(path, "rb") as handle:
            answer = httpx.post(
                url + "/api/transcripts/",
                files={"file": (path.name, handle)},
                headers={"Authorization": f"Token {token}"},
                timeout=30,
            )
        assert answer.status_code == 202, answer.text
        with open(path, "rb") as handle:
            answer = httpx.post(
                url + "/api/transcripts/",
                files={"file": (path.name, handle)},
                headers={cookie[0].decode(): cookie[1].decode(), "X-CSRFToken": "x"},
                cookies=None,
                timeout=30,
            )
        # The session passes the gate; the view then asks for the CSRF token, as it always did.
        assert answer.status_code == 403, answer.text
        assert "CSRF" in answer.text
    assert Transcript.objects.count() == 1
