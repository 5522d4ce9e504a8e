"""The vLLM client, the chooser's fallback and the shared post-check, against a
real HTTP server that speaks the OpenAI API (tests/llm_server.py)."""

from __future__ import annotations

import math
import socket
import threading
import time

import httpx
import pytest

from keywords import backends
from keywords.extractors import extract_keywords
from keywords.extractors.base import CATEGORIES, KeywordItem, get_kiwi, validate_items
from keywords.extractors.vllm import (
    CircuitBreaker,
    LlmUnavailable,
    VllmExtractor,
    keyword_schema,
    reset_breakers,
)
from tests.llm_server import FakeLlmServer, Reply

MODEL = "Qwen/Qwen2.5-7B-Instruct"
API_KEY = "test-key"
TEXT = "삼성전자의 인공지능 연구소가 엔비디아 H100 GPU 서버를 도입했다"
GOOD = [
    {"word": "삼성전자", "category": "회사", "importance": 0.9},
    {"word": "인공지능", "category": "기술", "importance": 0.8},
    {"word": "H100", "category": "장비", "importance": 0.7},
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module", autouse=True)
def _kiwi_loaded():
    get_kiwi()  # the post-check uses Kiwi; load it outside the timed tests


@pytest.fixture
def llm_server(settings):
    """A fake vLLM server; settings point at it and KEYWORD_BACKEND is ``vllm``.

    Every request it received must have passed its checks.
    """
    reset_breakers()
    backends._probe_cache.clear()
    with FakeLlmServer(model=MODEL, api_key=API_KEY) as server:
        settings.VLLM_API_URL = server.url
        settings.VLLM_MODEL = MODEL
        settings.VLLM_API_KEY = API_KEY
        settings.VLLM_TIMEOUT_S = 2.0
        settings.KEYWORD_BACKEND = "vllm"
        yield server
    reset_breakers()
    backends._probe_cache.clear()
    assert server.violations == []


def fast_client(**kwargs) -> VllmExtractor:
    """A client for the fake server with test-sized back-off and its own breaker."""
    kwargs.setdefault("backoff_s", 0.01)
    kwargs.setdefault("backoff_max_s", 0.05)
    kwargs.setdefault("breaker", CircuitBreaker(failure_threshold=100))
    return VllmExtractor(**kwargs)


def backends_of(items: list[KeywordItem]) -> set[str]:
    return {item.backend for item in items}


# --- normal operation -----------------------------------------------------------------


def test_normal_answer(llm_server):
    llm_server.script(Reply.keywords(GOOD, expect_text=TEXT))
    items = fast_client().extract(TEXT, language="ko", max_items=5)
    assert [(i.word, i.category, i.importance, i.backend) for i in items] == [
        ("삼성전자", "회사", 0.9, "vllm"),
        ("인공지능", "기술", 0.8, "vllm"),
        ("H100", "장비", 0.7, "vllm"),
    ]
    assert items[0].as_message() == {"word": "삼성전자", "category": "회사", "importance": 0.9}


def test_request_shape(llm_server):
    llm_server.script(Reply.keywords(GOOD, expect_text=TEXT))
    fast_client().extract(TEXT, language="ko", max_items=7)
    (body,) = llm_server.requests
    assert body["temperature"] == 0
    assert body["response_format"]["json_schema"]["schema"] == keyword_schema(7)
    assert (
        body["response_format"]["json_schema"]["schema"]["properties"]["keywords"]["maxItems"] == 7
    )
    system = body["messages"][0]["content"]
    for forbidden in ("동사", "형용사", "부사", "조사", "대명사", "감탄사"):
        assert forbidden in system
    for category in CATEGORIES:
        assert category in system
    assert "guided_json" not in body  # one way of asking for the schema (see vllm.py)


def test_the_fake_server_catches_bad_requests(llm_server):
    """The checks in the fake server are real: a sloppy request is reported."""
    llm_server.script(Reply.keywords([]))
    httpx.post(
        f"{llm_server.url}/chat/completions",
        json={"model": "other", "messages": [{"role": "user", "content": "x"}], "temperature": 1},
        timeout=5,
    )
    problems = " | ".join(llm_server.violations)
    for expected in ("Authorization", "model", "temperature", "messages", "response_format"):
        assert expected in problems
    llm_server.violations.clear()


def test_models_endpoint_serves_the_configured_model(llm_server):
    status = backends.probe_llm(use_cache=False)
    assert status.reachable and status.serves_model
    assert status.models == (MODEL,)


# --- scripted failures ----------------------------------------------------------------


def test_500_then_success_through_retry(llm_server):
    llm_server.script(Reply.error(500), Reply.error(503), Reply.keywords(GOOD, expect_text=TEXT))
    items = extract_keywords(TEXT, "ko", llm=fast_client(max_retries=2))
    assert backends_of(items) == {"vllm"}
    assert llm_server.chat_calls == 3


def test_429_is_retried(llm_server):
    llm_server.script(Reply.error(429, retry_after=0.01), Reply.keywords(GOOD))
    items = fast_client(max_retries=1).extract(TEXT)
    assert backends_of(items) == {"vllm"}
    assert llm_server.chat_calls == 2


def test_timeout_retries_then_falls_back_to_embedded(llm_server, settings):
    settings.VLLM_TIMEOUT_S = 0.3
    llm_server.script(*[Reply.slow(2.0, Reply.keywords(GOOD)) for _ in range(3)])
    client = fast_client(max_retries=2)
    assert client.timeout_s == 0.3
    start = time.monotonic()
    items = extract_keywords(TEXT, "ko", llm=client)
    elapsed = time.monotonic() - start
    assert llm_server.chat_calls == 3  # one try and two retries
    assert items and backends_of(items) == {"embedded"}
    assert {"삼성전자", "인공지능", "H100"} <= {i.word for i in items}
    assert elapsed < 1.8, elapsed  # three time-outs, not three full delays


def test_client_error_is_not_retried(llm_server):
    llm_server.script(Reply.error(400))
    items = extract_keywords(TEXT, llm=fast_client(max_retries=3))
    assert backends_of(items) == {"embedded"}
    assert llm_server.chat_calls == 1


def test_retries_exhausted_on_500s(llm_server):
    llm_server.script(*[Reply.error(500) for _ in range(3)])
    with pytest.raises(LlmUnavailable, match="3 attempts"):
        fast_client(max_retries=2).extract(TEXT)
    assert llm_server.chat_calls == 3


def test_non_json_answer_falls_back(llm_server):
    llm_server.script(Reply.text("핵심 키워드는 삼성전자와 인공지능입니다."))
    items = extract_keywords(TEXT, llm=fast_client())
    assert items and backends_of(items) == {"embedded"}
    assert llm_server.chat_calls == 1  # the same prompt at temperature 0 would fail again


@pytest.mark.parametrize(
    "answer",
    [
        {"items": GOOD},
        {"keywords": "삼성전자, 인공지능"},
        [GOOD],
        {"keywords": [{"word": 42}, {"category": "회사"}, "삼성전자", None]},
    ],
    ids=["wrong-key", "string-not-list", "top-level-list", "no-valid-item"],
)
def test_schema_breaking_json_falls_back(llm_server, answer):
    llm_server.script(Reply.json(answer))
    items = extract_keywords(TEXT, llm=fast_client())
    assert items and backends_of(items) == {"embedded"}


def test_schema_breaking_items_are_filtered(llm_server):
    llm_server.script(
        Reply.json(
            {
                "keywords": [
                    {"word": 42, "category": "회사", "importance": 0.9},
                    "인공지능",
                    {"word": "삼성전자", "category": "회사", "importance": "high"},
                    {"word": "엔비디아", "category": ["회사"], "importance": 7},
                    {"word": "GPU", "importance": -1},
                ]
            }
        )
    )
    items = fast_client().extract(TEXT)
    assert [(i.word, i.category, i.importance, i.backend) for i in items] == [
        ("엔비디아", "기타", 1.0, "vllm"),
        ("삼성전자", "회사", 0.5, "vllm"),
        ("GPU", "기타", 0.0, "vllm"),
    ]


def test_keywords_not_in_the_text_are_dropped(llm_server):
    invented = [
        {"word": "애플", "category": "회사", "importance": 1.0},
        {"word": "반도체 공장", "category": "장소", "importance": 0.95},
        *GOOD,
    ]
    llm_server.script(Reply.keywords(invented))
    items = fast_client().extract(TEXT)
    assert [i.word for i in items] == ["삼성전자", "인공지능", "H100"]
    assert backends_of(items) == {"vllm"}


def test_all_keywords_invented_falls_back(llm_server):
    llm_server.script(Reply.keywords([{"word": "애플", "category": "회사", "importance": 1}]))
    items = extract_keywords(TEXT, llm=fast_client())
    assert items and backends_of(items) == {"embedded"}


def test_unknown_category_becomes_other(llm_server):
    llm_server.script(
        Reply.keywords(
            [
                {"word": "삼성전자", "category": "기업", "importance": 0.9},
                {"word": "GPU", "category": "equipment", "importance": 0.8},
            ]
        )
    )
    items = fast_client().extract(TEXT)
    assert [(i.word, i.category) for i in items] == [("삼성전자", "기타"), ("GPU", "기타")]


def test_forbidden_words_and_particles_from_the_llm(llm_server):
    text = "저는 그리고 우리 이것 그것 네 아 음 삼성전자의 서버가 있다고 하다가 2018년에"
    llm_server.script(
        Reply.keywords(
            [
                {"word": w, "category": "기타", "importance": 0.9}
                for w in ["하다", "있다", "그리고", "저는", "우리", "이것", "그것", "네", "아"]
            ]
            + [
                {"word": "음", "category": "기타", "importance": 0.9},
                {"word": "2018", "category": "기타", "importance": 0.9},
                {"word": "2018년", "category": "기타", "importance": 0.9},
                {"word": "삼성전자의", "category": "회사", "importance": 0.8},
                {"word": "서버", "category": "장비", "importance": 0.7},
            ]
        )
    )
    items = fast_client().extract(text)
    assert [(i.word, i.category) for i in items] == [("삼성전자", "회사"), ("서버", "장비")]


def test_unreachable_server_falls_back(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: connection refused
    settings.KEYWORD_BACKEND = "vllm"
    client = fast_client(
        api_url=f"http://127.0.0.1:{port}/v1", model=MODEL, api_key="x", timeout_s=1
    )
    items = extract_keywords(TEXT, llm=client)
    assert items and backends_of(items) == {"embedded"}


# --- circuit breaker ------------------------------------------------------------------


def test_circuit_breaker_opens_fails_fast_and_closes_after_cooldown(llm_server):
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=30, clock=clock)
    client = fast_client(max_retries=0, breaker=breaker)
    llm_server.script(*[Reply.error(500) for _ in range(3)])
    for _ in range(3):
        items = extract_keywords(TEXT, llm=client)
        assert backends_of(items) == {"embedded"}
    assert breaker.state == "open"
    assert llm_server.chat_calls == 3

    # Open: no request leaves, the embedded extractor answers at once.
    start = time.monotonic()
    for _ in range(5):
        with pytest.raises(LlmUnavailable, match="circuit open"):
            client.extract(TEXT)
        assert backends_of(extract_keywords(TEXT, llm=client)) == {"embedded"}
    assert time.monotonic() - start < 1.0
    assert llm_server.chat_calls == 3

    # After the cool-down one trial goes through; its success closes the breaker.
    clock.now += 31
    assert breaker.state == "half_open"
    llm_server.script(Reply.keywords(GOOD))
    assert backends_of(extract_keywords(TEXT, llm=client)) == {"vllm"}
    assert breaker.state == "closed"
    assert llm_server.chat_calls == 4


def test_failed_trial_reopens_the_breaker(llm_server):
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=10, clock=clock)
    client = fast_client(max_retries=0, breaker=breaker)
    llm_server.script(Reply.error(502), Reply.error(502), Reply.error(502))
    for _ in range(2):
        with pytest.raises(LlmUnavailable):
            client.extract(TEXT)
    clock.now += 11
    with pytest.raises(LlmUnavailable, match="502"):
        client.extract(TEXT)  # the trial
    assert breaker.state == "open"
    with pytest.raises(LlmUnavailable, match="circuit open"):
        client.extract(TEXT)
    assert llm_server.chat_calls == 3


