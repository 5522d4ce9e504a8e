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
