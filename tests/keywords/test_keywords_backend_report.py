"""/api/config reports the keyword backend that is answering (issue 12, item 8): it said
``mode: llm`` while keywords came from the embedded fallback. The LLM here is a real HTTP
server on loopback (tests/llm_server.py), alive, failing, or gone; extraction runs through the
chooser the keyword worker uses, and the report crosses the shared cache (Redis) to the page."""

from __future__ import annotations

import pytest

from bench.common import free_port
from keywords import backends
from keywords.extractors import extract_keywords
from keywords.extractors.vllm import CircuitBreaker, VllmExtractor
from tests.llm_server import FakeLlmServer, Reply

MODEL = "Qwen/Qwen2.5-7B-Instruct"
TEXT = "삼성전자가 인공지능 반도체를 발표했습니다"
ORIGINAL_KEYS = {"status", "device", "gpu", "mode", "llm_enabled"}


@pytest.fixture(autouse=True)
def _fresh_reports(settings):
    settings.VLLM_MODEL = MODEL
    backends._probe_cache.clear()
    backends.forget_answers()
    yield
    backends._probe_cache.clear()
    backends.forget_answers()


def config(client) -> dict:
    backends._probe_cache.clear()
    body = client.get("/api/config").json()
    assert body.keys() >= ORIGINAL_KEYS
    return body


def llm_client(url: str) -> VllmExtractor:
    return VllmExtractor(
        api_url=url, model=MODEL, api_key="EMPTY", timeout_s=2, max_retries=0,
        breaker=CircuitBreaker(),
    )  # fmt: skip


@pytest.mark.django_db
def test_a_required_llm_that_is_gone_is_not_reported_as_llm(client, settings):
    settings.KEYWORD_BACKEND = "vllm"
    settings.VLLM_API_URL = f"http://127.0.0.1:{free_port()}/v1"
    # The chooser asks the LLM, gets nothing and falls back.
    items = extract_keywords(TEXT, "ko", llm=llm_client(settings.VLLM_API_URL))
    assert items and {item.backend for item in items} == {"embedded"}
    body = config(client)
    assert body["mode"] == "embedded" and body["llm_enabled"] is False
    assert body["keywords_backend"] == "embedded"
    assert body["keywords_last_answer"]["backend"] == "embedded"


@pytest.mark.django_db
def test_an_llm_that_answers_is_reported_as_llm(client, settings):
    with FakeLlmServer(model=MODEL) as llm:
        settings.KEYWORD_BACKEND = "auto"
        settings.VLLM_API_URL = llm.url
        body = config(client)  # nothing extracted yet: what the chooser would pick
        assert body["mode"] == "llm" and body["keywords_backend"] == "vllm"
        assert body["keywords_last_answer"] is None
        llm.script(Reply.keywords([{"word": "삼성전자", "category": "회사", "importance": 0.9}]))
        items = extract_keywords(TEXT, "ko", llm=llm_client(llm.url))
        assert [item.backend for item in items] == ["vllm"]
        body = config(client)
    assert body["mode"] == "llm" and body["llm_enabled"] is True
    assert body["keywords_last_answer"]["backend"] == "vllm"


@pytest.mark.django_db
def test_an_llm_listed_but_failing_is_reported_as_the_fallback_until_it_answers(client, settings):
    with FakeLlmServer(model=MODEL) as llm:
        settings.KEYWORD_BACKEND = "auto"
        settings.VLLM_API_URL = llm.url
        extractor = llm_client(llm.url)
        # GET /models lists the model, but every chat request fails: the old report said llm.
        llm.script(Reply.error(500))
        items = extract_keywords(TEXT, "ko", llm=extractor)
        assert items and {item.backend for item in items} == {"embedded"}
        body = config(client)
        assert body["mode"] == "embedded" and body["keywords_backend"] == "embedded"
        assert body["llm_enabled"] is False
        assert body["llm_available"] is True  # the server is up; it is not answering
        # It answers again: the next keywords come from it, and so does the report.
        llm.script(Reply.keywords([{"word": "삼성전자", "category": "회사", "importance": 0.9}]))
        assert [item.backend for item in extract_keywords(TEXT, "ko", llm=extractor)] == ["vllm"]
        body = config(client)
    assert body["mode"] == "llm" and body["keywords_backend"] == "vllm"


@pytest.mark.django_db
def test_a_stale_answer_says_nothing_about_now(client, settings, monkeypatch):
    with FakeLlmServer(model=MODEL) as llm:
        settings.KEYWORD_BACKEND = "auto"
        settings.VLLM_API_URL = llm.url
        backends.record_answer("embedded")
        assert config(client)["keywords_backend"] == "embedded"
        monkeypatch.setattr(backends, "ANSWER_FRESH_S", -1)
        body = config(client)
    assert body["keywords_backend"] == "vllm" and body["keywords_last_answer"] is None