def test_bad_answers_do_not_open_the_breaker(llm_server):
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=10)
    client = fast_client(breaker=breaker)
    llm_server.script(Reply.text("not json"), Reply.text("still not json"), Reply.keywords(GOOD))
    for _ in range(2):
        with pytest.raises(LlmUnavailable):
            client.extract(TEXT)
    assert breaker.state == "closed"  # the server is up; only its answers were bad
    assert backends_of(client.extract(TEXT)) == {"vllm"}


def test_half_open_lets_one_trial_through():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=5, clock=clock)
    breaker.record_failure()
    assert not breaker.allow()
    clock.now += 5
    assert breaker.allow()
    assert not breaker.allow()  # a second caller while the trial is out
    breaker.record_success()
    assert breaker.allow() and breaker.allow()


def test_breaker_is_thread_safe():
    breaker = CircuitBreaker(failure_threshold=1000, cooldown_s=60)
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for _ in range(125):
            breaker.record_failure()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.state == "open"  # exactly 1000 failures counted


def test_default_clients_are_reused_and_share_one_breaker_per_server(llm_server):
    from keywords.extractors import chooser, vllm

    client = chooser.default_llm_extractor()
    assert client is chooser.default_llm_extractor()  # pooled connections are kept
    assert client.breaker is vllm.breaker_for(llm_server.url, MODEL)
    assert VllmExtractor().breaker is client.breaker


