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
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from keywords.backends import probe_llm, record_answer
from keywords.extractors.base import Extractor, KeywordItem
from keywords.extractors.embedded import EmbeddedExtractor
from keywords.extractors.vllm import LlmUnavailable, VllmExtractor
from workers import metrics

log = logging.getLogger(__name__)

_embedded = EmbeddedExtractor()
_llm_clients: dict[tuple[str, str, str, float], VllmExtractor] = {}
_llm_lock = threading.Lock()


def default_llm_extractor() -> VllmExtractor:
    """The process's vLLM client for the current settings (reused: it pools connections)."""
    key = (
        settings.VLLM_API_URL,
        settings.VLLM_MODEL,
        settings.VLLM_API_KEY,
        float(settings.VLLM_TIMEOUT_S),
    )
    with _llm_lock:
        client = _llm_clients.get(key)
        if client is None:
            client = _llm_clients[key] = VllmExtractor(
                api_url=key[0], model=key[1], api_key=key[2], timeout_s=key[3]
            )
        return client


def wants_llm() -> bool:
    """Whether ``KEYWORD_BACKEND`` sends the next text to the LLM first."""
    backend = settings.KEYWORD_BACKEND
    if backend == "embedded":
        return False
    if backend == "vllm":
        return True
    return probe_llm().serves_model


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
            with _call("vllm"):
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
    with _call("embedded"):
        items = fallback.extract(text, language=language, max_items=max_items)
    record_answer("embedded")
    return items


@contextmanager
def _call(backend: str) -> Iterator[None]:
    """Count one extraction asked of ``backend`` and time it (stt_llm_calls_total,
    stt_llm_call_duration_seconds): success, or failure when it raises."""
    started = time.monotonic()
    try:
        yield
    except BaseException:
        metrics.LLM_CALLS.labels(backend, "failure").inc()
        raise
    else:
        metrics.LLM_CALLS.labels(backend, "success").inc()
    finally:
        metrics.LLM_DURATION.labels(backend).observe(time.monotonic() - started)
