from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from keywords.models import Keyword
from transcription.editing import note_correction
from transcription.models import Segment, Speaker, Transcript


class SegmentInline(admin.TabularInline):
    model = Segment
    extra = 0
    fields = ("index", "start", "end", "text", "avg_logprob", "no_speech_prob")
    # Corrected on the segment's own page (or the transcript page), where a correction is
    # recorded as one; here the text is shown only.
    readonly_fields = ("text",)
    ordering = ("index",)
    show_change_link = True


class SpeakerInline(admin.TabularInline):
    model = Speaker
    extra = 0
    fields = ("label", "name")


class KeywordInline(admin.TabularInline):
    model = Keyword
    extra = 0
    fields = ("word", "category", "importance", "backend", "segment")
    raw_id_fields = ("segment",)


@admin.register(Transcript)
class TranscriptAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "owner",
        "source",
        "status",
        "language",
        "duration",
        "segment_count",
        "created_at",
    )
    list_filter = ("source", "status", "language", "created_at")
    search_fields = ("title", "id", "segments__text", "owner__username")
    date_hierarchy = "created_at"
    readonly_fields = ("id", "created_at", "started_at", "finished_at", "progress", "recording")
    # The stored file is private (MEDIA_ROOT is not served): shown as a player through the
    # transcript's audio view, never edited or linked by its path.
    exclude = ("audio",)
    raw_id_fields = ("owner",)
    inlines = (SpeakerInline, SegmentInline, KeywordInline)
    list_select_related = ("owner",)

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(_segment_count=Count("segments", distinct=True))
        )

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False if search_term else may_have_duplicates

    @admin.display(description=gettext_lazy("recording"))
    def recording(self, obj: Transcript) -> str:
        if not obj.audio:
            return _("none kept")
        return format_html(
            '<audio controls preload="none" src="{}"></audio> <code>{}</code>',
            reverse("transcript-audio", args=[obj.pk]),
            obj.audio.name,
        )

    @admin.display(description=gettext_lazy("segments"), ordering="_segment_count")
    def segment_count(self, obj: Transcript) -> int:
        return obj._segment_count

    actions = ("rerun_keywords", "retranscribe", "retranscribe_discarding_corrections")

    @admin.action(description=gettext_lazy("Re-run keyword extraction"))
    def rerun_keywords(self, request: HttpRequest, queryset: QuerySet[Transcript]) -> None:
        from keywords.tasks import extract_transcript_keywords

        done = list(queryset.filter(status=Transcript.Status.DONE).values_list("pk", flat=True))
        skipped = queryset.exclude(status=Transcript.Status.DONE).count()
        for pk in done:
            # The extractor replaces a transcript's keywords, so running it again is safe.
            extract_transcript_keywords.delay(str(pk))
        if done:
            self.message_user(
                request,
                _("Queued keyword extraction for %(count)d transcript(s).") % {"count": len(done)},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                _(
                    "Skipped %(count)d transcript(s) that are not done: keywords need the text "
                    "first."
                )
                % {"count": skipped},
                messages.WARNING,
            )

    @admin.action(description=gettext_lazy("Re-transcribe (transcripts with stored audio)"))
    def retranscribe(self, request: HttpRequest, queryset: QuerySet[Transcript]) -> None:
        self._retranscribe(request, queryset, keep_corrections=True)

    @admin.action(
        description=gettext_lazy("Re-transcribe, discarding people's corrections of the text")
    )
    def retranscribe_discarding_corrections(
        self, request: HttpRequest, queryset: QuerySet[Transcript]
    ) -> None:
        self._retranscribe(request, queryset, keep_corrections=False)

    def _retranscribe(
        self, request: HttpRequest, queryset: QuerySet[Transcript], *, keep_corrections: bool
    ) -> None:
        from transcription.tasks import transcribe

        queued, no_audio, running, corrected = 0, [], [], []
        edited = set(
            Segment.objects.filter(transcript__in=queryset, edited_at__isnull=False)
            .values_list("transcript_id", flat=True)
            .distinct()
        )
        for transcript in queryset:
            if not transcript.audio:
                # A live session recorded with LIVE_KEEP_AUDIO off: nothing to transcribe.
                no_audio.append(str(transcript))
                continue
            if transcript.status == Transcript.Status.RUNNING:
                # Its task is still writing segments; a second one would interleave with it.
                running.append(str(transcript))
                continue
            if keep_corrections and transcript.pk in edited:
                # New segments cannot carry corrections made to the old ones: losing a
                # person's work takes the action that says so.
                corrected.append(str(transcript))
                continue
            task_id = str(uuid.uuid4())
            with transaction.atomic():
                # A fresh start: the pipeline resumes after processed_s and the last segment
                # index, so both go back to zero along with the old rows.
                Keyword.objects.filter(transcript=transcript).delete()
                Segment.objects.filter(transcript=transcript).delete()
                Transcript.objects.filter(pk=transcript.pk).update(
                    status=Transcript.Status.QUEUED,
                    progress=0.0,
                    processed_s=0.0,
                    error="",
                    error_code="",
                    warning="",
                    attempts=0,
                    task_id=task_id,
                    # An operator's choice, sent at once rather than at the owner's turn.
                    dispatched_at=timezone.now(),
                    started_at=None,
                    finished_at=None,
                )
                # Queued only once the reset is committed, or the worker could find the old row.
                transaction.on_commit(
                    lambda pk=str(transcript.pk), task_id=task_id: transcribe.apply_async(
                        args=[pk], task_id=task_id
                    )
                )
            queued += 1
        if queued:
            self.message_user(
                request,
                _("Queued re-transcription of %(count)d transcript(s).") % {"count": queued},
                messages.SUCCESS,
            )
        if corrected:
            self.message_user(
                request,
                _(
                    "Skipped %(count)d transcript(s) whose text people corrected, as "
                    "re-transcribing replaces every segment: %(names)s. To replace them anyway, "
                    "use “Re-transcribe, discarding people's corrections of the text”."
                )
                % {"count": len(corrected), "names": ", ".join(corrected[:10])},
                messages.WARNING,
            )
        if no_audio:
            self.message_user(
                request,
                _("Skipped %(count)d transcript(s) without stored audio: %(names)s")
                % {"count": len(no_audio), "names": ", ".join(no_audio[:10])},
                messages.WARNING,
            )
        if running:
            self.message_user(
                request,
                _("Skipped %(count)d transcript(s) still being transcribed: %(names)s")
                % {"count": len(running), "names": ", ".join(running[:10])},
                messages.WARNING,
            )


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("transcript", "index", "start", "end", "text")
    search_fields = ("text",)
    list_select_related = ("transcript",)
    raw_id_fields = ("transcript", "speaker")
    # An operator's correction is recorded as one on the transcript page is (editing.py).
    readonly_fields = ("original_text", "version", "edited_at", "edited_by")

    def save_model(self, request, obj, form, change):
        if change and "text" in form.changed_data:
            note_correction(obj, form.initial.get("text", ""), request.user)
        super().save_model(request, obj, form, change)