# --- KEYWORD_BACKEND ------------------------------------------------------------------


def test_backend_embedded_never_calls_the_llm(llm_server, settings):
    settings.KEYWORD_BACKEND = "embedded"
    items = extract_keywords(TEXT)
    assert items and backends_of(items) == {"embedded"}
    assert llm_server.chat_calls == 0


def test_backend_vllm_with_settings_defaults(llm_server):
    llm_server.script(Reply.keywords(GOOD, expect_text=TEXT))
    items = extract_keywords(TEXT, "ko", max_items=3)
    assert backends_of(items) == {"vllm"}
    assert len(items) == 3


def test_backend_auto_uses_llm_when_model_served(llm_server, settings):
    settings.KEYWORD_BACKEND = "auto"
    llm_server.script(Reply.keywords(GOOD))
    items = extract_keywords(TEXT)
    assert backends_of(items) == {"vllm"}
    assert llm_server.models_calls >= 1


def test_backend_auto_uses_embedded_when_model_not_served(llm_server, settings):
    settings.KEYWORD_BACKEND = "auto"
    settings.VLLM_MODEL = "some/other-model"
    items = extract_keywords(TEXT)
    assert items and backends_of(items) == {"embedded"}
    assert llm_server.chat_calls == 0


def test_backend_auto_falls_back_when_chat_fails(llm_server, settings):
    settings.KEYWORD_BACKEND = "auto"
    llm_server.script(Reply.error(400))
    items = extract_keywords(TEXT)
    assert items and backends_of(items) == {"embedded"}


