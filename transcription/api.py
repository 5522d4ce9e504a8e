"""REST endpoints for uploads, transcript state and exports."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from keywords.services import summary
from transcription.audio import NotAudioError, probe_audio
from transcription.exports import FORMATS, render
from transcription.models import Transcript
from transcription.pipeline import segment_payload

# Whisper's language codes, plus "auto" to detect.
try:
    from faster_whisper.tokenizer import _LANGUAGE_CODES as WHISPER_LANGUAGES
except ImportError:  # pragma: no cover - the stt extra is always installed here
    WHISPER_LANGUAGES = ("ko", "en")


class UploadRejected(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def check_language(value: str | None) -> str:
    language = (value or settings.DEFAULT_LANGUAGE).strip().lower()
    if language != "auto" and language not in WHISPER_LANGUAGES:
        raise UploadRejected(
            400,
            f"unknown language {language!r}; use a Whisper language code such as ko or en, or auto",
        )
    return language


def check_size(request: Request) -> None:
    limit = settings.UPLOAD_MAX_MB * 1024 * 1024
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Refuse before reading the body when the client already says it is too big.
    if declared > limit + 64 * 1024:
        raise UploadRejected(
            413, f"the upload is larger than the limit of {settings.UPLOAD_MAX_MB} MB"
        )


def create_upload(
    upload, *, owner=None, language: str | None = None, title: str = ""
) -> Transcript:
    """Store an uploaded file as a queued transcript and queue its transcription."""
    from transcription.tasks import transcribe

    if upload is None:
        raise UploadRejected(400, "no file: send the recording as multipart field 'file'")
    if upload.size > settings.UPLOAD_MAX_MB * 1024 * 1024:
        raise UploadRejected(
            413, f"the upload is larger than the limit of {settings.UPLOAD_MAX_MB} MB"
        )
    language = check_language(language)
    try:
        source = upload.temporary_file_path() if hasattr(upload, "temporary_file_path") else upload
        info = probe_audio(source)
    except NotAudioError as exc:
        raise UploadRejected(400, f"{upload.name}: {exc}") from exc
    finally:
        upload.seek(0)
    task_id = str(uuid.uuid4())
    transcript = Transcript.objects.create(
        owner=owner if owner is not None and owner.is_authenticated else None,
        source=Transcript.Source.UPLOAD,
        title=(title or upload.name)[:255],
        language=language,
        duration=info.duration_s or None,
        audio=upload,
        task_id=task_id,
    )
    transaction.on_commit(
        lambda: transcribe.apply_async(args=[str(transcript.pk)], task_id=task_id)
    )
    return transcript


def transcript_payload(transcript: Transcript, *, with_segments: bool = True) -> dict:
    data = {
        "id": str(transcript.pk),
        "url": reverse("api-transcript-detail", args=[transcript.pk]),
        "title": transcript.title,
        "source": transcript.source,
        "status": transcript.status,
        "error": transcript.error,
        "language": transcript.language,
        "duration": transcript.duration,
        "progress": transcript.progress,
        "created_at": transcript.created_at.isoformat(),
        "started_at": transcript.started_at.isoformat() if transcript.started_at else None,
        "finished_at": transcript.finished_at.isoformat() if transcript.finished_at else None,
        "exports": {
            fmt: reverse("api-transcript-export", args=[transcript.pk]) + f"?format={fmt}"
            for fmt in FORMATS
        },
    }
    if with_segments:
        data["segments"] = [segment_payload(s) for s in transcript.segments.all()]
        data["keywords"] = [
            {
                "word": k.word,
                "category": k.category,
                "importance": k.importance,
                "backend": k.backend,
                "segment": k.segment_id,
            }
            for k in transcript.keywords.all()
        ]
        data["keyword_summary"] = summary(transcript)
    return data


class TranscriptListCreate(APIView):
    parser_classes = [MultiPartParser]

    def post(self, request: Request) -> Response:
        try:
            check_size(request)
            with transaction.atomic():
                transcript = create_upload(
                    request.FILES.get("file"),
                    owner=request.user,
                    language=request.data.get("language"),
                    title=request.data.get("title", ""),
                )
        except UploadRejected as exc:
            return Response({"error": str(exc)}, status=exc.status_code)
        body = transcript_payload(transcript, with_segments=False)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class TranscriptDetail(APIView):
    def get(self, request: Request, pk) -> Response:
        transcript = get_object_or_404(Transcript, pk=pk)
        return Response(transcript_payload(transcript))


class TranscriptExport(APIView):
    def get(self, request: Request, pk) -> HttpResponse:
        transcript = get_object_or_404(Transcript, pk=pk)
        fmt = request.query_params.get("format", "txt")
        meta = {
            "id": str(transcript.pk),
            "title": transcript.title,
            "language": transcript.language,
            "duration": transcript.duration,
            "source": transcript.source,
            "created_at": transcript.created_at.isoformat(),
        }
        keywords = [
            {"word": k.word, "category": k.category, "importance": k.importance}
            for k in transcript.keywords.all()
        ]
        try:
            content, content_type, extension = render(
                fmt, meta, transcript.segments.all(), keywords
            )
        except ValueError as exc:
            return Response({"error": str(exc)}, status=400)
        response = HttpResponse(content, content_type=content_type)
        name = f"transcript-{transcript.pk}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
