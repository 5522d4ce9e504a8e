"""A transcript's summary: a few sentences, action items and decisions.

``summarise(texts, language)`` is the one entry point. ``KEYWORD_BACKEND`` decides as it does
for keywords (keywords/llm.py ``wants_llm``): the LLM first when it may answer, through the
same client, breaker and metrics as keyword extraction; whenever it cannot (down, breaker
open, an answer that fails the checks), the embedded extractive summary
(keywords/extractive.py) answers. ``Result.backend`` says which one wrote it.

The LLM is asked in the transcript's language (Korean by default, English for ``en``,
English instructions asking for the transcript's language otherwise), at temperature 0,
for ``{"summary": str, "action_items": [str], "decisions": [str]}`` in a JSON schema. A
transcript longer than ``SUMMARY_CHUNK_CHARS`` is cut at segment boundaries into chunks
that each fit the model's context with the prompt and the answer; each chunk is
summarised, then the partial summaries are merged by one more request (again in chunks
when even they are too long). Nothing imports the models here: it runs on plain text.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from keywords import extractive
from keywords.llm import LlmClient, LlmUnavailable, default_client, metered, wants_llm

log = logging.getLogger(__name__)

BACKEND_VLLM = "vllm"
BACKEND_EMBEDDED = "embedded"

MAX_SUMMARY_CHARS = 800
MAX_ITEMS = 6
MAX_ITEM_CHARS = 160
# Room for the longest answer the schema allows (800 + 2 x 6 x 160 characters, about one
# token per Hangul syllable for Qwen2.5) with JSON around it; an answer cut off at the limit
# is invalid JSON and the embedded summary answers instead.
MAX_TOKENS = 1536
# Merging partial summaries: at most this many levels. Each level merges at least two
# partials per request (usually many more: a partial is a few hundred characters), so six
# levels cover 64 chunks even at worst, far more than four hours of speech.
MAX_MERGE_LEVELS = 6

SYSTEM_KO = """당신은 회의와 대화를 음성 인식으로 받아 적은 텍스트를 요약하는 도우미입니다.

규칙:
1. summary: 내용의 핵심을 한국어 서너 문장으로 요약하세요. {max_chars}자를 넘기지 마세요.
2. action_items: 누군가 해야 할 일, 맡은 일, 부탁받은 일을 한 항목에 하나씩 한국어로 쓰세요. 없으면 빈 목록입니다.
3. decisions: 결정되거나 합의된 사항을 한 항목에 하나씩 한국어로 쓰세요. 없으면 빈 목록입니다.
4. 항목은 각각 최대 {max_items}개, 한 항목은 {max_item_chars}자 이내입니다.
5. 텍스트에 없는 내용을 지어내지 마세요. 음성 인식 오류로 보이는 말은 문맥에 맞게 이해하세요.

JSON으로만 답하세요: {{"summary": "...", "action_items": ["..."], "decisions": ["..."]}}"""

SYSTEM_EN = """You summarise transcripts of meetings and conversations written by speech recognition.

Rules:
1. summary: the gist in three or four sentences, in {language_name}, at most {max_chars} characters.
2. action_items: things someone has to do, took on or was asked to do, one per item, in {language_name}. An empty list when there are none.
3. decisions: what was decided or agreed, one per item, in {language_name}. An empty list when there are none.
4. At most {max_items} items in each list, each at most {max_item_chars} characters.
5. Do not invent anything the text does not say. Read words that look misrecognised in context.

Answer in JSON only: {{"summary": "...", "action_items": ["..."], "decisions": ["..."]}}"""

MERGE_KO = "다음은 긴 텍스트를 나누어 만든 부분 요약들입니다. 하나의 요약으로 합치세요."
MERGE_EN = "These are summaries of consecutive parts of one long text. Merge them into one."


@dataclass(frozen=True)
class Result:
    text: str
    action_items: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    backend: str = BACKEND_EMBEDDED


def text_hash(texts: Iterable[str]) -> str:
    """What a summary summarised: the SHA-256 of the segments' texts, one per line. An edit
    of any segment changes it, so a stored summary can say it is out of date."""
    joined = "\n".join(" ".join(str(t).split()) for t in texts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def summary_schema() -> dict[str, Any]:
    """JSON schema of the answer, with the bounds the post-check enforces again."""
    item = {"type": "string", "minLength": 1, "maxLength": MAX_ITEM_CHARS}
    items = {"type": "array", "maxItems": MAX_ITEMS, "items": item}
    return {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "minLength": 1, "maxLength": MAX_SUMMARY_CHARS},
            "action_items": items,
            "decisions": items,
        },
        "required": ["summary", "action_items", "decisions"],
        "additionalProperties": False,
    }


def is_english(language: str | None) -> bool:
    return bool(language) and str(language).casefold().startswith("en")


def summarise(
    texts: list[str],
    language: str | None = None,
    *,
    llm: LlmClient | None = None,
    chunk_chars: int | None = None,
    timeout_s: float | None = None,
) -> Result:
    """The summary of a transcript given as its segments' texts, in spoken order."""
    texts = [" ".join(t.split()) for t in texts if t and t.strip()]
    if not texts:
        return Result("", backend=BACKEND_EMBEDDED)
    if wants_llm():
        from django.conf import settings

        try:
            with metered(BACKEND_VLLM):
                return LlmSummariser(
                    llm or default_client(),
                    chunk_chars=chunk_chars or settings.SUMMARY_CHUNK_CHARS,
                    timeout_s=timeout_s or settings.SUMMARY_TIMEOUT_S,
                ).summarise(texts, language)
        except LlmUnavailable as exc:
            log.warning("LLM summary unavailable, using the embedded one: %s", exc)
        except Exception:
            # A bug in the LLM path must not cost a transcript its summary.
            log.exception("LLM summary failed, using the embedded one")
    with metered(BACKEND_EMBEDDED):
        found = extractive.summarise(texts)
    return Result(found.text, found.action_items, found.decisions, BACKEND_EMBEDDED)


