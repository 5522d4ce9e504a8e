"""Keyword extraction by an LLM behind vLLM's OpenAI-compatible server.

One ``POST {VLLM_API_URL}/chat/completions`` per text, temperature 0, with the
answer forced into a JSON schema by vLLM's structured outputs. The schema goes
in the standard OpenAI field ``response_format`` (type ``json_schema``): vLLM
has accepted it since 2024 (0.6 series) and still does after v0.12 removed the
older ``guided_json`` extra parameter (docs.vllm.ai, "Structured Outputs"), and
other OpenAI-compatible servers understand it too. ``guided_json`` is not sent
as well: a current server ignores it with a warning on every request or a
stricter one rejects it, and an old server would get two constraints at once.

Failures raise ``LlmUnavailable`` so the caller can fall back to the embedded
extractor. Time-outs, connection errors and HTTP 429/500/502/503/504 are
retried a bounded number of times with exponential backoff; anything else
fails at once. A per-server circuit breaker stops calling a server that keeps
failing and lets one trial request through after a cool-down.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from keywords.extractors.base import BACKEND_VLLM, CATEGORIES, KeywordItem, validate_items

log = logging.getLogger(__name__)

DEFAULT_MAX_RETRIES = 2
DEFAULT_BACKOFF_S = 0.5
DEFAULT_BACKOFF_MAX_S = 4.0
DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_COOLDOWN_S = 30.0

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Transport errors worth another try: the server is starting, restarting or busy.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.ConnectError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)

SYSTEM_PROMPT = """당신은 음성 인식으로 받아 적은 텍스트에서 핵심 키워드를 뽑는 도우미입니다.

규칙:
1. 텍스트의 핵심 명사만 고르세요: 인물, 장소, 회사, 기술, 제품, 장비, 서비스의 이름과 내용을 대표하는 중요한 명사.
2. 동사, 형용사, 부사, 조사, 대명사, 감탄사는 절대 넣지 마세요. 예: 하다, 있다, 그리고, 저는, 우리, 이것, 그것, 네, 아, 음.
3. 숫자만 있는 말, 한 글자짜리 말, 날짜와 시간 표현은 넣지 마세요.
4. word에는 텍스트에 나온 표기를 그대로 쓰되 조사는 떼세요. 예: "삼성전자의" -> "삼성전자". 텍스트에 없는 말을 지어내지 마세요.
5. category는 인물, 장소, 회사, 기술, 제품, 장비, 서비스, 기타 중 하나입니다. 확실하지 않으면 기타를 쓰세요.
6. importance는 0과 1 사이의 숫자로, 텍스트에서 중요한 키워드일수록 큽니다.
7. 키워드는 최대 {max_items}개입니다. 알맞은 명사가 없으면 빈 목록을 돌려주세요.

