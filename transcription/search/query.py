"""The query side of search: a search box's words to terms (particles and endings
stripped, by Kiwi once loaded, else by rules) and terms to conditions on the segments'
search column (see ``index.py`` for the document side and the why)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.contrib.postgres.search import SearchQueryField
from django.db import models
from django.db.models import BooleanField, Exists, F, Func, OuterRef, Q, Value, Window
from django.db.models.functions import Cast, RowNumber

from keywords.korean import get_kiwi, kiwi_ready, warm_kiwi_in_background
from transcription.search.index import (
    _JOINER,
    _TOKEN,
    _WORD_START,
    MAX_QUERY_CHARS,
    MAX_TERMS,
    MAX_TOKEN_CHARS,
    _is_hangul,
    normalise,
)

if TYPE_CHECKING:
    from transcription.models import Segment, Transcript

# The columns a search hit shows (transcription/notify.py segment_payload, without words):
# hits are loaded with these only.
HIT_FIELDS = (
    "id",
    "index",
    "start",
    "end",
    "text",
    "original_text",
    "edited_at",
    "version",
    "speaker",
)

# Particles and endings the rule-based stripper removes (longest first). A word keeps
# at least two syllables, so "회의", "정도", "국가" survive whole.
_PARTICLE_LIST = (
    # case and auxiliary particles
    "이 가 을 를 은 는 의 에 와 과 도 만 로 랑 께 으로 에서 에게 한테 께서 까지 부터 "
    "처럼 보다 하고 이랑 이나 나 마다 조차 밖에 에게서 한테서 으로서 로서 으로써 로써 "
    "이라고 라고 이라는 라는 이며 이고 요 "
    # copula and the commonest light-verb endings on nouns
    "이다 입니다 이에요 예요 였다 이었다 이었습니다 였습니다 하다 한다 했다 합니다 "
    "했습니다 하는 했던 해서 하여 하기 하면 하며 된다 됐다 되는 되었다 됩니다"
)
_PARTICLES = sorted(set(_PARTICLE_LIST.split()), key=len, reverse=True)
# Kiwi tags that may be dropped from the end of a word: particles (J*), endings (E*),
# the copula, and suffixes that make verbs, adjectives or plurals/honorifics of nouns.
_STRIP_TAGS = frozenset({"VCP", "VCN", "XSV", "XSA", "XSN"})


def _strip_by_rules(word: str) -> str:
    # Two rounds: a particle may follow another ("서울에서는" -> "서울에서" -> "서울").
    for _ in range(2):
        for particle in _PARTICLES:
            rest = word[: -len(particle)]
            # Latin before a particle ("GPU를") is always a word of its own.
            if word.endswith(particle) and (len(rest) >= 2 or (rest and not _is_hangul(rest[-1]))):
                word = rest
                break
        else:
            break
    return word


def _strippable(tag: str) -> bool:
    tag = tag.split("-")[0]  # irregular verbs are tagged "VV-R" etc.
    return tag[0] in "JE" or tag in _STRIP_TAGS


@lru_cache(maxsize=4096)
def _strip_by_kiwi(word: str) -> str:
    tokens = get_kiwi().tokenize(word)
    cut = len(word)
    for token in reversed(tokens):
        if not _strippable(token.tag):
            break
        cut = min(cut, token.start)
    # A stem fused with its ending ("봤어요" = 보 + 았 + 어요) leaves nothing to keep.
    return word[:cut] if cut > 0 else word


def strip_word(word: str, analyser: str = "auto") -> str:
    """``word`` without its trailing particles/endings (``삼성전자의`` -> ``삼성전자``).

    ``analyser``: ``kiwi``, ``rules``, or ``auto`` (Kiwi if already loaded, else rules
    while Kiwi loads in the background).
    """
    if not word or not _is_hangul(word[-1]):
        return word
    if analyser == "auto":
        if kiwi_ready():
            analyser = "kiwi"
        else:
            warm_kiwi_in_background()
            analyser = "rules"
    stripped = _strip_by_kiwi(word) if analyser == "kiwi" else _strip_by_rules(word)
    # Keep something searchable: a word that was only a particle stays as typed.
    return stripped if _TOKEN.search(stripped) else word


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class Term:
    """One word of a query, particles removed: ``text`` and its script runs."""

    text: str
    tokens: tuple[str, ...]

    @property
    def tsquery(self) -> str:
        parts: list[str] = []
        for token in self.tokens:
            if _is_hangul(token) and len(token) >= 2:
                bigrams = dict.fromkeys(token[i : i + 2] for i in range(len(token) - 1))
                parts.extend(_quote(b) for b in bigrams)
            else:
                # One syllable: any bigram starting with it or a run ending in it.
                # Latin and digits: words starting with it ("gpt" finds "gpt4").
                parts.append(_quote(token[:MAX_TOKEN_CHARS]) + ":*")
        return "(" + " & ".join(parts) + ")"

    @property
    def pattern(self) -> str:
        """A regular expression valid in both Python ``re`` and PostgreSQL (ARE), used
        case-insensitively: whitespace may fall between syllables, Latin runs start a word.
        """
        parts = []
        for token in self.tokens:
            if _is_hangul(token):
                parts.append(r"\s*".join(re.escape(c) for c in token))
            else:
                parts.append(_WORD_START + re.escape(token))
        return _JOINER.join(parts)

    @property
    def index_decides(self) -> bool:
        """Whether the tsvector alone is exact for this term: one run that is Latin/digits
        (a prefix) or one or two syllables (a bigram or a syllable). Longer Hangul needs
        the text check, because its bigrams may occur apart."""
        return len(self.tokens) == 1 and (
            not _is_hangul(self.tokens[0]) or len(self.tokens[0]) <= 2
        )

    def condition(self, prefix: str = "") -> Q:
        """Rows (segments, or via ``prefix`` related rows) whose text contains the term."""
        return segment_condition([self], prefix)

    def text_condition(self, field: str = "text") -> Q:
        """The text check alone, for rows already narrowed some other way (no index)."""
        return Q(**{field + "__iregex": self.pattern})


def parse_query(q: str | None, analyser: str = "auto") -> list[Term]:
    """The terms of a search box query (see module doc); empty if nothing is searchable."""
    terms: dict[str, Term] = {}
    for raw in normalise((q or "")[:MAX_QUERY_CHARS]).split():
        tokens = _TOKEN.findall(raw)
        if not tokens:
            continue
        # Trim punctuation around the word ("삼성전자의?" -> "삼성전자의").
        word = raw[raw.index(tokens[0]) : raw.rindex(tokens[-1]) + len(tokens[-1])]
        word = strip_word(word, analyser)
        term = Term(word, tuple(t[:MAX_TOKEN_CHARS] for t in _TOKEN.findall(word)))
        terms.setdefault(term.text, term)
        if len(terms) >= MAX_TERMS:
            break
    return list(terms.values())


class TsMatch(Func):
    """``search_vector @@ '<tsquery literal>'::tsquery``: cast, not parsed, like the
    document side, so the query's lexemes are exactly the ones built here."""

    arg_joiner = " @@ "
    template = "(%(expressions)s)"
    output_field = BooleanField()

    def __init__(self, vector, tsquery: str) -> None:
        super().__init__(vector, Cast(Value(tsquery), SearchQueryField()))


