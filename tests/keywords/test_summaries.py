"""Summaries through the shared LLM client, against the fake OpenAI server: the request the
summariser sends (checked by the server), the answer checks, long transcripts in chunks,
the embedded fallback whenever the LLM cannot answer, and the client refactor itself (one
client, one breaker per server and model, the same metrics as keywords)."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client import REGISTRY

from keywords import backends, summaries
from keywords.extractors import chooser
from keywords.extractors.base import get_kiwi
from keywords.llm import (
    CircuitBreaker,
    LlmClient,
    LlmUnavailable,
    breaker_for,
    default_client,
    reset_breakers,
)
from tests.llm_server import FakeLlmServer, Reply, request_text, schema_name

MODEL = "Qwen/Qwen2.5-7B-Instruct"
API_KEY = "test-key"
MEETING = [
    "다음 주 월요일까지 예산안을 정리해야 합니다",
    "회의에서 신규 서버 구매를 내년으로 미루기로 했습니다",
    "김 팀장님이 고객사에 일정을 공유해 주세요",
]


@pytest.fixture(scope="module", autouse=True)
def _kiwi_loaded():
    get_kiwi()


@pytest.fixture
def llm_server(settings):
    """The fake vLLM server, settings pointing at it, KEYWORD_BACKEND ``vllm``; every request
    it received must have passed its checks (the summary schema included)."""
    reset_breakers()
    backends._probe_cache.clear()
    with FakeLlmServer(model=MODEL, api_key=API_KEY) as server:
        settings.VLLM_API_URL = server.url
        settings.VLLM_MODEL = MODEL
        settings.VLLM_API_KEY = API_KEY
        settings.VLLM_TIMEOUT_S = 2.0
        settings.SUMMARY_TIMEOUT_S = 2.0
        settings.SUMMARY_CHUNK_CHARS = 4000
        settings.KEYWORD_BACKEND = "vllm"
        yield server
    reset_breakers()
    backends._probe_cache.clear()
    assert server.violations == []


def fast_client(server, **kwargs) -> LlmClient:
    kwargs.setdefault("backoff_s", 0.01)
    kwargs.setdefault("backoff_max_s", 0.05)
    kwargs.setdefault("breaker", CircuitBreaker(failure_threshold=100))
    return LlmClient(api_url=server.url, model=MODEL, api_key=API_KEY, timeout_s=2.0, **kwargs)


def llm_calls(backend: str, outcome: str) -> float:
    labels = {"backend": backend, "outcome": outcome}
    return REGISTRY.get_sample_value("stt_llm_calls_total", labels) or 0.0


# --- the request ------------------------------------------------------------------------


def test_korean_summary_request_and_answer(llm_server):
    llm_server.script(
        Reply.summary(
            "예산안 정리와 서버 구매 연기가 논의되었다.",
            ["예산안 정리 (다음 주 월요일)", "고객사에 일정 공유"],
            ["신규 서버 구매를 내년으로 연기"],
            expect_text=MEETING[1],
        )
    )
    result = summaries.summarise(MEETING, "ko", llm=fast_client(llm_server))
    assert result == summaries.Result(
        "예산안 정리와 서버 구매 연기가 논의되었다.",
        ["예산안 정리 (다음 주 월요일)", "고객사에 일정 공유"],
        ["신규 서버 구매를 내년으로 연기"],
        "vllm",
    )
    (body,) = llm_server.requests
    assert schema_name(body) == "summary"
    assert body["temperature"] == 0 and body["model"] == MODEL
    # Room for the longest answer the schema allows, and no more than a small context holds.
    assert 1024 <= body["max_tokens"] <= 2048
    system, user = (m["content"] for m in body["messages"])
    assert "한국어" in system and "action_items" in system
    assert user.startswith("언어: ko")
    # Every segment, in order, one per line.
    assert request_text(body) == "\n".join(MEETING)
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema == summaries.summary_schema()
    assert schema["properties"]["summary"]["maxLength"] == summaries.MAX_SUMMARY_CHARS


def test_english_transcripts_are_asked_in_english(llm_server):
    texts = ["We agreed to ship on Friday.", "Anna will write the release notes."]
    llm_server.script(Reply.summary("Shipping Friday.", ["Anna: release notes"], ["Ship Friday"]))
    result = summaries.summarise(texts, "en", llm=fast_client(llm_server))
    assert result.backend == "vllm" and result.decisions == ["Ship Friday"]
    system, user = (m["content"] for m in llm_server.requests[0]["messages"])
    assert "in English" in system and "한국어" not in system
    assert user.startswith("Language: en") and request_text(llm_server.requests[0]) == "\n".join(
        texts
    )


def test_other_languages_get_english_instructions_naming_the_language(llm_server):
    llm_server.script(Reply.summary("会議の要約。"))
    summaries.summarise(["今日は会議です。"], "ja", llm=fast_client(llm_server))
    system = llm_server.requests[0]["messages"][0]["content"]
    assert "the transcript's language (ja)" in system


def test_a_long_transcript_is_summarised_in_chunks_then_merged(llm_server):
    texts = [f"{n}번째 안건은 {n}분기 매출 보고서 검토입니다" for n in range(60)]
    chunk_chars = 400
    chunks = summaries.chunk_texts(texts, chunk_chars)
    assert len(chunks) > 2 and all(len(c) <= chunk_chars for c in chunks)
    # Every segment is in exactly one chunk, in order.
    assert "\n".join(chunks).split("\n") == texts
    llm_server.answer_with(
        lambda text: (
            Reply.summary(f"부분 요약 {text[:6]}", ["보고서 검토"], [])
            if "부분 요약" not in text
            else Reply.summary("전체 요약입니다.", ["보고서 검토"], ["매출 보고"])
        )
    )
    result = summaries.summarise(texts, "ko", llm=fast_client(llm_server), chunk_chars=400)
    assert result.text == "전체 요약입니다." and result.decisions == ["매출 보고"]
    asked = [request_text(body) for body in llm_server.requests]
    assert asked[: len(chunks)] == chunks
    # Each part says which part it is; the merge request carries every partial summary.
    users = [body["messages"][-1]["content"] for body in llm_server.requests]
    assert f"부분: 1/{len(chunks)}" in users[0]
    merge = users[len(chunks) :]
    assert len(merge) == 1 and all(f"부분 요약 {c[:6]}" in merge[0] for c in chunks)
    assert all(len(request_text(body)) <= chunk_chars for body in llm_server.requests)


def test_partials_too_long_to_share_a_chunk_are_still_merged_two_by_two(llm_server):
    texts = [f"{n}번째 안건은 {n}분기 매출 보고서 검토입니다" for n in range(40)]
    long_partial = "가나다 " * 60  # 240 characters: two never fit in a 200-character chunk
    llm_server.answer_with(lambda text: Reply.summary(long_partial))
    result = summaries.summarise(texts, "ko", llm=fast_client(llm_server), chunk_chars=200)
    assert result.backend == "vllm" and result.text == " ".join(long_partial.split())
    chunks = len(summaries.chunk_texts(texts, 200))
    # Every level halves the partials: chunks, then ceil(chunks / 2), ... down to one.
    levels, left = [], chunks
    while left > 1:
        left = (left + 1) // 2
        levels.append(left)
    assert llm_server.chat_calls == chunks + sum(levels)
    # The first merge level: two partials per request (one left over when odd).
    merges = [request_text(body) for body in llm_server.requests[chunks : chunks + levels[0]]]
    assert [m.count("가나다") for m in merges] == [120] * (chunks // 2) + [60] * (chunks % 2)


def test_chunks_cut_an_overlong_segment_at_spaces():
    text = " ".join(["가나다라마"] * 100)
    chunks = summaries.chunk_texts([text], 120)
    assert all(len(c) <= 120 for c in chunks)
    assert " ".join(chunks) == text


# --- the answer checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        [],
        "요약",
        {"summary": "", "action_items": [], "decisions": []},
        {"summary": "   ", "action_items": [], "decisions": []},
        {"summary": 3, "action_items": [], "decisions": []},
        {"summary": "요약", "action_items": "할 일", "decisions": []},
        {"summary": "요약", "action_items": [1, 2], "decisions": []},
        {"summary": "요약", "action_items": [], "decisions": [None]},
    ],
)
def test_answers_that_are_not_a_summary_are_refused(answer):
    with pytest.raises(LlmUnavailable):
        summaries.check_answer(answer)


def test_answers_are_bounded_and_cleaned():
    answer = {
        "summary": "가" * 5000,
        "action_items": ["  할 일  하나 ", "할 일 하나", "", "나" * 999]
        + [f"일 {n}" for n in range(20)],
        "decisions": [],
    }
    result = summaries.check_answer(answer)
    assert len(result.text) == summaries.MAX_SUMMARY_CHARS and result.text.endswith("…")
    assert result.action_items[0] == "할 일 하나"  # spaces folded, the repeat dropped
    assert result.action_items[1].endswith("…")
    assert len(result.action_items[1]) == summaries.MAX_ITEM_CHARS
    assert len(result.action_items) == summaries.MAX_ITEMS


@pytest.mark.parametrize(
    "reply",
    [
        Reply.error(503),
        Reply.error(400),
        Reply.text("요약: 예산 이야기"),
        Reply.json({"summary": "", "action_items": [], "decisions": []}),
        Reply.json({"keywords": []}),
    ],
    ids=["503", "400", "prose", "empty", "wrong-shape"],
)
def test_without_a_usable_answer_the_embedded_summary_answers(llm_server, reply):
    llm_server.script(reply, reply, reply)
    before = llm_calls("vllm", "failure"), llm_calls("embedded", "success")
    result = summaries.summarise(MEETING, "ko", llm=fast_client(llm_server, max_retries=2))
    assert result.backend == "embedded"
    assert result.text and all(sentence in " ".join(MEETING) for sentence in [result.text[:10]])
    assert result.decisions == ["회의에서 신규 서버 구매를 내년으로 미루기로 했습니다"]
    assert llm_calls("vllm", "failure") == before[0] + 1
    assert llm_calls("embedded", "success") == before[1] + 1


def test_backend_embedded_never_calls_the_llm(llm_server, settings):
    settings.KEYWORD_BACKEND = "embedded"
    result = summaries.summarise(MEETING, "ko")
    assert result.backend == "embedded" and llm_server.chat_calls == 0


def test_auto_with_no_server_listening_summarises_embedded(settings):
    from bench.common import free_port

    backends._probe_cache.clear()
    settings.KEYWORD_BACKEND = "auto"
    settings.VLLM_API_URL = f"http://127.0.0.1:{free_port()}/v1"
    assert summaries.summarise(MEETING, "ko").backend == "embedded"
    backends._probe_cache.clear()


def test_no_text_is_an_empty_summary_without_asking(llm_server):
    assert summaries.summarise(["", "  "], "ko") == summaries.Result("", [], [], "embedded")
    assert llm_server.chat_calls == 0


# --- the shared client ------------------------------------------------------------------


def test_summaries_and_keywords_share_the_client_and_its_breaker(llm_server):
    client = default_client()
    assert chooser.default_llm_extractor().client is client
    assert client.breaker is breaker_for(llm_server.url, MODEL)
    # The breaker opened by failing keyword requests keeps summaries off the server too.
    for _ in range(client.breaker.failure_threshold):
        client.breaker.record_failure()
    result = summaries.summarise(MEETING, "ko")
    assert result.backend == "embedded" and llm_server.chat_calls == 0


def test_a_summary_call_has_its_own_timeout(llm_server):
    client = fast_client(llm_server, max_retries=0)
    llm_server.script(Reply.slow(0.6, Reply.summary("늦은 요약")))
    # The client's own time-out (2 s) would wait; the call's 0.2 s does not.
    with pytest.raises(LlmUnavailable, match="ReadTimeout"):
        client.chat_json(
            [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            schema_name="summary",
            schema=summaries.summary_schema(),
            max_tokens=10,
            timeout_s=0.2,
        )
    llm_server.script(Reply.slow(0.3, Reply.summary("늦은 요약")))
    answer = client.chat_json(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        schema_name="summary",
        schema=summaries.summary_schema(),
        max_tokens=10,
    )
    assert answer["summary"] == "늦은 요약"


def test_chat_json_returns_the_parsed_answer_and_sends_the_schema(llm_server):
    llm_server.script(
        Reply.text('```json\n{"summary": "펜스", "action_items": [], "decisions": []}```')
    )
    answer = fast_client(llm_server).chat_json(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        schema_name="summary",
        schema=summaries.summary_schema(),
        max_tokens=99,
    )
    assert answer == {"summary": "펜스", "action_items": [], "decisions": []}
    body = llm_server.requests[0]
    assert body["max_tokens"] == 99
    assert body["response_format"]["json_schema"]["strict"] is True


def test_a_bad_answer_does_not_count_against_the_server(llm_server):
    breaker = CircuitBreaker(failure_threshold=1)
    client = fast_client(llm_server, breaker=breaker)
    llm_server.script(Reply.text("not json"))
    with pytest.raises(LlmUnavailable, match="not JSON"):
        client.chat_json(
            [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            schema_name="summary",
            schema=summaries.summary_schema(),
            max_tokens=10,
        )
    assert breaker.state == "closed"


def test_the_fake_server_refuses_a_summary_request_without_bounds():
    with FakeLlmServer(model=MODEL) as server:
        server.script(Reply.summary("요약"))
        schema = summaries.summary_schema()
        del schema["properties"]["summary"]["maxLength"]
        body = {
            "model": MODEL,
            "temperature": 0,
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "summary", "schema": schema, "strict": True},
            },
        }
        httpx.post(f"{server.url}/chat/completions", content=json.dumps(body), timeout=5)
        assert server.violations == ["summary is not a bounded string"]
