"""The embedded summary: the most central sentences of a transcript, and action items and
decisions found by cue words. No GPU, no server: kiwipiepy only.

It is what a transcript gets when no LLM answers (``KEYWORD_BACKEND=embedded``, the server
down, the circuit breaker open, an answer that fails the checks), so it must hold up on
what Whisper writes:

* Sentences. Whisper often writes Korean without full stops, and one segment can end in
  the middle of a sentence; Kiwi's splitter works on morphology, not punctuation, and each
  of its sentences is cut again after every sentence-final ending (EF, and the ``-ㄴ다``
  endings it tags as connective in run-on speech when an interjection or a new clause
  follows). Latin text is cut after ``.?!`` before a capital.
* Junk. A sentence needs at least ``MIN_CONTENT`` content morphemes (nouns, verb and
  adjective stems, Latin words that are not stop words) and ``MIN_CHARS`` characters:
  "네 네", "음 그러니까요" and particles-only fragments never reach the summary.
  Repeats (the same words again, which Whisper produces on loops) are dropped.
* Centrality. TextRank: PageRank over the TF-IDF cosine similarity of the sentences'
  content morphemes; over ``MAX_GRAPH_SENTENCES`` sentences (hours of speech) the
  similarity to the whole transcript's centroid instead, which is linear in the length.
  The best sentences, none too similar to one already taken, are kept in spoken order.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from keywords.extractors.lexicon import EN_STOP_WORDS
from keywords.korean import get_kiwi

MIN_CONTENT = 2
MIN_CHARS = 8
MAX_SENTENCE_CHARS = 240
MAX_SUMMARY_SENTENCES = 5
MAX_SUMMARY_CHARS = 700
MAX_ITEMS = 5
MAX_ITEM_CHARS = 200
MAX_GRAPH_SENTENCES = 1500
# Two sentences this similar say the same thing: only the better one is kept.
REDUNDANT = 0.7
DAMPING = 0.85

_CONTENT_TAGS = frozenset({"NNG", "NNP", "SH", "XR"})
_STEM_TAGS = frozenset({"VV", "VA"})
# Stems that carry no meaning of their own (하다, 있다, 되다 ...): not content.
_LIGHT_STEMS = frozenset(
    {"하", "있", "없", "되", "이", "아니", "같", "보", "주", "오", "가", "위하"}
)
_LATIN_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'“‘(]?[A-Z0-9\uac00-\ud7a3])")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’\-]*")
_KEY = re.compile(r"[\W_]+", re.UNICODE)
# Endings Kiwi may tag as connective inside run-on speech although they end a sentence:
# polite ones end it before any next word; plain ones only before a new clause.
_POLITE_FINAL = frozenset({"ᆸ니다", "습니다", "어요", "아요", "에요", "예요", "죠", "지요"})
_PLAIN_FINAL = frozenset({"ᆫ다", "는다", "다"})
# Interjections and punctuation marks: not words a sentence may start or end on.
_FILLER_OR_MARK = frozenset({"IC", "SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW"})
_NEW_CLAUSE_TAGS = frozenset({"IC", "MAJ", "NP", "MM"})

# Cue words (Korean and English). A decision: something was settled. An action item:
# someone has to do something, or says they will.
_DECISION_CUES = re.compile(
    r"(하기로|기로\s*(했|하였|결정|합의|정했)|결정(했|하였|됐|되었|된|함|입니다|이다)|"
    r"확정(했|하였|됐|되었|된)|합의(했|하였|됐|되었|된)|정했|"
    r"\b(decided|agreed|decision|settled on|approved|concluded|we'?ll go with)\b)",
    re.IGNORECASE,
)
_ACTION_CUES = re.compile(
    r"(해야\s*(한다|합니다|해요|하|돼|됩니다|겠|할|될)|하도록\s*(하|해)|"
    r"(해|줘|봐)\s*주(세요|시기|십시오|시면)|부탁|하겠습니다|할게요|할\s*게요|드리겠습니다|"
    r"챙겨|까지\s*(보내|제출|완료|준비|공유|정리|확인)|"
    r"\b(I|we|you|they)\s*(will|'ll|need to|have to|must|should)\b|"
    r"\bneeds?\s+to\b|\bplease\b|\baction items?\b|\bfollow[- ]up\b|\bto-?do\b)",
    re.IGNORECASE,
)


@dataclass
class Sentence:
    text: str
    position: int
    terms: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ExtractiveSummary:
    sentences: list[str]
    action_items: list[str]
    decisions: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def summarise(texts: list[str], *, max_sentences: int = MAX_SUMMARY_SENTENCES) -> ExtractiveSummary:
    """The summary of a transcript given as the texts of its segments, in order."""
    sentences = candidate_sentences(texts)
    chosen = central_sentences(sentences, max_sentences=max_sentences)
    decisions = _cued(sentences, _DECISION_CUES)
    taken = {_key(item) for item in decisions}
    actions = [item for item in _cued(sentences, _ACTION_CUES) if _key(item) not in taken]
    return ExtractiveSummary([s.text for s in chosen], actions, decisions)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, punctuated or not (see the module docstring)."""
    text = " ".join(text.split())
    if not text:
        return []
    pieces: list[str] = []
    for sentence in get_kiwi().split_into_sents(text):
        for part in _cut_after_endings(sentence.text):
            pieces.extend(p for p in _LATIN_SPLIT.split(part) if p.strip())
    out: list[str] = []
    for piece in pieces:
        out.extend(_cut_long(piece.strip()))
    return out


