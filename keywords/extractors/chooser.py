"""``extract_keywords``: the one entry point callers use, whatever the backend.

``KEYWORD_BACKEND`` decides: ``embedded`` always uses kiwipiepy; ``vllm`` asks
the LLM; ``auto`` asks the LLM when the server lists ``VLLM_MODEL`` (the probe
in ``keywords.backends``, cached for seconds) and uses kiwipiepy otherwise.
Whenever the LLM cannot answer, the embedded extractor does, so a segment never
ends up without keywords because the LLM was down; each item's ``backend``
says which one produced it.
"""

from __future__ import annotations

import logging
import threading

from keywords.backends import record_answer
from keywords.extractors.base import Extractor, KeywordItem
from keywords.extractors.embedded import EmbeddedExtractor
from keywords.extractors.vllm import LlmUnavailable, VllmExtractor
from keywords.llm import LlmClient, default_client, metered, wants_llm

log = logging.getLogger(__name__)

_embedded = EmbeddedExtractor()
_llm_extractors: dict[int, VllmExtractor] = {}
_llm_lock = threading.Lock()

__all__ = ["default_llm_extractor", "extract_keywords", "wants_llm"]


def default_llm_extractor() -> VllmExtractor:
    """The process's keyword extractor over the shared LLM client of the current settings
    (reused: the client pools connections, and summaries use the same one)."""
    client: LlmClient = default_client()
    with _llm_lock:
        extractor = _llm_extractors.get(id(client))
        if extractor is None or extractor.client is not client:
            extractor = _llm_extractors[id(client)] = VllmExtractor(client=client)
        return extractor


def extract_keywords(
    text: str,
    language: str | None = None,
    max_items: int = 10,
    *,
    llm: Extractor | None = None,
    embedded: Extractor | None = None,
) -> list[KeywordItem]:
    """Keywords of ``text``, best first, from the backend ``KEYWORD_BACKEND`` picks.

    ``llm`` and ``embedded`` replace the default extractors (tests, tuning).
    """
    if max_items <= 0 or not text or not text.strip():
        return []
    fallback = embedded or _embedded
    if wants_llm():
        try:
            with metered("vllm"):
                items = (llm or default_llm_extractor()).extract(
                    text, language=language, max_items=max_items
                )
            # What answered, for /api/config (keywords.backends.answering_backend).
            record_answer("vllm")
            return items
        except LlmUnavailable as exc:
            log.warning("LLM keyword extraction unavailable, using embedded: %s", exc)
        except Exception:
            # A bug in the LLM path must not cost a transcript its keywords; the
            # traceback is logged so it still gets fixed.
            log.exception("LLM keyword extraction failed, using embedded")
    with metered("embedded"):
        items = fallback.extract(text, language=language, max_items=max_items)
    record_answer("embedded")
    return items
