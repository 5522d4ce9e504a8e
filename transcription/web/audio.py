"""A transcript's stored recording, served with byte ranges so a player can seek.

One range-serving function for the transcript page's player (``transcript_audio``) and the
REST API (``api.TranscriptAudio``), both behind the same access rule. From object storage the
web process proxies the range: one ranged GET to the bucket per request, streamed through,
so the bucket stays private, every request passes the access check, and the player needs
no address of the store (which browsers often cannot reach). A live session whose stream
has not yet put its recording into object storage is served from this host's spool.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
from collections.abc import AsyncIterator, Callable

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from transcription import storage
from transcription.access import visible_transcripts
from transcription.models import Transcript

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024

# Opens a reader (``read(n)``, ``close()``) of ``length`` bytes from ``start``.
Opener = Callable[[int, int], object]


async def _file_part(open_part: Opener, start: int, length: int) -> AsyncIterator[bytes]:
    """The bytes ``[start, start + length)`` of a stored file, read off the event loop.

    An asynchronous iterator: under ASGI, Django would read a synchronous one (and so a
    whole recording) into memory before sending the first byte.
    """
    handle = await asyncio.to_thread(open_part, start, length)
    try:
        while length > 0:
            block = await asyncio.to_thread(handle.read, min(CHUNK, length))
            if not block:
                break
            length -= len(block)
            yield block
    finally:
        await asyncio.to_thread(handle.close)


def _source(name: str) -> tuple[int, Opener]:
    """The recording's size and how to read a part of it: the stored file, or, for a live
    session still streaming into this web process's spool, the spool."""
    try:
        return storage.size(name), lambda start, length: storage.open_range(name, start, length)
    except FileNotFoundError:
        if storage.object_storage() is None:
            raise
    spool = storage.spool_path(name)
    try:
        return spool.stat().st_size, lambda start, length: storage.open_file_range(
            spool, start, length
        )
    except OSError:
        raise FileNotFoundError(name) from None


def _parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """``(start, end)`` inclusive for one satisfiable byte range, ``None`` for no (usable)
    range, ``False`` for a range past the end of the file."""
    match = _RANGE.match(header.strip())
    # Several ranges or another unit: the whole file, as RFC 9110 allows.
    if match is None or not (match.group(1) or match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:  # "bytes=-500": the last 500 bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size or start > end:
        return False
    return start, end


@require_safe
def transcript_audio(request: HttpRequest, pk) -> HttpResponse:
    """The stored recording, to its owner and staff only (others get 404).

    Browsers only let a media element seek when the server answers ``Range`` requests
    with 206 Partial Content and ``Content-Range``; one range per request is all they ask.
    """
    transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
    return audio_response(request, transcript)


def audio_response(request: HttpRequest, transcript: Transcript) -> HttpResponse:
    """``transcript``'s stored audio, whole or the one byte range asked for (GET or HEAD);
    shared by the page's player and the REST API."""
    if not transcript.audio:
        raise Http404("this transcript has no stored audio")
    name = transcript.audio.name
    try:
        size, open_part = _source(name)
    except FileNotFoundError:
        raise Http404("the audio file is gone") from None
    except storage.StorageUnavailable:
        response = HttpResponse(
            "the audio's storage does not answer; try again shortly",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = "5"
        return response
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    wanted = _parse_range(request.headers.get("Range", ""), size)
    if wanted is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    else:
        start, end = wanted or (0, size - 1)
        length = max(end - start + 1, 0)
        code = 206 if wanted else 200
        if request.method == "GET":
            response = StreamingHttpResponse(
                _file_part(open_part, start, length), status=code, content_type=content_type
            )
        else:  # HEAD: the headers a GET would have
            response = HttpResponse(status=code, content_type=content_type)
        response["Content-Length"] = str(length)
        if wanted:
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    # Private: a shared cache must never hand one user's recording to another. A live
    # session's file grows while it runs (and again when resumed): always asked for anew.
    live = transcript.source == transcript.Source.LIVE
    response["Cache-Control"] = "private, no-cache" if live else "private, max-age=3600"
    return response
