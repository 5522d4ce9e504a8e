"""Keyword extraction by an LLM behind vLLM's OpenAI-compatible server.

One chat request per text through the shared client (keywords/llm.py: the JSON
schema in ``response_format``, temperature 0, retries with backoff, the
per-server circuit breaker), asking for ``{"keywords": [{"word", "category",
"importance"}]}``. Failures raise ``LlmUnavailable`` so the caller can fall back
to the embedded extractor.
"""

from __future__ import annotations

from typing import Any

from keywords.extractors.base import BACKEND_VLLM, CATEGORIES, KeywordItem, validate_items
from keywords.llm import (
    CircuitBreaker,
    LlmClient,
    LlmUnavailable,
    breaker_for,
    reset_breakers,
)

# Re-exported: callers and tests of the keyword client name them from here.
__all__ = [
    "SYSTEM_PROMPT",
    "CircuitBreaker",
    "LlmUnavailable",
    "VllmExtractor",
    "breaker_for",
    "keyword_schema",
    "reset_breakers",
]

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


class VllmExtractor:
    """Keywords from an LLM served by vLLM (OpenAI-compatible Chat Completions).

    The arguments are those of ``keywords.llm.LlmClient``; settings fill in the
    ones left out.
    """

    name = BACKEND_VLLM

    def __init__(self, *, client: LlmClient | None = None, **options: Any) -> None:
        # One client's settings in one place: ``options`` are LlmClient's own (api_url,
        # model, api_key, timeout_s, retries and backoff, breaker, sleep).
        self.client = client if client is not None else LlmClient(**options)

    @property
    def breaker(self) -> CircuitBreaker:
        return self.client.breaker

    @property
    def api_url(self) -> str:
        return self.client.api_url

    @property
    def model(self) -> str:
        return self.client.model

    @property
    def timeout_s(self) -> float:
        return self.client.timeout_s

    def extract(
        self, text: str, *, language: str | None = None, max_items: int = 10
    ) -> list[KeywordItem]:
        if max_items <= 0 or not text or not text.strip():
            return []
        user = f"언어: {language}\n\n텍스트:\n{text}" if language else f"텍스트:\n{text}"
        answer = self.client.chat_json(
            [
                {"role": "system", "content": SYSTEM_PROMPT.format(max_items=max_items)},
                {"role": "user", "content": user},
            ],
            schema_name="keywords",
            schema=keyword_schema(max_items),
            # Room for max_items short entries; a cut-off answer is invalid JSON.
            max_tokens=64 + 48 * max_items,
        )
        keywords = answer.get("keywords") if isinstance(answer, dict) else None
        if not isinstance(keywords, list):
            raise LlmUnavailable("the answer has no list of keywords")
        items = validate_items(text, keywords, self.name)
        if keywords and not items:
            # Every keyword was invented, misspelt or a verb: the embedded
            # extractor will do better on this text than an empty list.
            raise LlmUnavailable("no keyword in the LLM's answer passed the checks")
        return items[:max_items]

    def close(self) -> None:
        self.client.close()
