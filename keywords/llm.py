"""The one client of the LLM behind vLLM's OpenAI-compatible server.

Keyword extraction (keywords/extractors/vllm.py) and transcript summaries
(keywords/summaries.py) both ask it for an answer in a JSON schema:
``POST {VLLM_API_URL}/chat/completions``, temperature 0, the schema in the
standard OpenAI field ``response_format`` (type ``json_schema``). vLLM has
accepted that field since 2024 (0.6 series) and still does after v0.12 removed
the older ``guided_json`` extra parameter (docs.vllm.ai, "Structured Outputs");
other OpenAI-compatible servers understand it too. ``guided_json`` is not sent
as well: a current server ignores it with a warning on every request or a
stricter one rejects it, and an old server would get two constraints at once.

Failures raise ``LlmUnavailable`` so the caller can fall back to the embedded
analyser. Time-outs, connection errors and HTTP 429/500/502/503/504 are retried
a bounded number of times with exponential backoff; anything else fails at
once. A per-server (and model) circuit breaker, shared by every client of the
process, stops calling a server that keeps failing and lets one trial request
through after a cool-down: keywords and summaries see the same server state.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from workers import metrics

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


class LlmUnavailable(Exception):
    """The LLM gave no usable answer; the caller should use the embedded analyser."""


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


def json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``response_format`` forcing the answer into ``schema`` (vLLM structured outputs)."""
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": True},
    }


class LlmClient:
    """Chat Completions with a JSON schema against one OpenAI-compatible server.

    Settings (``VLLM_API_URL``, ``VLLM_MODEL``, ``VLLM_API_KEY``,
    ``VLLM_TIMEOUT_S``) are read when the object is made unless given here.
    """

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

    def chat_json(
        self,
        messages: list[dict[str, str]],
        *,
        schema_name: str,
        schema: dict[str, Any],
        max_tokens: int,
        timeout_s: float | None = None,
    ) -> Any:
        """The model's answer to ``messages``, parsed from JSON; LlmUnavailable when the
        server cannot be reached, keeps failing, or answers something that is not JSON.

        ``timeout_s`` replaces the client's time-out for this call (a summary of a long
        text takes longer to write than a segment's keywords). Checking the answer's
        content against what the caller needs is the caller's part.
        """
        if not self.breaker.allow():
            raise LlmUnavailable(f"circuit open for {self.api_url} (cooling down)")
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
            "response_format": json_schema_format(schema_name, schema),
        }
        try:
            response = self._post_with_retries(body, timeout_s)
        except Exception:
            # Any exception, not only LlmUnavailable: a half-open breaker must
            # get its trial slot back or it would never close again.
            self.breaker.record_failure()
            raise
        # The server answered: it is up, whatever the quality of this answer.
        self.breaker.record_success()
        return parse_content(response)

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                # One pooled client per LLM client: a worker calls the same server
                # for every segment.
                self._client = httpx.Client(
                    timeout=_timeout(self.timeout_s),
                    headers={"Authorization": f"Bearer {self.api_key}"},
                )
            return self._client

    def _post_with_retries(self, body: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
        url = f"{self.api_url}/chat/completions"
        attempts = self.max_retries + 1
        timeout = _timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                response = self._http().post(url, json=body, timeout=timeout)
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


def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, 5.0))


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def parse_content(response: dict[str, Any]) -> Any:
    """The JSON value of the model's message; LlmUnavailable when there is none."""
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
        return json.loads(content)
    except ValueError as exc:
        raise LlmUnavailable(f"the answer is not JSON: {content[:80]!r}") from exc


_clients: dict[tuple[str, str, str, float], LlmClient] = {}
_clients_lock = threading.Lock()


def default_client() -> LlmClient:
    """The process's client for the current settings (reused: it pools connections)."""
    from django.conf import settings

    key = (
        settings.VLLM_API_URL,
        settings.VLLM_MODEL,
        settings.VLLM_API_KEY,
        float(settings.VLLM_TIMEOUT_S),
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = LlmClient(
                api_url=key[0], model=key[1], api_key=key[2], timeout_s=key[3]
            )
        return client


def wants_llm() -> bool:
    """Whether ``KEYWORD_BACKEND`` sends the next request to the LLM first (``auto``: when
    the server lists ``VLLM_MODEL``, a probe cached for seconds)."""
    from django.conf import settings

    from keywords.backends import probe_llm

    backend = settings.KEYWORD_BACKEND
    if backend == "embedded":
        return False
    if backend == "vllm":
        return True
    return probe_llm().serves_model


@contextmanager
def metered(backend: str) -> Iterator[None]:
    """Count one request asked of ``backend`` (``vllm`` or ``embedded``) and time it
    (stt_llm_calls_total, stt_llm_call_duration_seconds): success, or failure when it
    raises. Keyword extractions and summaries both count here."""
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
