"""Keyword extractors: the vLLM client, the embedded kiwipiepy extractor, and the
chooser that picks between them (``extract_keywords``)."""

from __future__ import annotations

from keywords.extractors.base import (
    CATEGORIES,
    Extractor,
    KeywordItem,
    validate_items,
)
from keywords.extractors.chooser import extract_keywords
from keywords.extractors.embedded import EmbeddedExtractor
from keywords.extractors.vllm import LlmUnavailable, VllmExtractor

__all__ = [
    "CATEGORIES",
    "EmbeddedExtractor",
    "Extractor",
    "KeywordItem",
    "LlmUnavailable",
    "VllmExtractor",
    "extract_keywords",
    "validate_items",
]
