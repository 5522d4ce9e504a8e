"""Korean-aware search: particles on either side, partial words, spacing, bigram false
positives, Latin prefixes, and highlighting that never lets text become markup."""

from __future__ import annotations

import pytest

from tests.factories import make_transcript
from transcription.models import Segment, Transcript
from transcription.search import (
    TsMatch,
    parse_query,
    search_document,
    search_transcripts,
    strip_word,
)
from transcription.search import results as search_results
from transcription.search.results import (
    PageNotFound,
    SegmentHits,
    TranscriptHits,
    highlight,
    match_spans,
    paginate,
    snippet,
)

ANALYSERS = ["rules", "kiwi"]

TEXTS = [
    "삼성전자의 새 공장이 평택에 들어섭니다",  # 0: particle attached in the text
    "지난해 삼 월 김 전 장관의 동료 인 장동 련 홍익대 교수가 위촉 되면서",  # 1: spaced
    "GPUs 증설은 엔비디아 H100 서버로 하고 GPT-4o로 시범 운영합니다",  # 2: Latin
    "한창 피어난 노란 동백꽃 속으로 폭 파묻혀 버렸다",  # 3: one-syllable words
    "삼성 이야기는 성전 건축과 전자 제품 이야기였다",  # 4: every bigram of 삼성전자, apart
    "다음 분기 회의에서 발표했다",  # 5: verb forms
]


@pytest.fixture
def segments(db):
    transcript = make_transcript(None, texts=TEXTS)
    return {s.index: s for s in transcript.segments.all()}


def found(q: str, analyser: str = "auto") -> set[int]:
    return set(Segment.objects.search(q, analyser).values_list("index", flat=True))


def test_search_document_indexes_bigrams_across_spaces_and_latin_words():
    doc = search_document("삼성 전자의 GPU-4o")
    assert doc.split() == ["삼성", "성전", "전자", "자의", "의", "gpu", "4o"]
    assert search_document("폭") == "폭"
    assert search_document("") == ""


@pytest.mark.parametrize("analyser", ANALYSERS)
def test_noun_with_a_particle_in_the_text(segments, analyser):
    assert found("삼성전자", analyser) == {0}


@pytest.mark.parametrize("analyser", ANALYSERS)
@pytest.mark.parametrize("query", ["삼성전자가", "삼성전자의", "삼성전자를", "삼성전자에서는"])
def test_particle_in_the_query(segments, analyser, query):
    assert found(query, analyser) == {0}


def test_partial_words_match(segments):
    assert found("성전자") == {0}
    assert found("홍익") == {1}
    assert found("동백") == {3}


def test_spacing_does_not_matter(segments):
    # Speech recognisers space Korean inconsistently: "장동 련" is the name 장동련.
    assert found("장동련이") == {1}
    assert found("장동 련") == {1}


def test_bigram_false_positives_are_rejected(segments):
    # Segment 4 holds every bigram of 삼성전자 (삼성, 성전, 전자) but not the word:
    # the index proposes it, the text check removes it.
    terms = parse_query("삼성전자")
    candidates = Segment.objects.filter(TsMatch("search_vector", terms[0].tsquery))
    assert set(candidates.values_list("index", flat=True)) == {0, 4}
    assert found("삼성전자") == {0}


def test_latin_words_match_by_prefix_and_case(segments):
    assert found("gpu") == {2}
    assert found("GPUs") == {2}
    assert found("h100") == {2}
    assert found("gpt-4o") == {2}
    assert found("GPT-4o로") == {2}
    # Prefixes only: "pu" is inside "gpus", not the start of a word.
    assert found("pu") == set()


def test_one_syllable_terms(segments):
    assert found("꽃") == {3}  # the last syllable of 동백꽃
    assert found("폭") == {3}  # a word of its own
    assert found("꽃이") == {3}


@pytest.mark.parametrize("analyser", ANALYSERS)
def test_every_word_must_match(segments, analyser):
    assert found("삼성전자 평택", analyser) == {0}
    assert found("삼성전자 교수", analyser) == set()


def test_verb_forms_with_kiwi(segments):
    assert strip_word("발표했다", "kiwi") == "발표"
    assert found("발표했다", "kiwi") == {5}
    assert found("회의를", "kiwi") == {5}
    assert found("회의를", "rules") == {5}


def test_blank_and_unsearchable_queries(segments):
    assert found("") == set(range(len(TEXTS)))
    assert found("   ") == set(range(len(TEXTS)))
    assert found("?!") == set()
    assert found("없는단어") == set()


@pytest.mark.parametrize(
    ("word", "rules", "kiwi"),
    [
        ("삼성전자의", "삼성전자", "삼성전자"),
        ("서울에서는", "서울", "서울"),
        ("회의", "회의", "회의"),  # 의 is part of the word
        ("이순신이", "이순신", "이순신"),
        ("GPU를", "GPU", "GPU"),
        ("의", "의", "의"),  # only a particle: kept as typed
    ],
)
def test_particle_stripping(word, rules, kiwi):
    assert strip_word(word, "rules") == rules
    assert strip_word(word, "kiwi") == kiwi


