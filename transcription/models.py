from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from transcription.search import SearchDocumentField, SegmentManager


def local_minute(moment) -> str:
    """``2026-11-29 14:05``: a moment as every page shows it (``date:"Y-m-d H:i"``), in the
    pages' time zone (``TIME_ZONE``), not UTC."""
    if moment is None:
        return ""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


class Transcript(models.Model):
    """One recording, live or uploaded, cut into ordered segments."""

    class Source(models.TextChoices):
        LIVE = "live", _("Live")
        UPLOAD = "upload", _("Upload")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class ErrorCode(models.TextChoices):
        """Why a transcript failed, for programs: the message is for people and may change.

        Blank on rows that have not failed (and on failures recorded before codes existed).
        """

        # What was sent is at fault.
        NOT_AUDIO = "not_audio", _("Not an audio or video file")
        DECODE_FAILED = "decode_failed", _("The audio could not be decoded")
        TOO_LONG = "too_long", _("The recording is longer than the limit")
        # The server is.
        NO_AUDIO = "no_audio", _("The stored audio is missing")
        TIME_LIMIT = "time_limit", _("The transcription took too long")
        WORKER_LOST = "worker_lost", _("No worker finished it")
        INTERNAL = "internal", _("Internal error")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Nullable so that rows made by operators or before accounts existed have a home;
    # the history shows each user only their own.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="transcripts",
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    title = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=16, choices=ErrorCode.choices, blank=True)
    warning = models.TextField(
        blank=True, help_text="Something to know about a finished transcript (a truncated file)"
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="How many times a worker has started on it"
    )
    dispatched_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When its task was sent to the workers; uploads wait for their owner's "
        "turn before that (batch/turns.py)",
    )
    language = models.CharField(
        max_length=16, blank=True, help_text="Requested or detected language code, e.g. ko"
    )
    duration = models.FloatField(null=True, blank=True, help_text="Seconds of audio")
    progress = models.FloatField(default=0.0, help_text="Share of the audio processed, 0 to 1")
    processed_s = models.FloatField(
        default=0.0, help_text="Audio up to here is transcribed and stored; a retry resumes here"
    )
    task_id = models.CharField(
        max_length=64, blank=True, help_text="Celery task that owns the transcription"
    )
    audio = models.FileField(upload_to="audio/%Y/%m/%d/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.title or f"{self.get_source_display()} {local_minute(self.created_at)}"

    def get_absolute_url(self) -> str:
        return reverse("transcript", args=[self.pk])

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments.all())


class Speaker(models.Model):
    """Someone who speaks in a transcript: a machine label a diarization backend wrote
    (``S1``), a name people gave, or both. Segments point to it; renaming the speaker renames
    every segment's."""

    transcript = models.ForeignKey(Transcript, on_delete=models.CASCADE, related_name="speakers")
    label = models.CharField(
        max_length=32, blank=True, help_text="As a diarization backend wrote it (S1), or blank"
    )
    name = models.CharField(max_length=100, blank=True, help_text="What people call them")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["transcript", "id"]
        constraints = [
            # A backend's label and a person's name each mean one speaker of the transcript.
            models.UniqueConstraint(
                fields=["transcript", "label"],
                condition=~models.Q(label=""),
                name="speaker_unique_label",
            ),
            models.UniqueConstraint(
                fields=["transcript", "name"],
                condition=~models.Q(name=""),
                name="speaker_unique_name",
            ),
            models.CheckConstraint(
                condition=~models.Q(label="", name=""), name="speaker_label_or_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.label


class Segment(models.Model):
    """A stretch of speech with its text and Whisper's own evidence for it.

    People may correct ``text``: the machine's text is then kept in ``original_text`` (set
    on the first edit, never changed after; ``edited_at`` is null until then) and ``version``
    counts the
    edits, so that two people editing the same version cannot overwrite each other."""

    transcript = models.ForeignKey(Transcript, on_delete=models.CASCADE, related_name="segments")
    index = models.PositiveIntegerField(help_text="Position in the transcript, from 0")
    start = models.FloatField(help_text="Seconds from the start of the audio")
    end = models.FloatField(help_text="Seconds from the start of the audio")
    text = models.TextField()
    avg_logprob = models.FloatField(null=True, blank=True)
    no_speech_prob = models.FloatField(null=True, blank=True)
    words = models.JSONField(
        null=True, blank=True, help_text='Optional [{"word", "start", "end", "probability"}]'
    )
    original_text = models.TextField(
        blank=True, help_text="The machine's text, kept on the first edit (see edited_at)"
    )
    version = models.PositiveIntegerField(default=0, help_text="Edits of the text so far")
    # Null: never edited (the machine's text could be empty, so original_text cannot say).
    edited_at = models.DateTimeField(null=True, blank=True, help_text="Last correction")
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    speaker = models.ForeignKey(
        Speaker, null=True, blank=True, on_delete=models.SET_NULL, related_name="segments"
    )
    # Search (transcription/search.py): the Hangul bigrams and Latin words of ``text`` as a
    # tsvector, computed in Python on every save; GIN-indexed.
    search_vector = SearchDocumentField(source="text")

    objects = SegmentManager()

    class Meta:
        ordering = ["transcript", "index"]
        indexes = [GinIndex(fields=["search_vector"], name="segment_search_vector")]
        constraints = [
            # Retried tasks rewrite the same index instead of adding a duplicate.
            models.UniqueConstraint(fields=["transcript", "index"], name="segment_unique_index"),
            models.CheckConstraint(
                condition=models.Q(end__gte=models.F("start")), name="segment_end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.start:.2f}-{self.end:.2f}] {self.text[:60]}"

    def save(self, *args, **kwargs) -> None:
        # save(update_fields=["text"]) must rewrite the search column with the text.
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "text" in update_fields:
            kwargs["update_fields"] = {*update_fields, "search_vector"}
        # Rows are loaded without it (SegmentManager), and Django saves only the loaded
        # fields of such a row; marking it loaded lets pre_save recompute it.
        if "search_vector" not in self.__dict__:
            self.search_vector = ""
        super().save(*args, **kwargs)

    @property
    def edited(self) -> bool:
        return self.edited_at is not None
