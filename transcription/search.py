"""Korean-aware search over what was said, in PostgreSQL, with or without pg_trgm.

Korean glues particles and endings to words (``삼성전자의``, ``삼성전자가``) and spaces
them inconsistently (speech recognisers even more so: ``장동 련``), so neither a word
index nor Postgres' own text-search dictionaries (there is none for Korean) find a
noun inside its inflected forms. Trigram indexes (pg_trgm) do not help either: most
Korean nouns are two syllables, shorter than a trigram, and the embedded PostgreSQL
has no pg_trgm at all. This module indexes Hangul by character bigrams instead, which
works on any PostgreSQL and answers substring questions from a GIN index.

Document side (``search_document``, computed in Python whenever a segment's text is
saved, through ``SearchDocumentField.pre_save``):
  * Hangul: each run of Hangul syllables, joined across plain whitespace with the next
    run (so ``삼성 전자`` indexes like ``삼성전자``), contributes all its character
    bigrams plus its last syllable (so one-syllable queries find every position:
    a syllable either starts a bigram or ends a run).
  * Everything else (Latin, digits, other scripts): each run of letters and digits,
    lower-cased, as one lexeme; queries match it by prefix (``gpt:*``).
  The lexemes are stored as a ``tsvector`` literal, cast rather than parsed: no
  text-search parser or locale decides what a token is, so the embedded (C locale) and
  Debian servers index identically. Only the tsvector is stored (no text copy of the
  lexemes): segment rows stay narrow, which is what a search touching many rows pays for.

Query side (``parse_query``): the query is split on whitespace; each word loses its
trailing particles and endings (``삼성전자의`` -> ``삼성전자``, ``발표했다`` -> ``발표``)
and becomes a term. A term matches a segment when
  1. the segment's tsvector contains every bigram of the term's Hangul runs and a
     lexeme starting with each of its other runs (GIN index: the candidates), and
  2. for terms the index cannot decide alone (three or more syllables, or several runs),
     the text matches the term's regular expression (its syllables with optional
     whitespace between them, Latin runs at a word start), which removes bigram false
     positives such as ``삼성`` ... ``성전`` ... ``전자`` apart.
Every term must match in the same segment (AND). Stripping a particle only ever widens a
term to a substring of itself, so a wrong strip costs precision, never recall.

Particles are removed with kiwipiepy's morphological analysis when Kiwi is already
loaded in the process, and otherwise by a rule-based stripper of common particles and
endings (instant). Loading Kiwi takes ~3 s and ~100 MB; the web process starts it in a
background thread on its first search instead of making that request wait, so the
first few searches after a restart use the rules. Both agree on the common case (a noun
with a particle); Kiwi is better on words that merely end like a particle (``고양이``).

Pages of results, their counts and the highlighting are in ``transcription/search_results.py``.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.contrib.postgres.search import SearchQueryField, SearchVectorField
from django.db import models
from django.db.models import BooleanField, Exists, F, Func, OuterRef, Q, Value, Window
from django.db.models.functions import Cast, RowNumber

if TYPE_CHECKING:
    from transcription.models import Segment, Transcript

log = logging.getLogger(__name__)

# Longest query we analyse, and most terms: a search box, not a document.
MAX_QUERY_CHARS = 200
MAX_TERMS = 8
# A Latin "word" longer than this is not a word (a hash, a URL); index its start only.
MAX_TOKEN_CHARS = 64

_HANGUL_RUN = "가-힣"
# Runs of Hangul syllables, or runs of other letters and digits. Jamo (ㅋㅋ) and other
# scripts fall in the second kind.
_TOKEN = re.compile(rf"[{_HANGUL_RUN}]+|[^\W_{_HANGUL_RUN}]+")
_IS_HANGUL = re.compile(rf"[{_HANGUL_RUN}]")
# Between the runs of one term ("GPT-4o", "갤럭시 S24"): a little punctuation or space.
_JOINER = r"[\s\-_./·'’:]{0,3}"
# A Latin/digit run must start a word: no letter or digit right before it.
_WORD_START = r"(?<![a-z0-9])"


def normalise(text: str) -> str:
    """NFKC (full-width Latin, compatibility Hangul) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def _is_hangul(token: str) -> bool:
    return bool(_IS_HANGUL.match(token))