def segment_condition(terms: Sequence[Term], prefix: str = "") -> Q:
    """All terms in one segment, with one index probe for all of them."""
    condition = Q(TsMatch(F(prefix + "search_vector"), " & ".join(t.tsquery for t in terms)))
    for term in terms:
        if not term.index_decides:
            condition &= term.text_condition(prefix + "text")
    return condition


class SegmentQuerySet(models.QuerySet):
    def search(self, q: str | None, analyser: str = "auto") -> SegmentQuerySet:
        """Segments containing every term of ``q``; a blank ``q`` filters nothing."""
        if not (q or "").strip():
            return self
        terms = parse_query(q, analyser)
        if not terms:
            return self.none()
        return self.filter(segment_condition(terms))


class SegmentManager(models.Manager.from_queryset(SegmentQuerySet)):
    """Leaves the search column out of loaded rows: nothing reads it in Python."""

    def get_queryset(self) -> SegmentQuerySet:
        return super().get_queryset().defer("search_vector")


def segment_model():
    from transcription.models import Segment

    return Segment


def within_transcripts(segments: models.QuerySet, transcripts: models.QuerySet) -> models.QuerySet:
    # A staff member's unfiltered history is every transcript: no join needed.
    if not transcripts.query.where:
        return segments
    return segments.filter(transcript__in=transcripts.order_by().values("pk"))


def title_condition(terms: Sequence[Term]) -> Q:
    condition = Q()
    for term in terms:
        condition &= term.text_condition("title")
    return condition


def search_transcripts(
    transcripts: models.QuerySet[Transcript], q: str | None, analyser: str = "auto"
) -> models.QuerySet[Transcript]:
    """Transcripts with a segment containing every term of ``q``, or a title containing
    them. A plain QuerySet for small sets (admin, tests); lists use ``TranscriptHits``."""
    if not (q or "").strip():
        return transcripts
    terms = parse_query(q, analyser)
    if not terms:
        return transcripts.none()
    said = segment_model().objects.filter(segment_condition(terms), transcript=OuterRef("pk"))
    return transcripts.filter(Q(Exists(said)) | title_condition(terms))


def matching_segments(
    transcript_ids: Iterable[Any], terms: Sequence[Term], per_transcript: int = 3
) -> dict[Any, list[Segment]]:
    """The first few segments of each transcript that contain any of the terms (any
    segments without terms), for snippets under results; one query for a whole page.

    Only the text check, on purpose: the page's transcripts are few and known, so their
    segments come by the transcript index; offered the GIN index, PostgreSQL would read
    every match of a common word to keep the few of these transcripts.
    """
    ids = list(transcript_ids)
    if not ids:
        return {}
    any_term = Q()
    for term in terms:
        any_term |= term.text_condition()
    rows = (
        segment_model()
        .objects.filter(any_term, transcript_id__in=ids)
        .annotate(
            rank=Window(RowNumber(), partition_by=F("transcript_id"), order_by=F("index").asc())
        )
        .filter(rank__lte=per_transcript)
        .order_by("transcript_id", "index")
        # What a hit shows (segment_payload without words), and no more.
        .only(*HIT_FIELDS, "transcript_id")
    )
    found: dict[Any, list[Segment]] = {}
    for segment in rows:
        found.setdefault(segment.transcript_id, []).append(segment)
    return found