class LlmSummariser:
    def __init__(self, client: LlmClient, *, chunk_chars: int, timeout_s: float) -> None:
        self.client = client
        self.chunk_chars = max(200, int(chunk_chars))
        self.timeout_s = timeout_s

    def summarise(self, texts: list[str], language: str | None) -> Result:
        chunks = chunk_texts(texts, self.chunk_chars)
        partials = [
            self.ask(chunk, language, part=(i + 1, len(chunks)) if len(chunks) > 1 else None)
            for i, chunk in enumerate(chunks)
        ]
        level = 0
        while len(partials) > 1:
            level += 1
            if level > MAX_MERGE_LEVELS:
                raise LlmUnavailable("too many partial summaries to merge")
            pieces = [_as_text(p, language) for p in partials]
            groups = chunk_texts(pieces, self.chunk_chars, separator="\n\n")
            if len(groups) >= len(partials):
                # Partials too long to share a chunk: two per request all the same (twice
                # the chunk at most, which the context still holds with room to spare).
                groups = ["\n\n".join(pieces[i : i + 2]) for i in range(0, len(pieces), 2)]
            partials = [self.ask(group, language, merge=True) for group in groups]
        return partials[0]

    def ask(
        self,
        text: str,
        language: str | None,
        *,
        part: tuple[int, int] | None = None,
        merge: bool = False,
    ) -> Result:
        answer = self.client.chat_json(
            request_messages(text, language, part=part, merge=merge),
            schema_name="summary",
            schema=summary_schema(),
            max_tokens=MAX_TOKENS,
            timeout_s=self.timeout_s,
        )
        return check_answer(answer)


def request_messages(
    text: str,
    language: str | None,
    *,
    part: tuple[int, int] | None = None,
    merge: bool = False,
) -> list[dict[str, str]]:
    """The chat messages asking for a summary of ``text`` in ``language``."""
    limits = {
        "max_chars": MAX_SUMMARY_CHARS,
        "max_items": MAX_ITEMS,
        "max_item_chars": MAX_ITEM_CHARS,
    }
    code = (language or "ko").strip() or "ko"
    if code.casefold().startswith("ko"):
        system = SYSTEM_KO.format(**limits)
        header = f"언어: {code}"
        if part:
            header += f"\n부분: {part[0]}/{part[1]} (긴 텍스트의 일부입니다)"
        if merge:
            header += "\n" + MERGE_KO
        user = f"{header}\n\n텍스트:\n{text}"
    else:
        name = "English" if is_english(code) else f"the transcript's language ({code})"
        system = SYSTEM_EN.format(language_name=name, **limits)
        header = f"Language: {code}"
        if part:
            header += f"\nPart: {part[0]} of {part[1]} (one part of a long text)"
        if merge:
            header += "\n" + MERGE_EN
        user = f"{header}\n\nTranscript:\n{text}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def check_answer(answer: Any) -> Result:
    """The LLM's answer as a Result, or LlmUnavailable when it is not one: the summary must
    be non-empty text, the lists lists of text. Over-long strings are cut and lists
    shortened to the bounds (a server may not enforce every schema keyword); blank and
    repeated items are dropped."""
    if not isinstance(answer, dict):
        raise LlmUnavailable("the answer is not a JSON object")
    summary = answer.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise LlmUnavailable("the answer has no summary text")
    lists = {}
    for name in ("action_items", "decisions"):
        value = answer.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LlmUnavailable(f"{name} is not a list of strings")
        lists[name] = _bounded_items(value)
    return Result(
        _cut(" ".join(summary.split()), MAX_SUMMARY_CHARS),
        lists["action_items"],
        lists["decisions"],
        BACKEND_VLLM,
    )


def chunk_texts(texts: list[str], limit: int, *, separator: str = "\n") -> list[str]:
    """``texts`` joined into chunks of at most ``limit`` characters, cut between texts (a
    single text longer than ``limit`` is cut at spaces)."""
    pieces: list[str] = []
    for text in texts:
        while len(text) > limit:
            cut = text.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            pieces.append(text[:cut].strip())
            text = text[cut:].strip()
        if text:
            pieces.append(text)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + len(separator) + len(piece) > limit:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}{separator}{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def _as_text(result: Result, language: str | None) -> str:
    """A partial summary as input of the merge request."""
    labels = (
        ("Action items", "Decisions")
        if not (language or "ko").startswith("ko")
        else ("할 일", "결정")
    )
    lines = [result.text]
    for label, items in zip(labels, (result.action_items, result.decisions), strict=True):
        if items:
            lines.append(f"{label}: " + json.dumps(items, ensure_ascii=False))
    return "\n".join(lines)


def _bounded_items(values: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        item = _cut(" ".join(value.split()), MAX_ITEM_CHARS)
        key = item.casefold()
        if item and key not in seen:
            seen.add(key)
            out.append(item)
        if len(out) == MAX_ITEMS:
            break
    return out


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
