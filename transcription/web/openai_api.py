"""OpenAI-compatible speech to text: ``POST /v1/audio/transcriptions`` and ``GET /v1/models``.

Existing OpenAI clients (the ``openai`` package, curl scripts, tools that take a base URL)
point at ``http://<host>:5000/v1`` with the user's API token as their key and work unchanged.
An upload here is an ordinary upload: ``create_upload`` stores the file as a transcript of the
token's user (so it is in their history) and queues the same stt task the upload page uses.
The view then waits for the worker and answers in the requested format.

Waiting is asynchronous: the view polls the transcript's status with ``asyncio.sleep`` between
small queries, so a long recording occupies no worker thread of its own while it waits.

Differences from OpenAI, on purpose:
- ``language`` left out means *detect*, as OpenAI does, not ``DEFAULT_LANGUAGE``: clients omit
  it exactly when they do not know the language.
- ``model`` may be anything (``whisper-1``, our model's name); every request is served by the
  workers' one Whisper model. ``prompt`` and ``temperature`` are accepted and not used.
- Word timestamps (``response_format=verbose_json`` with ``timestamp_granularities[]=word``)
  are the word timings stored with each segment, stripped to OpenAI's ``word``, ``start``,
  ``end``; segments stored without them (older transcripts) add no words.
- ``stream=true`` is refused (OpenAI ignores it for whisper-1, but its clients then expect
  server-sent events and fail on a plain answer).
- Error messages are in the request's language (Accept-Language; Korean by default); the
  error's shape, type, param and code are OpenAI's whatever the language.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authtoken.models import Token

from transcription.batch.uploads import UploadRejected, check_size, create_upload
from transcription.models import Segment, Transcript
from transcription.speech.languages import LANGUAGE_NAMES, WHISPER_LANGUAGES
from transcription.web.exports import render

log = logging.getLogger(__name__)

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")
# The status is one indexed-row query; five a second answers soon after the worker is done.
POLL_INTERVAL_S = 0.2
OPENAI_MODEL_ID = "whisper-1"

LANGUAGE_CODES = {name: code for code, name in LANGUAGE_NAMES.items()}


class OpenAIError(Exception):
    """An error answered in OpenAI's shape, so its clients raise their usual exceptions."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - OpenAI's field name
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> JsonResponse:
        body = {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
                **self.extra,
            }
        }
        response = JsonResponse(body, status=self.status, json_dumps_params={"ensure_ascii": False})
        for name, value in self.headers.items():
            response[name] = value
        return response


def model_ids() -> list[str]:
    """``whisper-1`` for clients that hard-code it, and the name of the model that serves."""
    configured = settings.WHISPER_MODEL.rstrip("/")
    path = Path(configured)
    # A folder is named by its last part (var/models/whisper-base -> whisper-base); a hub
    # name such as Systran/faster-whisper-large-v3 stays whole.
    is_folder = path.is_absolute() or configured.startswith(".") or path.exists()
    name = path.name if is_folder else configured
    return list(dict.fromkeys([OPENAI_MODEL_ID, name]))


def _masked(key: str) -> str:
    return key[:4] + "…" + key[-4:] if len(key) > 12 else "…"