def _cut_after_endings(text: str) -> list[str]:
    tokens = get_kiwi().tokenize(text)
    cuts: list[int] = []
    for i, token in enumerate(tokens[:-1]):
        following = tokens[i + 1]
        if token.tag == "SL" and following.tag == "IC":
            # "... send the notes tomorrow 네 네": English ended, Korean speech goes on.
            cuts.append(following.start)
            continue
        ends = token.tag == "EF" or (
            token.tag == "EC" and token.form in _POLITE_FINAL | _PLAIN_FINAL
        )
        # Only at a space: "했다고" and "합니다만" go on.
        spaced = following.start > token.start + token.len
        if not ends or not spaced or following.tag.startswith(("S", "J", "E", "X", "V")):
            continue
        plain = token.tag == "EC" and token.form in _PLAIN_FINAL
        if plain and following.tag not in _NEW_CLAUSE_TAGS:
            continue
        cuts.append(following.start)
    parts, begin = [], 0
    for cut in cuts:
        if text[begin:cut].strip():
            parts.append(text[begin:cut].strip())
        begin = cut
    if text[begin:].strip():
        parts.append(text[begin:].strip())
    return parts


def _trim_fillers(text: str) -> str:
    """Without the interjections it starts or ends with ("네 네 그래서 ..." -> "그래서 ...")."""
    tokens = get_kiwi().tokenize(text)
    words = [t for t in tokens if t.tag not in _FILLER_OR_MARK]
    if not words:
        return ""
    start = min(t.start for t in tokens if t.tag != "IC")
    last = max(t.start + t.len for t in words)
    # Punctuation right after the last word stays ("했습니다." keeps its full stop).
    rest = text[last:]
    tail = rest[: len(rest) - len(rest.lstrip(".?!…"))]
    return (text[start:last] + tail).strip()


def _cut_long(text: str) -> list[str]:
    """A "sentence" longer than anyone says in one breath is cut at spaces."""
    if len(text) <= MAX_SENTENCE_CHARS:
        return [text] if text else []
    parts, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > MAX_SENTENCE_CHARS:
            parts.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        parts.append(current)
    return parts


def content_terms(sentence: str) -> list[str]:
    """The morphemes that carry a sentence's meaning: nouns, roots, verb and adjective stems
    other than the light ones, and Latin words other than stop words (lower-cased)."""
    terms: list[str] = []
    for token in get_kiwi().tokenize(sentence):
        if token.tag in _CONTENT_TAGS and len(token.form) >= 1:
            if (
                token.tag == "NNG"
                and len(token.form) < 2
                and token.form in {"것", "수", "등", "거"}
            ):
                continue
            terms.append(token.form)
        elif token.tag in _STEM_TAGS and token.form not in _LIGHT_STEMS:
            terms.append(token.form + "다")
        elif token.tag == "SL":
            for word in _LATIN_WORD.findall(token.form):
                lower = word.casefold().strip("'’")
                if len(lower) > 1 and lower not in EN_STOP_WORDS:
                    terms.append(lower)
    return terms


