"""What every keyword extractor returns, and the post-check all of them share.

Both backends (the vLLM client and the embedded kiwipiepy extractor) hand their
candidates to ``validate_items``, so the rules a keyword must meet live in one
place: it occurs in the text, it is a noun-like term and not a verb, particle,
pronoun or interjection, its category is one of the eight, its importance is in
[0, 1]. An LLM is told these rules in its prompt; this module enforces them.

Nothing here imports ``keywords.models``: that module needs Django's app
registry, and the extractors must also run in plain processes (benchmarks, the
keyword worker before setup). ``CATEGORIES`` mirrors ``keywords.models.Category``
and a test keeps the two equal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from keywords.extractors.lexicon import (
    EN_FUNCTION_WORDS,
    EN_ING_NOUNS,
    EN_LY_ED_NOUNS,
    EN_STOP_WORDS,
    KO_STOP_NOUNS,
)
from keywords.korean import get_kiwi

if TYPE_CHECKING:
    pass

CATEGORIES: tuple[str, ...] = ("인물", "장소", "회사", "기술", "제품", "장비", "서비스", "기타")
OTHER = "기타"
BACKEND_VLLM = "vllm"
BACKEND_EMBEDDED = "embedded"
DEFAULT_IMPORTANCE = 0.5


@dataclass(frozen=True)
class KeywordItem:
    word: str
    category: str
    importance: float
    backend: str

    def as_message(self) -> dict[str, Any]:
        """The shape the original browser client expects: word, category, importance."""
        data = asdict(self)
        data.pop("backend")
        return data


@runtime_checkable
class Extractor(Protocol):
    name: str

    def extract(
        self, text: str, *, language: str | None = None, max_items: int = 10
    ) -> list[KeywordItem]: ...


# Morpheme tags a keyword may consist of (Sejong tags as kiwipiepy uses them).
_CONTENT_TAGS = frozenset({"NNG", "NNP", "SL", "SH"})
_ALLOWED_TAGS = _CONTENT_TAGS | frozenset(
    {"NNB", "NR", "SN", "XPN", "XSN", "SO", "SW", "SP", "SSO", "SSC", "W_SERIAL"}
)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’.+\-]*")


def normalise(word: str) -> str:
    """Comparison key: case-folded, whitespace removed ("장동 련" == "장동련")."""
    return "".join(word.split()).casefold()


def occurrence_pattern(word: str) -> re.Pattern[str]:
    """Regex finding ``word`` in a text ignoring case and whitespace.

    Korean particles may follow a Korean term ("삼성전자의"), so its end is open;
    a Latin term must not be part of a longer Latin word ("AI" is not in "said"),
    although a plural "s" may follow ("GPUs").
    """
    chars = [re.escape(c) for c in "".join(word.split())]
    body = r"\s*".join(chars)
    prefix = r"(?<![A-Za-z0-9])" if chars and re.match(r"[A-Za-z0-9]", word.strip()) else ""
    suffix = r"(?=s?(?![A-Za-z]))" if re.search(r"[A-Za-z]$", word.strip()) else ""
    return re.compile(prefix + body + suffix, re.IGNORECASE)


def occurs_in(word: str, text: str) -> bool:
    return bool(word.strip()) and occurrence_pattern(word).search(text) is not None


@lru_cache(maxsize=8192)
def noun_form(candidate: str) -> str | None:
    """The candidate as a noun-like keyword, or None when it is not one.

    Trailing particles are cut ("삼성전자의" -> "삼성전자"); verbs, adjectives,
    adverbs, pronouns, interjections, conjunctions, numbers alone and one-letter
    words are refused. Cached: the same words recur across segments.
    """
    word = " ".join(candidate.split())
    if len(normalise(word)) < 2:
        return None
    if not _HANGUL.search(word):
        return _latin_noun_form(word)
    tokens = get_kiwi().tokenize(word)
    # Particles attached to the end are not part of the keyword.
    while tokens and tokens[-1].tag.startswith("J"):
        word = word[: tokens[-1].start].rstrip()
        tokens = tokens[:-1]
    if not tokens or len(normalise(word)) < 2:
        return None
    tags = [token.tag for token in tokens]
    if tags[0] in {"NNB", "XSN"} or tags[-1] == "XPN":
        return None
    if not all(tag in _ALLOWED_TAGS for tag in tags):
        return None
    if not any(tag in _CONTENT_TAGS for tag in tags):
        return None
    # "본격적", "국제적": noun + 적 works as an adjective or adverb.
    if tags[-1] == "XSN" and tokens[-1].form == "적":
        return None
    if normalise(word) in KO_STOP_NOUNS:
        return None
    return word


def _latin_noun_form(word: str) -> str | None:
    words = [w.casefold().strip(".,'’") for w in word.split()]
    if not any(c.isalpha() for c in word):
        return None
    if all(w in EN_STOP_WORDS for w in words):
        return None
    # "the country", "GPU for": a phrase that starts or ends on a function word
    # is a fragment, not a term.
    if words[0] in EN_FUNCTION_WORDS or words[-1] in EN_FUNCTION_WORDS:
        return None
    if not _LATIN_WORD.search(word):
        return None
    if len(words) == 1 and not english_noun_like(word):
        return None
    return word


def english_noun_like(word: str) -> bool:
    """False for lower-case English words shaped like verbs or adverbs.

    English has no tagger here, so this is the cheap part of one: stop words,
    "-ly" adverbs, "-ed" past forms and "-ing" forms other than common nouns.
    Mixed-case words (Americans, iPhone, ChatGPT) are names and pass; all-caps
    words are judged like lower-case ones, because read-speech corpora and some
    ASR outputs are upper-cased throughout.
    """
    if word != word.lower() and not word.isupper():
        return True
    lower = word.casefold()
    if lower in EN_STOP_WORDS:
        return False
    if len(lower) > 4 and lower.endswith(("ly", "ed")) and lower not in EN_LY_ED_NOUNS:
        return False
    if len(lower) > 4 and lower.endswith("ing") and lower not in EN_ING_NOUNS:
        return False
    return not (len(lower) > 6 and lower.endswith(("ous", "ful", "less")))


def clamp_importance(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_IMPORTANCE
    if math.isnan(value):
        return DEFAULT_IMPORTANCE
    return min(1.0, max(0.0, float(value)))


def validate_items(
    text: str, raw_items: Iterable[Mapping[str, Any] | KeywordItem], backend: str
) -> list[KeywordItem]:
    """Check candidate keywords against ``text``; return the valid ones, best first.

    Items that are not mappings or lack a string ``word`` are skipped. Unknown
    categories become 기타, importance is clamped to [0, 1] (not a number: 0.5),
    and duplicates (same word ignoring case and spaces) are merged keeping the
    highest importance and the most specific category.
    """
    merged: dict[str, KeywordItem] = {}
    for raw in raw_items:
        if isinstance(raw, KeywordItem):
            raw = asdict(raw)
        if not isinstance(raw, Mapping):
            continue
        word = raw.get("word")
        if not isinstance(word, str) or not word.strip():
            continue
        form = noun_form(word)
        if form is None or not occurs_in(form, text):
            continue
        category = raw.get("category")
        category = category.strip() if isinstance(category, str) else OTHER
        if category not in CATEGORIES:
            category = OTHER
        item = KeywordItem(form, category, clamp_importance(raw.get("importance")), backend)
        key = normalise(form)
        previous = merged.get(key)
        if previous is None:
            merged[key] = item
            continue
        best, other = (
            (item, previous) if item.importance > previous.importance else (previous, item)
        )
        if best.category == OTHER and other.category != OTHER:
            best = KeywordItem(best.word, other.category, best.importance, backend)
        merged[key] = best
    # sorted() is stable: ties keep the order the extractor ranked them in.
    return sorted(merged.values(), key=lambda item: -item.importance)
