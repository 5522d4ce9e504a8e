"""REST endpoints for uploads, transcript state, the searchable list, rename, delete and
exports. Responses are built by ``transcript_payload`` (shared with the upload page and
the WebSocket events); the serializers below describe them for the OpenAPI schema, and a
test keeps the two equal."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from keywords.models import Category
from keywords.services import summary
from transcription.access import visible_transcripts
from transcription.batch.pipeline import segment_payload
from transcription.batch.uploads import UploadRejected, check_size, create_upload
from transcription.models import Transcript
from transcription.search import matching_segments
from transcription.web.exports import FORMATS, render
from transcription.web.history import audio_response
from transcription.web.search_api import (
    HitSerializer,
    SearchPagination,
    TranscriptFilters,
    hit_payload,
    read_filters,
    transcript_results,
)


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
        "audio": reverse("api-transcript-audio", args=[transcript.pk])
        if transcript.audio
        else None,
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


# --- serializers: the shapes above, for the OpenAPI schema ------------------------------


class BearerTokenScheme(OpenApiAuthenticationExtension):
    # drf-spectacular's token scheme also matches this subclass, under the same name
    # ("tokenAuth"); give "Authorization: Bearer <token>" its own entry in the schema.
    target_class = "transcription.access.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token of yours"}


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()


class TranscriptSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField(help_text="This transcript in the API")
    title = serializers.CharField(allow_blank=True)
    source = serializers.ChoiceField(choices=Transcript.Source.choices)
    status = serializers.ChoiceField(choices=Transcript.Status.choices)
    error = serializers.CharField(allow_blank=True)
    language = serializers.CharField(allow_blank=True)
    duration = serializers.FloatField(allow_null=True, help_text="Seconds of audio")
    progress = serializers.FloatField(help_text="Share of the audio processed, 0 to 1")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    exports = serializers.DictField(
        child=serializers.CharField(), help_text="Export URL per format: " + ", ".join(FORMATS)
    )
    audio = serializers.CharField(
        allow_null=True,
        help_text="The stored recording (the upload, or a live session's WAV) in the API; "
        "null when none was kept",
    )


class TranscriptListItemSerializer(TranscriptSerializer):
    matches = HitSerializer(
        many=True,
        required=False,
        help_text="With q: the first segments that contain a searched word, highlighted",
    )


class SegmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    index = serializers.IntegerField()
    start = serializers.FloatField()
    end = serializers.FloatField()
    text = serializers.CharField()


class KeywordSerializer(serializers.Serializer):
    word = serializers.CharField()
    category = serializers.ChoiceField(choices=Category.choices)
    importance = serializers.FloatField()
    backend = serializers.CharField()
    segment = serializers.IntegerField(allow_null=True)


class KeywordSummarySerializer(serializers.Serializer):
    word = serializers.CharField()
    category = serializers.ChoiceField(choices=Category.choices)
    count = serializers.IntegerField()
    importance = serializers.FloatField()


class TranscriptDetailSerializer(TranscriptSerializer):
    segments = SegmentSerializer(many=True)
    keywords = KeywordSerializer(many=True)
    keyword_summary = KeywordSummarySerializer(many=True)


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The recording (any format ffmpeg decodes)")
    language = serializers.CharField(
        required=False, help_text="Whisper language code (ko, en, ...) or auto"
    )
    title = serializers.CharField(required=False, help_text="Defaults to the file name")


class RenameSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=255, allow_blank=True, trim_whitespace=True)


# --- views ---------------------------------------------------------------------------


class TranscriptListCreate(GenericAPIView):
    parser_classes = [MultiPartParser]
    throttle_scope = "uploads"
    pagination_class = SearchPagination
    serializer_class = TranscriptListItemSerializer

    def get_throttles(self):
        from rest_framework.throttling import ScopedRateThrottle

        # Only uploads are rate-limited; reading the history is not.
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        summary="List and search transcripts",
        description="Your transcripts (everyone's for staff), newest first. With q, only "
        "those where every word of q is said or in the title, each with its first "
        "matching segments.",
        parameters=[TranscriptFilters],
        responses=TranscriptListItemSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters = read_filters(TranscriptFilters, request.query_params)
        results, terms = transcript_results(visible_transcripts(request.user), filters)
        page = self.paginate_queryset(results)
        items = [transcript_payload(t, with_segments=False) for t in page]
        if terms:
            # One query for the snippets of the whole page.
            found = matching_segments([t.pk for t in page], terms)
            for item, transcript in zip(items, page, strict=True):
                item["matches"] = [hit_payload(s, terms) for s in found.get(transcript.pk, [])]
        return self.get_paginated_response(items)

    @extend_schema(
        summary="Upload a recording",
        description="Stores the file and queues its transcription; poll the returned url.",
        request={"multipart/form-data": UploadSerializer},
        responses={
            202: TranscriptSerializer,
            400: ErrorSerializer,
            413: ErrorSerializer,
            429: OpenApiResponse(description="Too many uploads"),
        },
    )
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
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        summary="A transcript with its segments and keywords",
        responses={200: TranscriptDetailSerializer, 404: OpenApiResponse(description="Not yours")},
    )
    def get(self, request: Request, pk) -> Response:
        transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
        return Response(transcript_payload(transcript))

    @extend_schema(
        summary="Rename a transcript",
        request=RenameSerializer,
        responses={
            200: TranscriptDetailSerializer,
            400: ErrorSerializer,
            404: OpenApiResponse(description="Not yours"),
        },
    )
    def patch(self, request: Request, pk) -> Response:
        transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
        rename = RenameSerializer(data=request.data)
        if not rename.is_valid():
            errors = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in rename.errors.items())
            return Response({"error": errors}, status=400)
        transcript.title = rename.validated_data["title"]
        transcript.save(update_fields=["title"])
        return Response(transcript_payload(transcript))

    @extend_schema(
        summary="Delete a transcript",
        description="Deletes the transcript, its segments and keywords, and its stored audio.",
        responses={204: None, 404: OpenApiResponse(description="Not yours")},
    )
    def delete(self, request: Request, pk) -> Response:
        transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
        transcript.delete()  # its audio file goes too, once committed (signals.py)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TranscriptExport(APIView):
    @extend_schema(
        summary="Export a transcript",
        parameters=[
            OpenApiParameter(
                "format", str, enum=list(FORMATS), default="txt", description="Export format"
            )
        ],
        responses={
            (200, "application/x-subrip"): OpenApiTypes.STR,
            (200, "text/vtt"): OpenApiTypes.STR,
            (200, "text/plain"): OpenApiTypes.STR,
            (200, "application/json"): OpenApiTypes.OBJECT,
            400: ErrorSerializer,
            404: OpenApiResponse(description="Not yours"),
        },
    )
    def get(self, request: Request, pk) -> HttpResponse:
        transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
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


class AnyAcceptNegotiation(BaseContentNegotiation):
    """A media file answers whatever the client accepts (an ``<audio>`` element asks for
    ``audio/*``); the error bodies still go out as JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class TranscriptAudio(APIView):
    content_negotiation_class = AnyAcceptNegotiation

    @extend_schema(
        summary="Download a transcript's recording",
        description="The stored audio: the uploaded file as it was sent, or a live session's "
        "16 kHz WAV. One byte range (`Range: bytes=a-b`) is answered with 206.",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="Not yours, or no audio was kept"),
            416: OpenApiResponse(description="The range starts past the end of the file"),
        },
    )
    def get(self, request: Request, pk) -> HttpResponse:
        transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
        return audio_response(request, transcript)