def candidate_sentences(texts: list[str]) -> list[Sentence]:
    """The transcript's sentences worth summarising, in spoken order, each once."""
    joined = " ".join(t.strip() for t in texts if t and t.strip())
    seen: set[str] = set()
    seen_terms: set[frozenset[str]] = set()
    out: list[Sentence] = []
    for text in split_sentences(joined):
        text = _trim_fillers(text)
        key = _key(text)
        if len(key) < MIN_CHARS or key in seen:
            continue
        terms = content_terms(text)
        # The same words again ("그러니까 회의에서 예산을 늘리기로 했습니다" after
        # "회의에서 예산을 늘리기로 했습니다"): said once is enough.
        if len(terms) < MIN_CONTENT or frozenset(terms) in seen_terms:
            continue
        seen.add(key)
        seen_terms.add(frozenset(terms))
        out.append(Sentence(text, len(out), terms))
    return out


def central_sentences(
    sentences: list[Sentence], *, max_sentences: int = MAX_SUMMARY_SENTENCES
) -> list[Sentence]:
    """The most central sentences, none redundant with another, in spoken order."""
    if not sentences or max_sentences <= 0:
        return []
    n = len(sentences)
    wanted = n if n <= 3 else min(max_sentences, max(3, round(math.sqrt(n))))
    vectors = _tfidf(sentences)
    scores = _textrank(vectors) if n <= MAX_GRAPH_SENTENCES else _centroid_scores(vectors)
    # Sentences that share no words rank alike; then the one that says more goes first.
    richness = np.array([len(set(s.terms)) for s in sentences], dtype=np.float64)
    scores = scores + 1e-3 * scores.mean() * richness / richness.max()
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    chosen: list[int] = []
    chars = 0
    for i in order:
        if len(chosen) >= min(wanted, max_sentences):
            break
        if any(float(vectors[i] @ vectors[j]) >= REDUNDANT for j in chosen):
            continue
        if chosen and chars + len(sentences[i].text) > MAX_SUMMARY_CHARS:
            continue
        chosen.append(i)
        chars += len(sentences[i].text)
    return [sentences[i] for i in sorted(chosen)]


def _tfidf(sentences: list[Sentence]) -> np.ndarray:
    vocabulary: dict[str, int] = {}
    for sentence in sentences:
        for term in sentence.terms:
            vocabulary.setdefault(term, len(vocabulary))
    n = len(sentences)
    matrix = np.zeros((n, max(1, len(vocabulary))), dtype=np.float32)
    for row, sentence in enumerate(sentences):
        for term, count in Counter(sentence.terms).items():
            matrix[row, vocabulary[term]] = 1.0 + math.log(count)
    document_frequency = (matrix > 0).sum(axis=0)
    matrix *= np.log((1 + n) / (1 + document_frequency)) + 1.0
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def _textrank(vectors: np.ndarray) -> np.ndarray:
    n = vectors.shape[0]
    if n == 1:
        return np.ones(1)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, 0.0)
    totals = similarity.sum(axis=1, keepdims=True)
    # A sentence sharing no word with any other links to all alike (no dead ends).
    transition = np.where(totals > 0, similarity / np.where(totals > 0, totals, 1), 1.0 / n)
    scores = np.full(n, 1.0 / n)
    for _ in range(100):
        updated = (1 - DAMPING) / n + DAMPING * (transition.T @ scores)
        if np.abs(updated - scores).sum() < 1e-6:
            return updated
        scores = updated
    return scores


def _centroid_scores(vectors: np.ndarray) -> np.ndarray:
    centroid = vectors.sum(axis=0)
    norm = np.linalg.norm(centroid)
    return vectors @ (centroid / norm) if norm else np.zeros(vectors.shape[0])


def _cued(sentences: list[Sentence], cues: re.Pattern[str]) -> list[str]:
    found: list[str] = []
    for sentence in sentences:
        if cues.search(sentence.text):
            text = sentence.text
            if len(text) > MAX_ITEM_CHARS:
                text = text[: MAX_ITEM_CHARS - 1].rstrip() + "…"
            found.append(text)
            if len(found) == MAX_ITEMS:
                break
    return found


def _key(text: str) -> str:
    return _KEY.sub("", text).casefold()