async def authenticate(request: HttpRequest):
    """The user whose API token is in ``Authorization: Bearer <token>`` (``Token`` also works)."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() not in ("bearer", "token") or not key:
        raise OpenAIError(
            401,
            gettext(
                "You didn't provide an API key. Send 'Authorization: Bearer <token>' with the "
                "API token from your account page (/account/)."
            ),
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    token = await Token.objects.select_related("user").filter(key=key).afirst()
    if token is None or not token.user.is_active:
        raise OpenAIError(
            401,
            gettext(
                "Incorrect API key provided: %(key)s. Your API token is on your account page "
                "(/account/)."
            )
            % {"key": _masked(key)},
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    return token.user


def _parse_body(request: HttpRequest) -> tuple[dict[str, Any], Any]:
    """Multipart fields and the file, read in a thread: parsing writes large files to disk."""
    try:
        fields = {
            "model": request.POST.get("model", ""),
            "language": request.POST.get("language", ""),
            "response_format": request.POST.get("response_format", ""),
            "temperature": request.POST.get("temperature", ""),
            "stream": request.POST.get("stream", ""),
            # The openai package sends arrays as "name[]"; curl users often leave out the [].
            "timestamp_granularities": request.POST.getlist("timestamp_granularities[]")
            or request.POST.getlist("timestamp_granularities"),
        }
        return fields, request.FILES.get("file")
    except (RequestDataTooBig, TooManyFieldsSent) as exc:
        raise OpenAIError(
            413, gettext("The request is too large: %(reason)s") % {"reason": exc}
        ) from exc
    except MultiPartParserError as exc:
        raise OpenAIError(
            400, gettext("Could not parse the multipart form: %(reason)s") % {"reason": exc}
        ) from exc


def _language(value: str) -> str:
    value = value.strip().lower()
    if not value:
        return "auto"  # as OpenAI: no language named, so detect it
    value = LANGUAGE_CODES.get(value, value)  # "korean" works as well as "ko"
    if value != "auto" and value not in WHISPER_LANGUAGES:
        raise OpenAIError(
            400,
            gettext(
                "Unsupported language %(language)s: use an ISO-639-1 code such as ko or en, "
                "or leave it out to detect the language."
            )
            % {"language": repr(value)},
            param="language",
            code="unsupported_language",
        )
    return value


def _validate(fields: dict[str, Any], upload) -> dict[str, Any]:
    if upload is None:
        raise OpenAIError(
            400,
            gettext("No file: send the recording as the multipart field 'file'."),
            param="file",
        )
    response_format = (fields["response_format"] or "json").strip().lower()
    if response_format not in RESPONSE_FORMATS:
        raise OpenAIError(
            400,
            gettext("Unsupported response_format %(value)s: choose one of %(choices)s.")
            % {"value": repr(fields["response_format"]), "choices": ", ".join(RESPONSE_FORMATS)},
            param="response_format",
        )
    granularities = [g.strip().lower() for g in fields["timestamp_granularities"] if g.strip()]
    unknown = [g for g in granularities if g not in GRANULARITIES]
    if unknown:
        raise OpenAIError(
            400,
            gettext("Unsupported timestamp_granularities %(value)s: choose word and/or segment.")
            % {"value": unknown},
            param="timestamp_granularities",
        )
    if fields["temperature"]:
        try:
            temperature = float(fields["temperature"])
        except ValueError:
            temperature = -1.0
        if not 0.0 <= temperature <= 1.0:
            raise OpenAIError(
                400,
                gettext("temperature must be a number from 0 to 1, got %(value)s.")
                % {"value": repr(fields["temperature"])},
                param="temperature",
            )
    if fields["stream"].strip().lower() in ("true", "1"):
        raise OpenAIError(
            400,
            gettext("Streaming is not supported here: leave out stream (or send stream=false)."),
            param="stream",
        )
    return {
        "model": fields["model"].strip() or OPENAI_MODEL_ID,
        "language": _language(fields["language"]),
        "response_format": response_format,
        "granularities": granularities,
    }


def _store(upload, user, language: str) -> Transcript:
    try:
        with transaction.atomic():
            # The task is queued when this commits (create_upload uses on_commit).
            return create_upload(upload, owner=user, language=language, title=upload.name)
    except UploadRejected as exc:
        if exc.status_code == 413:
            raise OpenAIError(413, str(exc), param="file", code="file_too_large") from exc
        if exc.status_code == 503:  # the audio store does not answer: ours, for a while
            raise OpenAIError(
                503,
                str(exc),
                type="server_error",
                headers={"Retry-After": str(exc.retry_after or 10)},
            ) from exc
        if exc.status_code == 429:
            raise OpenAIError(
                429,
                str(exc),
                type="requests",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(exc.retry_after or 60)},
            ) from exc
        raise OpenAIError(
            exc.status_code,
            gettext(
                "Invalid file format. %(reason)s. Send an audio or video file "
                "(flac, m4a, mp3, mp4, ogg, wav, webm, …)."
            )
            % {"reason": exc},
            param="file",
            code="invalid_file_format",
        ) from exc


async def _wait(transcript: Transcript, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    finished = (Transcript.Status.DONE, Transcript.Status.FAILED)
    while True:
        row = await Transcript.objects.filter(pk=transcript.pk).values("status", "error").afirst()
        if row is None:
            raise OpenAIError(
                500, gettext("The transcript was deleted before it was done."), type="server_error"
            )
        if row["status"] in finished:
            return row
        if time.monotonic() >= deadline:
            url = reverse("api-transcript-detail", args=[transcript.pk])
            raise OpenAIError(
                504,
                gettext(
                    "The transcription is still %(status)s after %(timeout)s s; it goes on and "
                    "is stored as transcript %(id)s: fetch it from %(url)s"
                )
                % {
                    "status": row["status"],
                    "timeout": f"{timeout_s:g}",
                    "id": transcript.pk,
                    "url": url,
                },
                type="server_error",
                code="timeout",
                # Sending the file again would only transcribe it a second time.
                headers={"x-should-retry": "false"},
                extra={"transcript_id": str(transcript.pk), "transcript_url": url},
            )
        await asyncio.sleep(POLL_INTERVAL_S)


# Failures caused by what was sent; any other code (or none recorded) is ours.
CLIENT_FAULTS = frozenset(
    {
        Transcript.ErrorCode.NOT_AUDIO,
        Transcript.ErrorCode.DECODE_FAILED,
        Transcript.ErrorCode.TOO_LONG,
    }
)


def _failure(transcript: Transcript) -> OpenAIError:
    # Decided by the stored code, never by the message's wording, which is for people.
    ours = transcript.error_code not in CLIENT_FAULTS
    return OpenAIError(
        500 if ours else 400,
        gettext("Transcription failed: %(error)s") % {"error": transcript.error},
        type="server_error" if ours else "invalid_request_error",
        param=None if ours else "file",
        headers={"x-should-retry": "false"},
        extra={"transcript_id": str(transcript.pk)},
    )


def compression_ratio(text: str) -> float:
    """As Whisper computes it: a high ratio means repetitive (often hallucinated) text."""
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 4) if data else 0.0


def _words(segments: list[Segment]) -> list[dict[str, Any]]:
    return [
        {"word": str(w.get("word", "")).strip(), "start": w.get("start"), "end": w.get("end")}
        for segment in segments
        for w in (segment.words or [])
        if isinstance(w, dict)
    ]


def verbose_json(
    transcript: Transcript, segments: list[Segment], granularities: list[str]
) -> dict[str, Any]:
    """OpenAI's ``TranscriptionVerbose``: task, language (a name), duration, text, segments."""
    duration = float(transcript.duration or 0.0)
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": LANGUAGE_NAMES.get(transcript.language, transcript.language),
        "duration": duration,
        "text": _text(segments),
    }
    if not granularities or "segment" in granularities:
        body["segments"] = [
            {
                "id": number,
                # Whisper's seek counts 10 ms mel frames; ours is where the segment starts.
                "seek": round(segment.start * 100),
                "start": segment.start,
                "end": segment.end,
                "text": segment.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": segment.avg_logprob if segment.avg_logprob is not None else 0.0,
                "compression_ratio": compression_ratio(segment.text),
                "no_speech_prob": segment.no_speech_prob
                if segment.no_speech_prob is not None
                else 0.0,
            }
            for number, segment in enumerate(segments)
        ]
    if "word" in granularities:
        body["words"] = _words(segments)
    body["usage"] = {"type": "duration", "seconds": duration}
    return body