def test_unexpected_error_in_llm_path_still_gives_keywords(settings):
    settings.KEYWORD_BACKEND = "vllm"

    class Broken:
        name = "vllm"

        def extract(self, text, *, language=None, max_items=10):
            raise KeyError("bug")

    items = extract_keywords(TEXT, llm=Broken())
    assert items and backends_of(items) == {"embedded"}


def test_empty_text_asks_nobody(llm_server):
    assert extract_keywords("") == []
    assert extract_keywords("   \n") == []
    assert llm_server.chat_calls == 0


# --- the shared post-check ------------------------------------------------------------


def test_categories_match_the_model_choices():
    from keywords.models import Backend, Category

    assert tuple(Category.values) == CATEGORIES
    assert {"vllm", "embedded"} == set(Backend.values)


def test_validate_items_rules():
    text = "삼성전자의 GPU 서버와 장동 련 교수, 그리고 우리 이것 2018년"
    raw = [
        {"word": "삼성전자", "category": "회사", "importance": 0.4},
        {"word": "삼성전자", "category": "기타", "importance": 0.9},  # duplicate: keep 0.9, 회사
        {"word": "gpu", "category": "장비", "importance": 1.5},  # case-insensitive, clamped
        {"word": "장동련", "category": "인물", "importance": math.nan},  # spaces ignored
        {"word": "서버", "category": "뭔가", "importance": None},
        {"word": "교수", "category": " 인물 ", "importance": True},
        {"word": "AI", "category": "기술", "importance": 0.5},  # not in the text
        {"word": "그리고", "category": "기타", "importance": 0.5},
        {"word": "우리", "category": "기타", "importance": 0.5},
        {"word": "이것", "category": "기타", "importance": 0.5},
        {"word": "2018", "category": "기타", "importance": 0.5},
        {"word": "년", "category": "기타", "importance": 0.5},
        KeywordItem("서버", "장비", 0.6, "x"),
    ]
    items = validate_items(text, raw, "vllm")
    assert [(i.word, i.category, i.importance) for i in items] == [
        ("gpu", "장비", 1.0),
        ("삼성전자", "회사", 0.9),
        ("서버", "장비", 0.6),
        ("장동련", "인물", 0.5),
        ("교수", "인물", 0.5),
    ]
    assert backends_of(items) == {"vllm"}


def test_validate_items_latin_boundaries():
    text = "He said the GPUs were fast and the AI-ready servers too"
    raw = [{"word": w, "category": "기타", "importance": 0.5} for w in ("AI", "GPU", "aid", "id")]
    assert [i.word for i in validate_items(text, raw, "vllm")] == ["AI", "GPU"]