# --- document side --------------------------------------------------------------------


def search_document(text: str) -> str:
    """The lexemes of ``text`` for the search index, space-separated (see module doc)."""
    norm = normalise(text or "")
    lexemes: dict[str, None] = {}  # ordered set

    def flush(chain: str) -> None:
        for i in range(len(chain) - 1):
            lexemes[chain[i : i + 2]] = None
        if chain:
            lexemes[chain[-1]] = None

    chain = ""
    previous_end = -1
    for match in _TOKEN.finditer(norm):
        token = match.group()
        if _is_hangul(token):
            # Join Hangul runs separated only by whitespace: spacing is unreliable.
            if chain and norm[previous_end : match.start()].isspace():
                chain += token
            else:
                flush(chain)
                chain = token
        else:
            flush(chain)
            chain = ""
            lexemes[token[:MAX_TOKEN_CHARS]] = None
        previous_end = match.end()
    flush(chain)
    return " ".join(lexemes)


class SearchDocumentField(SearchVectorField):
    """A tsvector column holding ``search_document(<source field>)``, kept current on save.

    Computed in ``pre_save``, so ``save()``, ``create()``, ``update_or_create()`` (which
    adds fields with their own ``pre_save`` to its ``update_fields``) and
    ``bulk_create()`` all fill it. ``QuerySet.update(text=...)`` and ``bulk_update``
    bypass it: call ``refresh_search_documents`` after those.
    """

    def __init__(self, *args: Any, source: str = "text", **kwargs: Any) -> None:
        self.source = source
        kwargs.setdefault("editable", False)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        for key, value in (("editable", False), ("default", "")):
            if kwargs.get(key) == value:
                kwargs.pop(key)
        return name, path, args, kwargs

    def pre_save(self, model_instance, add: bool) -> str:
        # A tsvector literal: PostgreSQL reads it as is (lexemes are letters and digits
        # only, so nothing needs quoting).
        value = search_document(getattr(model_instance, self.source) or "")
        setattr(model_instance, self.attname, value)
        return value


def refresh_search_documents(segments: models.QuerySet, batch_size: int = 1000) -> int:
    """Recompute the search column of ``segments`` (after a ``QuerySet.update`` of text)."""
    model = segments.model
    changed = 0
    batch = []
    for segment in segments.only("pk", "text").iterator(chunk_size=batch_size):
        segment.search_vector = search_document(segment.text)
        batch.append(segment)
        if len(batch) >= batch_size:
            changed += model.objects.bulk_update(batch, ["search_vector"])
            batch = []
    if batch:
        changed += model.objects.bulk_update(batch, ["search_vector"])
    return changed


# --- query side -----------------------------------------------------------------------

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
    from keywords.extractors.base import get_kiwi

    tokens = get_kiwi().tokenize(word)
    cut = len(word)
    for token in reversed(tokens):
        if not _strippable(token.tag):
            break
        cut = min(cut, token.start)
    # A stem fused with its ending ("봤어요" = 보 + 았 + 어요) leaves nothing to keep.
    return word[:cut] if cut > 0 else word


_warming = threading.Lock()
_warm_started = False


def kiwi_ready() -> bool:
    import keywords.extractors.base as base

    # The extractor module owns the process's one Kiwi; it is set once fully loaded.
    return base._kiwi is not None


def warm_kiwi_in_background() -> None:
    """Load Kiwi in a daemon thread (once per process) so later searches can use it."""
    global _warm_started
    with _warming:
        if _warm_started or kiwi_ready():
            return
        _warm_started = True

    def load() -> None:
        try:
            from keywords.extractors.base import get_kiwi

            get_kiwi()
        except Exception:  # pragma: no cover - kiwipiepy is a dependency
            log.exception("could not load Kiwi; searches keep the rule-based stripper")

    threading.Thread(target=load, name="kiwi-warmup", daemon=True).start()


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
        .only("id", "transcript_id", "index", "start", "end", "text")
    )
    found: dict[Any, list[Segment]] = {}
    for segment in rows:
        found.setdefault(segment.transcript_id, []).append(segment)
    return found
