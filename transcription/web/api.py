"""REST endpoints for uploads, transcript state, the searchable list, rename, delete,
exports and the recording. Responses are built in payloads.py (with the serializers that
describe them for the OpenAPI schema); uploads go through the batch upload service."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from keywords.models import Summary
from keywords.services import request_summary, summary_of
from transcription.access import visible_transcripts
from transcription.batch import turns
from transcription.batch.uploads import UploadRejected, check_size, create_upload
from transcription.search import matching_segments
from transcription.web.audio import audio_response
from transcription.web.downloads import attachment
from transcription.web.exports import (
    FORMATS,
    MAX_CHARS_RANGE,
    MAX_DURATION_RANGE,
    render,
    subtitle_limits,
)
from transcription.web.payloads import (
    SummarySerializer,
    TranscriptDetailSerializer,
    TranscriptListItemSerializer,
    TranscriptSerializer,
    hit_payload,
    speaker_payload,
    summary_payload,
    transcript_payload,
)
from transcription.web.search_api import (
    SearchPagination,
    TranscriptFilters,
    read_filters,
    transcript_results,
)

# --- the schema: authentication, errors and request bodies ----------------------------


class BearerTokenScheme(OpenApiAuthenticationExtension):
    # drf-spectacular's token scheme also matches this subclass, under the same name
    # ("tokenAuth"); give "Authorization: Bearer <token>" its own entry in the schema.
    target_class = "transcription.access.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token of yours"}


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()


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
    pagination_class = SearchPagination
    serializer_class = TranscriptListItemSerializer

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
            429: OpenApiResponse(
                description="Over your hourly audio budget (UPLOAD_AUDIO_PER_HOUR_S); "
                "Retry-After says when it fits"
            ),
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
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            return Response({"error": str(exc)}, status=exc.status_code, headers=headers)
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
        owner_id, title = transcript.owner_id, str(transcript)
        transcript.delete()  # its audio file goes too, once committed (signals.py)
        # A queued or running upload held one of its owner's turns.
        turns.dispatch(owner_id)
        if isinstance(request.successful_authenticator, SessionAuthentication):
            # The transcript page deleted it and goes to the history, which says so once.
            messages.success(request._request, _("Deleted “%(title)s”.") % {"title": title})
        return Response(status=status.HTTP_204_NO_CONTENT)


class TranscriptExport(APIView):
    @extend_schema(
        summary="Export a transcript",
        parameters=[
            OpenApiParameter(
                "format", str, enum=list(FORMATS), default="txt", description="Export format"
            ),
            OpenApiParameter(
                "max_chars",
                int,
                description="SRT/VTT: characters a subtitle line holds, "
                f"{MAX_CHARS_RANGE[0]} to {MAX_CHARS_RANGE[1]} "
                "(default 42 for Latin text, 20 for Korean)",
            ),
            OpenApiParameter(
                "max_duration",
                float,
                description="SRT/VTT: seconds a subtitle cue may last, "
                f"{MAX_DURATION_RANGE[0]:g} to {MAX_DURATION_RANGE[1]:g} (default 7)",
            ),
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
        # Corrected text, with each segment's speaker (exports.py).
        segments = list(transcript.segments.select_related("speaker"))
        summary = summary_of(transcript, [s.text for s in segments])
        try:
            content, content_type, extension = render(
                fmt,
                meta,
                segments,
                keywords,
                speakers=[speaker_payload(s) for s in transcript.speakers.all()],
                summary=summary,
                **subtitle_limits(request.query_params),
            )
        except ValueError as exc:
            return Response({"error": str(exc)}, status=400)
        response = HttpResponse(content, content_type=content_type)
        # Saved under its title (or source and date), as people name their files.
        response["Content-Disposition"] = attachment(
            str(transcript), extension, fallback=f"transcript-{transcript.pk}"
        )
        return response


class TranscriptSummary(APIView):
    @extend_schema(
        summary="Regenerate a transcript's summary",
        description="Queues a new summary of the transcript as its text is now (after edits, "
        "or to try the LLM again). Answers at once with the summary pending; the transcript's "
        "detail shows it done (or failed) when it is written, and the transcript page gets "
        "a summary event.",
        request=None,
        responses={
            202: SummarySerializer,
            404: OpenApiResponse(description="Not yours"),
            409: ErrorSerializer,
        },
    )
    def post(self, request: Request, pk) -> Response:
        transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
        if transcript.status != transcript.Status.DONE:
            message = _(
                "This transcript is not finished yet; it is summarised when it is done. "
                "Try again once its status is done."
            )
            return Response({"error": message}, status=status.HTTP_409_CONFLICT)
        summary: Summary = request_summary(transcript)
        texts = list(transcript.segments.values_list("text", flat=True))
        return Response(summary_payload(summary, texts), status=status.HTTP_202_ACCEPTED)


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