def test_writers_keep_the_search_column_current(db):
    transcript = make_transcript(None, texts=[])
    # update_or_create, as the pipelines write: create, then rewrite the same index.
    Segment.objects.update_or_create(
        transcript=transcript, index=0, defaults={"start": 0, "end": 1, "text": "카카오페이 결제"}
    )
    assert found("카카오페이") == {0}
    Segment.objects.update_or_create(
        transcript=transcript, index=0, defaults={"start": 0, "end": 1, "text": "토스 앱 리뉴얼"}
    )
    assert found("카카오페이") == set() and found("리뉴얼") == {0}
    # bulk_create
    Segment.objects.bulk_create(
        [Segment(transcript=transcript, index=1, start=1, end=2, text="쿠버네티스 클러스터로")]
    )
    assert found("쿠버네티스") == {1}
    # save(update_fields=["text"]) on a row loaded without its search columns
    segment = Segment.objects.get(transcript=transcript, index=1)
    segment.text = "슬랙이랑 지라에"
    segment.save(update_fields=["text"])
    assert found("쿠버네티스") == set() and found("지라") == {1}
    segment.text = "피그마로 공유"
    segment.save()
    assert found("피그마") == {1}


def test_transcripts_match_a_segment_or_the_title(db):
    a = make_transcript(
        None, texts=["카카오페이 결제 모듈", "장애 알림은 슬랙으로"], title="1월 회의"
    )
    b = make_transcript(None, texts=["카카오페이 이야기는 슬랙에"], title="슬랙 도입")
    c = make_transcript(None, texts=["아무 관련 없는 말"], title="카카오페이 회의")
    everything = Transcript.objects.all()
    assert set(search_transcripts(everything, "카카오페이의")) == {a, b, c}
    # Every word in one segment (an utterance), or every word in the title.
    assert set(search_transcripts(everything, "카카오페이 슬랙")) == {b}
    assert set(search_transcripts(everything, "카카오페이 회의")) == {c}
    assert set(search_transcripts(everything, "")) == {a, b, c}
    # The paginated form agrees, newest first.
    hits = TranscriptHits(everything, parse_query("카카오페이"))
    assert hits.page(0, 10) == [c, b, a]
    assert hits.page(1, 1) == [b]
    assert hits.count(1000) == (3, True)
    assert TranscriptHits(everything, parse_query("슬랙")).page(0, 10) == [b, a]


def test_counts_stop_at_a_bound_and_say_so(db, monkeypatch):
    for n in range(6):
        make_transcript(None, texts=[f"판교 회의 {n}", "판교 출장"], title=f"t{n}")
    everything = Transcript.objects.all()
    terms = parse_query("판교")
    segments = SegmentHits(everything, terms)
    assert segments.count(1000) == (12, True)
    assert segments.count(5) == (5, False)
    transcripts = TranscriptHits(everything, terms)
    assert transcripts.count(1000) == (6, True)
    assert transcripts.count(4) == (4, False)
    # Transcripts are counted from a bounded read of matching segments.
    monkeypatch.setattr(search_results, "SEGMENTS_READ_FOR_COUNT", 3)
    count, exact = transcripts.count(1000)
    assert not exact and 2 <= count <= 3
    # A page keeps the lower bound consistent with what exists beyond it.
    page = paginate(transcripts, 1, 4, bound=2)
    assert [t.title for t in page.rows] == ["t5", "t4", "t3", "t2"]
    assert page.has_next and not page.count_exact and page.count >= 5
    last = paginate(transcripts, 2, 4)
    assert [t.title for t in last.rows] == ["t1", "t0"] and not last.has_next
    with pytest.raises(PageNotFound):
        paginate(transcripts, 3, 4)


def test_highlight_escapes_before_marking():
    text = '<script>alert(1)</script> 삼성전자의 "주가" & GPUs'
    html = highlight(text, parse_query("삼성전자 gpu"))
    assert html == (
        "&lt;script&gt;alert(1)&lt;/script&gt; <mark>삼성전자</mark>의 "
        "&quot;주가&quot; &amp; <mark>GPU</mark>s"
    )
    # A match inside what looks like markup is escaped too.
    assert highlight(text, parse_query("script")).startswith("&lt;<mark>script</mark>&gt;")
    assert "<script" not in highlight(text, [])


def test_highlight_follows_spacing_and_snippets_cut_around_the_match():
    assert match_spans("장동 련 교수", parse_query("장동련")) == [(0, 4)]
    long_text = "가나다 " * 60 + "삼성전자의 발표" + " 라마바" * 60
    cut = snippet(long_text, parse_query("삼성전자"), width=80)
    assert "<mark>삼성전자</mark>" in cut
    assert cut.startswith("… ") and cut.endswith(" …")
    assert len(cut) < 140
