from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from transcription.models import Segment, Transcript


class Category(models.TextChoices):
    """The original system's categories, with its Korean labels as the stored values."""

    PERSON = "인물", _("인물 (person)")
    PLACE = "장소", _("장소 (place)")
    COMPANY = "회사", _("회사 (company)")
    TECHNOLOGY = "기술", _("기술 (technology)")
    PRODUCT = "제품", _("제품 (product)")
    EQUIPMENT = "장비", _("장비 (equipment)")
    SERVICE = "서비스", _("서비스 (service)")
    OTHER = "기타", _("기타 (other)")


class Backend(models.TextChoices):
    VLLM = "vllm", "vLLM"
    EMBEDDED = "embedded", "Embedded (kiwipiepy)"


class Keyword(models.Model):
    transcript = models.ForeignKey(Transcript, on_delete=models.CASCADE, related_name="keywords")
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.CASCADE, related_name="keywords"
    )
    word = models.CharField(max_length=200)
    category = models.CharField(max_length=10, choices=Category.choices, default=Category.OTHER)
    importance = models.FloatField(default=0.5, help_text="0 to 1")
    backend = models.CharField(max_length=10, choices=Backend.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["transcript", "-importance", "word"]
        indexes = [
            models.Index(fields=["transcript", "category"]),
            models.Index(fields=["word"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(importance__gte=0) & models.Q(importance__lte=1),
                name="keyword_importance_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.word} ({self.category})"


class Summary(models.Model):
    """A transcript's summary: a few sentences, action items and decisions, in the
    transcript's language, from the LLM or the embedded analyser (keywords/summaries.py).

    ``source_hash`` is the hash of the text it summarised (keywords.summaries.text_hash):
    once the segments are edited the two differ, and pages and the API say the summary is
    out of date until it is regenerated.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    transcript = models.OneToOneField(
        Transcript, on_delete=models.CASCADE, related_name="summary", primary_key=True
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    text = models.TextField(blank=True, help_text="A few sentences")
    action_items = models.JSONField(default=list, blank=True, help_text="List of strings")
    decisions = models.JSONField(default=list, blank=True, help_text="List of strings")
    language = models.CharField(max_length=16, blank=True)
    backend = models.CharField(max_length=10, choices=Backend.choices, blank=True)
    source_hash = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the transcript text summarised"
    )
    # Which run may write the result: a regenerate request while one runs starts another,
    # and only the latest one's answer is kept.
    run_id = models.UUIDField(null=True, blank=True, editable=False)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "summaries"

    def __str__(self) -> str:
        return f"summary of {self.transcript_id} ({self.status})"
