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

Query side in ``query.py``; pages of results, their counts and the highlighting in
``results.py``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from django.contrib.postgres.search import SearchVectorField
from django.db import models

if TYPE_CHECKING:
    pass

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
        name, _path, args, kwargs = super().deconstruct()
        # The public name, as migration 0003 spells it (the class lives in index.py).
        path = "transcription.search.SearchDocumentField"
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
