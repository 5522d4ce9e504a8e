"""Which keyword backend is in use and whether the LLM answers.

The extractors themselves (vLLM client, embedded Korean extractor) live beside
this module; this part only answers the status questions that pages and health
checks ask, cheaply: the probe result is cached for a few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)

PROBE_CACHE_S = 10.0
_probe_cache: dict[str, tuple[float, LlmStatus]] = {}
# Which backend last gave keywords, written by the keyword workers to the shared cache (Redis)
# and read by /api/config; older than this, it says nothing about now.
ANSWER_KEY = "keywords:last_answer"
ANSWER_FRESH_S = 120
# A worker writes at most this often while the answering backend stays the same.
ANSWER_WRITE_EVERY_S = 10.0
_answer_written: dict[str, float] = {}
_answer_lock = threading.Lock()


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


def record_answer(backend: str) -> None:
    """Note that ``backend`` (``vllm`` or ``embedded``) just gave keywords. Never raises: a
    Redis outage must not cost a segment its keywords."""
    now = time.monotonic()
    with _answer_lock:
        if (
            len(_answer_written) == 1
            and backend in _answer_written
            and now - _answer_written[backend] < ANSWER_WRITE_EVERY_S
        ):
            return
        _answer_written.clear()
        _answer_written[backend] = now
    try:
        cache.set(ANSWER_KEY, {"backend": backend, "at": time.time()}, timeout=ANSWER_FRESH_S)
    except Exception as exc:  # a status note, never worth a failed task
        log.debug("could not record the keyword backend: %s", exc)


def forget_answers() -> None:
    """Forget what this process wrote (tests, which start each with an empty cache)."""
    with _answer_lock:
        _answer_written.clear()


def last_answer() -> dict | None:
    """``{"backend", "at"}`` of the latest keywords within ``ANSWER_FRESH_S``, or None."""
    try:
        answer = cache.get(ANSWER_KEY)
    except Exception:  # Redis down: nothing is known
        return None
    if not isinstance(answer, dict) or answer.get("backend") not in ("vllm", "embedded"):
        return None
    if time.time() - float(answer.get("at", 0)) > ANSWER_FRESH_S:
        return None
    return answer


def answering_backend(llm: LlmStatus | None = None, answer: dict | None = None) -> str:
    """``vllm`` or ``embedded``: the backend that is giving keywords now, which is not always
    the one ``KEYWORD_BACKEND`` asks for. Whenever the LLM cannot answer, the embedded
    extractor does (keywords/extractors/chooser.py): so with the LLM not serving the model it
    is ``embedded`` whatever the setting, and when the LLM is listed but its answers fail (the
    circuit breaker open, errors) the workers' latest answer says so. With no recent answer,
    the backend the chooser would pick."""
    if settings.KEYWORD_BACKEND == "embedded":
        return "embedded"
    llm = llm or probe_llm()
    if not llm.serves_model:
        return "embedded"
    if answer is not None:
        return answer["backend"]
    return "vllm"