def _text(segments: list[Segment]) -> str:
    return " ".join(s.text.strip() for s in segments if s.text.strip())


def _answer(
    transcript: Transcript, segments: list[Segment], response_format: str, granularities
) -> HttpResponse:
    if response_format == "json":
        duration = float(transcript.duration or 0.0)
        response: HttpResponse = JsonResponse(
            {"text": _text(segments), "usage": {"type": "duration", "seconds": duration}},
            json_dumps_params={"ensure_ascii": False},
        )
    elif response_format == "verbose_json":
        response = JsonResponse(
            verbose_json(transcript, segments, granularities),
            json_dumps_params={"ensure_ascii": False},
        )
    elif response_format == "text":
        response = HttpResponse(_text(segments) + "\n", content_type="text/plain; charset=utf-8")
    else:
        # No title in the meta: OpenAI's WebVTT starts with a bare "WEBVTT" line.
        content, content_type, _ = render(response_format, {}, segments)
        response = HttpResponse(content, content_type=content_type)
    # Where the same result lives in the history and the REST API.
    response["X-Transcript-Id"] = str(transcript.pk)
    response["X-Transcript-Url"] = reverse("api-transcript-detail", args=[transcript.pk])
    return response


def _method_not_allowed(allowed: str) -> JsonResponse:
    error = OpenAIError(
        405,
        gettext("Method not allowed: use %(method)s.") % {"method": allowed},
        headers={"Allow": allowed},
    )
    return error.response()


@csrf_exempt  # authenticated by the bearer token only: no cookie, so nothing to forge
async def transcriptions(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _method_not_allowed("POST")
    started = time.monotonic()
    try:
        user = await authenticate(request)
        try:
            check_size(request)
        except UploadRejected as exc:
            raise OpenAIError(
                exc.status_code, str(exc), param="file", code="file_too_large"
            ) from exc
        fields, upload = await sync_to_async(_parse_body)(request)
        options = _validate(fields, upload)
        transcript = await sync_to_async(_store)(upload, user, options["language"])
        log.info(
            "openai transcription %s for %s: model=%s language=%s format=%s",
            transcript.pk,
            user.get_username(),
            options["model"],
            options["language"],
            options["response_format"],
        )
        row = await _wait(transcript, settings.OPENAI_API_TIMEOUT_S)
        transcript = await Transcript.objects.aget(pk=transcript.pk)
        if row["status"] == Transcript.Status.FAILED:
            raise _failure(transcript)
        segments = [
            s async for s in Segment.objects.filter(transcript=transcript).order_by("index")
        ]
    except OpenAIError as exc:
        return exc.response()
    response = _answer(transcript, segments, options["response_format"], options["granularities"])
    response["openai-processing-ms"] = str(round((time.monotonic() - started) * 1000))
    return response


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "speech-platform"}


@csrf_exempt
async def models(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        await authenticate(request)
    except OpenAIError as exc:
        return exc.response()
    return JsonResponse({"object": "list", "data": [_model(m) for m in model_ids()]})


@csrf_exempt
async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        await authenticate(request)
        if model_id not in model_ids():
            raise OpenAIError(
                404,
                gettext("The model '%(model)s' does not exist; this server offers %(models)s.")
                % {"model": model_id, "models": ", ".join(model_ids())},
                param="model",
                code="model_not_found",
            )
    except OpenAIError as exc:
        return exc.response()
    return JsonResponse(_model(model_id))
