"""The embedded keyword extractor: kiwipiepy morphology plus a small lexicon.

It needs no GPU and no server, so it is both the backend of machines without
an LLM and the fallback when the LLM fails. Korean text goes through Kiwi:
nouns (NNG) and proper nouns (NNP) are kept, morphemes written together are
joined into one term (인공+지능 -> 인공지능, 부산+역 -> 부산역, H+100 -> H100),
and Latin-script terms and model names are kept whole (GPT-4o, Qwen2.5,
iPhone 15). Text without Hangul goes through a small English path, because
Kiwi tags every Latin word SL and so cannot tell a noun from a verb there.

Scores come from part of speech (proper nouns and model names above common
nouns), frequency and position (earlier slightly higher), scaled so the best
keyword has importance 1. Categories come from ``lexicon``; 기타 when unsure.
Every result passes the shared ``validate_items`` post-check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keywords.extractors import lexicon
from keywords.extractors.base import (
    BACKEND_EMBEDDED,
    OTHER,
    KeywordItem,
    english_noun_like,
    get_kiwi,
    normalise,
    validate_items,
)

if TYPE_CHECKING:
    from kiwipiepy import Token

# Part-of-speech weight of a candidate, before lexicon, frequency and position.
_BASE_SCORE = {"proper": 1.0, "model": 0.9, "compound": 0.85, "latin": 0.7, "noun": 0.6}
_KIND_RANK = {kind: rank for rank, kind in enumerate(_BASE_SCORE)}
_KNOWN_BONUS = 1.2  # the lexicon names it: an entity, not just any noun
_CATEGORY_BONUS = 1.1  # a suffix rule placed it
_VERBAL_PENALTY = 0.5  # 위촉(되다), 공개(하다): the noun is the sentence's predicate
_REPEAT_BONUS = 0.3  # per extra mention, up to three
_POSITION_SPREAD = 0.2  # the last word of a text scores 20 % less than the first

_NOUN_TAGS = frozenset({"NNG", "NNP"})
_LATIN_TAGS = frozenset({"SL", "SN", "SH"})
# Symbols that may sit inside a Latin term when Latin text follows at once:
# "GPT-4o", "C++", "Qwen/Qwen2.5".
_INNER_SYMBOL_TAGS = frozenset({"SO", "SW", "SP"})
# Noun suffixes cut off the term: plural 들, honorific 님 (교수님 -> 교수).
_DROPPED_SUFFIXES = frozenset({"들", "님"})
_VERB_DERIVING_TAGS = frozenset({"XSV", "XSA"})
_COMPANY_MARKS = ("㈜", "(주)")
_TRAILING_JUNK = ".-/,:;'’\""


@dataclass
class _Candidate:
    word: str
    kind: str
    position: int
    category: str | None = None
    person_context: bool = False
    company_mark: bool = False
    verbal: bool = False
    count: int = 1
    known: bool = False  # the lexicon itself named the term


@dataclass
class _Run:
    start: int
    end: int
    tokens: list[Token]
    first_index: int
    last_index: int


class EmbeddedExtractor:
    """Keyword extraction on the CPU with kiwipiepy (see the module docstring)."""

    name = BACKEND_EMBEDDED

    def extract(
        self, text: str, *, language: str | None = None, max_items: int = 10
    ) -> list[KeywordItem]:
        if max_items <= 0 or not text or not text.strip():
            return []
        if _use_english_path(text, language):
            candidates = _english_candidates(text)
        else:
            candidates = _korean_candidates(text)
        merged = _merge(candidates)
        if not merged:
            return []
        scored = sorted(((_score(c, len(text)), c) for c in merged), key=lambda pair: -pair[0])
        top = scored[0][0]
        # Validation may refuse a few, so a handful more than asked go in.
        raw = [
            {"word": c.word, "category": c.category or OTHER, "importance": round(s / top, 3)}
            for s, c in scored[: max_items * 2 + 5]
        ]
        return validate_items(text, raw, self.name)[:max_items]


def warm_up() -> None:
    """Load Kiwi now (worker start) instead of on the first segment."""
    get_kiwi()


def _use_english_path(text: str, language: str | None) -> bool:
    hangul = sum(1 for c in text if "\uac00" <= c <= "\ud7a3")
    if hangul == 0:
        return True
    if language and language.casefold().startswith("en"):
        latin = sum(1 for c in text if c.isascii() and c.isalpha())
        return hangul < 0.2 * (hangul + latin)
    return False


def _merge(candidates: list[_Candidate]) -> list[_Candidate]:
    by_key: dict[str, _Candidate] = {}
    for cand in candidates:
        key = normalise(cand.word)
        seen = by_key.get(key)
        if seen is None:
            by_key[key] = cand
            continue
        seen.count += 1
        seen.person_context |= cand.person_context
        seen.company_mark |= cand.company_mark
        if _KIND_RANK[cand.kind] < _KIND_RANK[seen.kind]:
            seen.kind = cand.kind
        # A noun used once as a predicate and once as a topic is still a topic.
        seen.verbal &= cand.verbal
    for cand in by_key.values():
        category, cand.known = _categorise(cand)
        cand.category = category or OTHER
        cand.count = min(cand.count, 4)
    return list(by_key.values())


def _categorise(cand: _Candidate) -> tuple[str | None, bool]:
    """(category, whether the lexicon itself named the term)."""
    word = cand.word
    found = lexicon.lookup(word)
    if found is None and word[-1:] in "sS" and word.isascii():
        found = lexicon.lookup(word[:-1])  # "GPUs", "servers"
    if found is not None:
        return found, True
    if cand.company_mark:
        return lexicon.COMPANY, False
    category = lexicon.suffix_category(word, proper=cand.kind == "proper")
    if category is None and any(c.isdigit() for c in word):
        category = lexicon.model_name_category(word)
    if cand.person_context and (
        category is None
        or (category == lexicon.PLACE and word.endswith(lexicon.NAME_LIKE_PLACE_SUFFIXES))
    ):
        category = lexicon.PERSON
    return category, False


def _score(cand: _Candidate, text_length: int) -> float:
    score = _BASE_SCORE[cand.kind]
    if cand.known:
        score *= _KNOWN_BONUS
    elif cand.category != OTHER:
        score *= _CATEGORY_BONUS
    if cand.verbal:
        score *= _VERBAL_PENALTY
    score *= 1 + _REPEAT_BONUS * (cand.count - 1)
    score *= 1 - _POSITION_SPREAD * (cand.position / max(text_length, 1))
    return score


# --- Korean (and mixed) text: kiwipiepy ------------------------------------------------


def _korean_candidates(text: str) -> list[_Candidate]:
    tokens = get_kiwi().tokenize(text)
    runs = _join_spaced_models(text, _noun_runs(tokens))
    candidates: list[_Candidate] = []
    previous: tuple[_Run, _Candidate] | None = None
    for run in runs:
        cand = _run_candidate(text, run, tokens)
        if cand is None:
            continue
        title = normalise(cand.word) in lexicon.TITLE_WORDS
        if (
            title
            and previous is not None
            and previous[1].kind == "proper"
            and _only_determiners_between(previous[0], run, tokens)
        ):
            # "김철수 교수", "박 전 대통령": the name before a title is a person.
            previous[1].person_context = True
        candidates.append(cand)
        previous = (run, cand)
    return candidates


def _noun_runs(tokens: list[Token]) -> list[_Run]:
    """Maximal stretches of noun-like morphemes written without a space between."""
    runs: list[_Run] = []
    current: list[Token] = []
    current_index = 0

    def close(last_index: int) -> None:
        if current:
            runs.append(
                _Run(current[0].start, current[-1].end, list(current), current_index, last_index)
            )
            current.clear()

    for index, token in enumerate(tokens):
        tag = token.tag
        attached = bool(current) and token.start == current[-1].end
        if tag in _NOUN_TAGS or tag in _LATIN_TAGS or tag == "XPN":
            if not attached:
                close(index - 1)
                current_index = index
            current.append(token)
        elif (tag == "XSN" and attached) or (
            tag in _INNER_SYMBOL_TAGS
            and attached
            and current[-1].tag in _LATIN_TAGS
            and index + 1 < len(tokens)
            and tokens[index + 1].start == token.end
            and tokens[index + 1].tag in _LATIN_TAGS
        ):
            current.append(token)
        else:
            close(index - 1)
    close(len(tokens) - 1)
    return runs


def _join_spaced_models(text: str, runs: list[_Run]) -> list[_Run]:
    """Join "iPhone 15", "RTX 4090", "갤럭시 S24": a name and its model number."""
    joined: list[_Run] = []
    for run in runs:
        if joined:
            prev = joined[-1]
            gap = text[prev.end : run.start]
            tags = {t.tag for t in run.tokens}
            latin_before = prev.tokens[-1].tag == "SL"
            product_before = lexicon.lookup(text[prev.start : prev.end]) in {
                lexicon.PRODUCT,
                lexicon.EQUIPMENT,
            }
            number_only = tags == {"SN"}
            model_code = tags <= {"SL", "SN"} and "SN" in tags and len(run.tokens) <= 3
            if (
                gap == " "
                and prev.last_index + 1 == run.first_index
                and ((latin_before and number_only) or (product_before and model_code))
            ):
                joined[-1] = _Run(
                    prev.start, run.end, prev.tokens + run.tokens, prev.first_index, run.last_index
                )
                continue
        joined.append(run)
    return joined


def _run_candidate(text: str, run: _Run, tokens: list[Token]) -> _Candidate | None:
    run_tokens = run.tokens
    for i, token in enumerate(run_tokens):
        if token.tag == "XSN" and token.form in _DROPPED_SUFFIXES:
            run_tokens = run_tokens[:i]
            break
    if not run_tokens:
        return None
    if run_tokens[-1].tag == "XSN" and run_tokens[-1].form == "적":
        return None  # 본격적, 국제적: adjectival
    if len(run_tokens) == 1 and run_tokens[0].tag == "XPN":
        return None
    word = text[run_tokens[0].start : run_tokens[-1].end].rstrip(_TRAILING_JUNK).strip()
    if len(normalise(word)) < 2:
        return None
    key = normalise(word)
    if key in lexicon.KO_STOP_NOUNS:
        return None
    tags = [t.tag for t in run_tokens]
    has_latin = "SL" in tags
    latin_only = has_latin and all(t in _LATIN_TAGS | _INNER_SYMBOL_TAGS for t in tags)
    if latin_only and (key in lexicon.EN_STOP_WORDS or not english_noun_like(word)):
        return None
    if not any(t in _NOUN_TAGS or t in {"SL", "SH"} for t in tags):
        return None  # numbers and symbols alone
    nouns = sum(1 for t in tags if t in _NOUN_TAGS)
    if "NNP" in tags:
        kind = "proper"
    elif has_latin:
        kind = "model" if _looks_like_model(word) else "latin"
    elif nouns >= 2:
        kind = "compound"
    else:
        kind = "noun"
    following = tokens[run.last_index + 1] if run.last_index + 1 < len(tokens) else None
    verbal = (
        following is not None
        and following.start == run_tokens[-1].end
        and following.tag in _VERB_DERIVING_TAGS
    )
    before = text[max(0, run.start - 3) : run.start]
    after = text[run.end : run.end + 3]
    company_mark = any(m in before or after.startswith(m) for m in _COMPANY_MARKS)
    return _Candidate(word, kind, run.start, verbal=verbal, company_mark=company_mark)


def _only_determiners_between(prev: _Run, run: _Run, tokens: list[Token]) -> bool:
    between = tokens[prev.last_index + 1 : run.first_index]
    return all(t.tag == "MM" for t in between) and len(between) <= 1


def _looks_like_model(word: str) -> bool:
    """Acronyms and model names: GPU, H100, Qwen2.5, iPhone, vLLM."""
    letters = [c for c in word if c.isalpha()]
    has_digit = any(c.isdigit() for c in word)
    capitals = sum(1 for c in letters if c.isupper())
    return has_digit or capitals >= 2 or (len(letters) > 1 and any(c.isupper() for c in word[1:]))


# --- English text -----------------------------------------------------------------------

_EN_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.+&\-]*")
_SENTENCE_END = re.compile(r"[.!?]\s*$")


def _english_candidates(text: str) -> list[_Candidate]:
    # Upper-cased text (read-speech corpora, some ASR output) carries no
    # capitalisation signal: every word is judged as a lower-case word.
    all_caps = not any(c.islower() for c in text)
    words: list[tuple[str, int, bool]] = []
    for match in _EN_TOKEN.finditer(text):
        word = match.group().rstrip(_TRAILING_JUNK)
        for possessive in ("'s", "’s"):
            if word.endswith(possessive):
                word = word[: -len(possessive)]
        if not word:
            continue
        sentence_start = not words or bool(_SENTENCE_END.search(text[: match.start()]))
        words.append((word, match.start(), sentence_start))

    candidates: list[_Candidate] = []
    phrase: list[tuple[str, int]] = []

    def flush() -> None:
        while phrase and phrase[-1][0] == "of":
            phrase.pop()
        if phrase:
            candidates.append(_Candidate(" ".join(w for w, _ in phrase), "proper", phrase[0][1]))
            phrase.clear()

    for index, (word, start, sentence_start) in enumerate(words):
        lower = word.casefold()
        has_alpha = any(c.isalpha() for c in word)
        if not has_alpha:
            flush()
            continue
        if any(c.isdigit() for c in word):
            flush()
            candidates.append(_Candidate(word, "model", start))
            continue
        if all_caps:
            if english_noun_like(lower) and len(lower) > 1:
                candidates.append(_Candidate(lower, "noun", start))
            continue
        if word.isupper() and len(word) > 1 or (len(word) > 1 and _has_inner_capital(word)):
            flush()
            if lower not in lexicon.EN_STOP_WORDS:
                candidates.append(_Candidate(word, "model", start))
            continue
        if word[0].isupper():
            next_capital = index + 1 < len(words) and words[index + 1][0][:1].isupper()
            if lower in lexicon.EN_FUNCTION_WORDS or (
                lower in lexicon.EN_COMMON_WORDS and (sentence_start or not next_capital)
            ):
                flush()
                continue
            if sentence_start and not next_capital and lexicon.lookup(word) is None:
                # "Turnips were ..." : a capital that only marks the sentence start.
                flush()
                if english_noun_like(lower):
                    candidates.append(_Candidate(word, "noun", start))
                continue
            if phrase and text[phrase[-1][1] + len(phrase[-1][0]) : start] != " ":
                flush()
            phrase.append((word, start))
            continue
        if (
            lower == "of"
            and phrase
            and index + 1 < len(words)
            and words[index + 1][0][:1].isupper()
        ):
            phrase.append((word, start))  # "Bank of America", "University of Seoul"
            continue
        flush()
        if english_noun_like(lower) and len(lower) > 2:
            candidates.append(_Candidate(word, "noun", start))
    flush()
    return candidates


def _has_inner_capital(word: str) -> bool:
    return any(c.isupper() for c in word[1:]) and any(c.islower() for c in word)
