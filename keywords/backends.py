"""Which keyword backend is in use and whether the LLM answers.

The extractors themselves (vLLM client, embedded Korean extractor) live beside
this module; this part only answers the status questions that pages and health
checks ask, cheaply: the probe result is cached for a few seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from django.conf import settings

PROBE_CACHE_S = 10.0
_probe_cache: dict[str, tuple[float, LlmStatus]] = {}


@dataclass(frozen=True)
class LlmStatus:
    reachable: bool
    models: tuple[str, ...] = ()
    error: str = ""

    @property
    def serves_model(self) -> bool:
        return self.reachable and settings.VLLM_MODEL in self.models


def probe_llm(*, timeout: float = 2.0, use_cache: bool = True) -> LlmStatus:
    """Ask the OpenAI-compatible server which models it serves (``GET /models``)."""
    url = settings.VLLM_API_URL
    now = time.monotonic()
    cached = _probe_cache.get(url)
    if use_cache and cached and now - cached[0] < PROBE_CACHE_S:
        return cached[1]
    try:
        response = httpx.get(
            f"{url}/models",
            timeout=timeout,
            headers={"Authorization": f"Bearer {settings.VLLM_API_KEY}"},
        )
        response.raise_for_status()
        models = tuple(item.get("id", "") for item in response.json().get("data", []))
        status = LlmStatus(True, models)
        if not status.serves_model:
            status = LlmStatus(True, models, f"server does not serve {settings.VLLM_MODEL}")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        status = LlmStatus(False, (), f"{type(exc).__name__}: {exc}"[:300])
    _probe_cache[url] = (now, status)
    return status


def active_backend(llm: LlmStatus | None = None) -> str:
    """``vllm`` or ``embedded``: what keyword extraction uses right now."""
    if settings.KEYWORD_BACKEND == "embedded":
        return "embedded"
    if settings.KEYWORD_BACKEND == "vllm":
        return "vllm"
    llm = llm or probe_llm()
    return "vllm" if llm.serves_model else "embedded"