JSON으로만 답하세요: {{"keywords": [{{"word": "...", "category": "...", "importance": 0.0}}]}}"""


class LlmUnavailable(Exception):
    """The LLM gave no usable answer; the caller should use the embedded extractor."""


def keyword_schema(max_items: int) -> dict[str, Any]:
    """JSON schema of the answer: {"keywords": [{"word", "category", "importance"}]}.

    Kept to plain features (enum, required, maxItems, number bounds) that every
    vLLM structured-output backend handles; the post-check enforces the rest.
    """
    return {
        "type": "object",
        "properties": {
            "keywords": {
                "type": "array",
                "maxItems": max_items,
                "items": {
                    "type": "object",
                    "properties": {
                        "word": {"type": "string"},
                        "category": {"type": "string", "enum": list(CATEGORIES)},
                        "importance": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "required": ["word", "category", "importance"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["keywords"],
        "additionalProperties": False,
    }


class CircuitBreaker:
    """Stops calls to a failing server for a while; thread-safe.

    Closed: calls pass. After ``failure_threshold`` consecutive failures it
    opens: calls fail fast for ``cooldown_s``. Then it is half-open: one trial
    call passes (others still fail fast); its success closes the breaker, its
    failure opens it for another cool-down.
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __init__(
        self,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        if self._clock() - self._opened_at < self.cooldown_s:
            return self.OPEN
        return self.HALF_OPEN

    def allow(self) -> bool:
        """Whether a call may go out now (claims the trial slot when half-open)."""
        with self._lock:
            state = self._state()
            if state == self.CLOSED:
                return True
            if state == self.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_in_flight = False

    def reset(self) -> None:
        self.record_success()


_breakers: dict[tuple[str, str], CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(api_url: str, model: str) -> CircuitBreaker:
    """The process-wide breaker of one server and model, shared by all its clients."""
    with _breakers_lock:
        breaker = _breakers.get((api_url, model))
        if breaker is None:
            breaker = _breakers[(api_url, model)] = CircuitBreaker()
        return breaker


def reset_breakers() -> None:
    with _breakers_lock:
        _breakers.clear()


class VllmExtractor:
    """Keywords from an LLM served by vLLM (OpenAI-compatible Chat Completions).

    Settings (``VLLM_API_URL``, ``VLLM_MODEL``, ``VLLM_API_KEY``,
    ``VLLM_TIMEOUT_S``) are read when the object is made unless given here.
    """

    name = BACKEND_VLLM

    def __init__(
        self,
        *,
        api_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if None in (api_url, model, api_key, timeout_s):
            from django.conf import settings

            api_url = api_url if api_url is not None else settings.VLLM_API_URL
            model = model if model is not None else settings.VLLM_MODEL
            api_key = api_key if api_key is not None else settings.VLLM_API_KEY
            timeout_s = timeout_s if timeout_s is not None else settings.VLLM_TIMEOUT_S
        self.api_url = str(api_url).rstrip("/")
        self.model = str(model)
        self.api_key = str(api_key)
        self.timeout_s = float(timeout_s)
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.breaker = breaker or breaker_for(self.api_url, self.model)
        self._sleep = sleep
        self._client_lock = threading.Lock()
        self._client: httpx.Client | None = None

    def extract(
        self, text: str, *, language: str | None = None, max_items: int = 10
    ) -> list[KeywordItem]:
        if max_items <= 0 or not text or not text.strip():
            return []
        if not self.breaker.allow():
            raise LlmUnavailable(f"circuit open for {self.api_url} (cooling down)")
        try:
            response = self._post_with_retries(self._request_body(text, language, max_items))
        except Exception:
            # Any exception, not only LlmUnavailable: a half-open breaker must
            # get its trial slot back or it would never close again.
            self.breaker.record_failure()
            raise
        # The server answered: it is up, whatever the quality of this answer.
        self.breaker.record_success()
        raw_items = _parse_answer(response)
        items = validate_items(text, raw_items, self.name)
        if raw_items and not items:
            # Every keyword was invented, misspelt or a verb: the embedded
            # extractor will do better on this text than an empty list.
            raise LlmUnavailable("no keyword in the LLM's answer passed the checks")
        return items[:max_items]

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                # One pooled client per extractor: the keyword worker calls the
                # same server for every segment.
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 5.0)),
                    headers={"Authorization": f"Bearer {self.api_key}"},
                )
            return self._client

    def _request_body(self, text: str, language: str | None, max_items: int) -> dict[str, Any]:
        user = f"언어: {language}\n\n텍스트:\n{text}" if language else f"텍스트:\n{text}"
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT.format(max_items=max_items)},
                {"role": "user", "content": user},
            ],
            "temperature": 0,
            # Room for max_items short entries; a cut-off answer is invalid JSON.
            "max_tokens": 64 + 48 * max_items,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "keywords",
                    "schema": keyword_schema(max_items),
                    "strict": True,
                },
            },
        }

    def _post_with_retries(self, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api_url}/chat/completions"
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                response = self._http().post(url, json=body)
            except TRANSIENT_ERRORS as exc:
                problem = f"{type(exc).__name__}: {exc}"
            except httpx.HTTPError as exc:
                raise LlmUnavailable(f"{type(exc).__name__}: {exc}") from exc
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise LlmUnavailable("the server's reply is not JSON") from exc
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRY_STATUSES:
                    raise LlmUnavailable(problem)
                retry_after = _retry_after(response)
            if attempt + 1 == attempts:
                raise LlmUnavailable(f"gave up after {attempts} attempts; last: {problem}")
            delay = min(self.backoff_max_s, self.backoff_s * 2**attempt)
            if retry_after is not None:
                delay = min(self.backoff_max_s, max(delay, retry_after))
            # Jitter keeps several workers that failed together from retrying together.
            delay += random.uniform(0, delay * 0.1)
            log.info(
                "vLLM attempt %d/%d failed (%s); retrying in %.2fs",
                attempt + 1,
                attempts,
                problem,
                delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _parse_answer(response: dict[str, Any]) -> list[Any]:
    """The ``keywords`` list of the model's JSON answer; LlmUnavailable when malformed."""
    try:
        content = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LlmUnavailable("the reply has no message content") from exc
    if not isinstance(content, str):
        raise LlmUnavailable("the message content is not text")
    content = content.strip()
    if content.startswith("```"):
        # Without structured outputs some models fence their JSON in Markdown.
        content = content.strip("`").removeprefix("json").strip()
    try:
        answer = json.loads(content)
    except ValueError as exc:
        raise LlmUnavailable(f"the answer is not JSON: {content[:80]!r}") from exc
    keywords = answer.get("keywords") if isinstance(answer, dict) else None
    if not isinstance(keywords, list):
        raise LlmUnavailable("the answer has no list of keywords")
    return keywords
