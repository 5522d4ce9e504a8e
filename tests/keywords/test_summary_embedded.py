"""The embedded (extractive) summary on real Korean speech: the eval clips' reference texts,
where the right sentences are known exactly, and what the embedded Whisper base model
writes for the same clips (transcribed once for the module), where punctuation and
spacing are Whisper's own. Plus the cue words, fillers, repeats and long transcripts."""

from __future__ import annotations

import re
import time

import pytest

from keywords import extractive
from keywords.extractors.base import get_kiwi

KOREAN_CLIPS = [
    "ko_zeroth_104_003_0019",
    "ko_zeroth_104_003_0193",
    "ko_zeroth_104_003_0253",
    "ko_zeroth_104_003_0280",
    "ko_zeroth_104_003_0294",
    "ko_picovoice_leopard_test_ko",
]
# Tags of words that carry no content: a sentence made only of these is junk.
FUNCTION_TAG = re.compile(r"^(J.*|E.*|IC|MAJ|MAG|NP|MM|S.*|VX|VCP|XS.*)$")


@pytest.fixture(scope="module", autouse=True)
def _kiwi_loaded():
    get_kiwi()


@pytest.fixture(scope="module")
def references(eval_manifest) -> list[str]:
    by_id = {e["id"]: e["reference"] for e in eval_manifest}
    return [by_id[clip] for clip in KOREAN_CLIPS]


@pytest.fixture(scope="module")
def whisper_texts(eval_clip) -> list[str]:
    """Each Korean clip as the embedded Whisper base model transcribes it (segment texts,
    clip after clip, as one long Korean recording would give them)."""
    from transcription.speech import engine
    from transcription.speech.audio import decode_audio

    texts: list[str] = []
    for clip in KOREAN_CLIPS:
        path, _ = eval_clip(clip)
        with open(path, "rb") as handle:
            audio = decode_audio(handle)
        regions = engine.speech_regions(audio)
        batches = engine.transcribe_regions(audio, regions, "ko")
        texts.extend(s.text for batch in batches for s in batch.segments if s.text.strip())
    assert len(texts) >= len(KOREAN_CLIPS) - 1
    return texts


def squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", text)


def assert_good_summary(summary: extractive.ExtractiveSummary, texts: list[str]) -> None:
    """Sentences of the transcript, each once, in spoken order, each with content."""
    source = squash(" ".join(texts))
    assert 1 <= len(summary.sentences) <= extractive.MAX_SUMMARY_SENTENCES
    positions = []
    for sentence in summary.sentences:
        assert squash(sentence) in source, sentence
        positions.append(source.index(squash(sentence)))
        tags = [t.tag for t in get_kiwi().tokenize(sentence)]
        assert sum(not FUNCTION_TAG.match(tag) for tag in tags) >= 2, (sentence, tags)
    assert positions == sorted(positions)
    assert len({squash(s) for s in summary.sentences}) == len(summary.sentences)
    assert len(summary.text) <= extractive.MAX_SUMMARY_CHARS + 300


# --- the reference texts: no punctuation, Zeroth's spacing ------------------------------


def test_unpunctuated_references_split_into_their_sentences(references):
    """Zeroth references have no full stops; the splitter finds each clip's sentence."""
    sentences = [s.text for s in extractive.candidate_sentences(references)]
    assert sentences == references


def test_reference_summary_is_three_sentences_of_the_transcript_in_order(references):
    summary = extractive.summarise(references)
    assert_good_summary(summary, references)
    assert len(summary.sentences) == 3
    assert all(sentence in references for sentence in summary.sentences)
    # News sentences, a story and a statement: nobody is asked to do anything or decides.
    assert summary.action_items == [] and summary.decisions == []


def test_the_most_central_sentence_is_the_one_the_others_talk_about(references):
    """Two added sentences about the prosecutors' investigation (clip 0280's subject) make
    0280 the centre; the unrelated story of clip 0193 drops out."""
    texts = [
        *references,
        "검찰 수사 결과는 다음 달 공개될 예정이다",
        "변호인단은 검찰 수사 내용에 대한 입장을 밝혔다",
    ]
    summary = extractive.summarise(texts)
    assert_good_summary(summary, texts)
    assert references[3] in summary.sentences  # 0280: 검찰 수사 ... 변호인단 ... 방침이다
    assert references[1] not in summary.sentences  # 0193: 동백꽃 속으로 폭 파묻혀


def test_fillers_and_repeats_never_reach_the_summary(references):
    noisy = []
    for reference in references:
        noisy += ["네 네", "음", reference, "아 그러니까요", reference]
    summary = extractive.summarise(noisy)
    assert_good_summary(summary, noisy)
    assert summary.sentences == extractive.summarise(references).sentences
    candidates = [s.text for s in extractive.candidate_sentences(noisy)]
    assert candidates == references  # each once, no filler-only "sentence"


# --- what Whisper writes -----------------------------------------------------------------


@pytest.mark.slow
def test_whisper_transcripts_of_the_korean_clips(whisper_texts):
    summary = extractive.summarise(whisper_texts)
    assert_good_summary(summary, whisper_texts)
    sentences = extractive.candidate_sentences(whisper_texts)
    # One sentence per clip, give or take Whisper's own cuts.
    assert len(KOREAN_CLIPS) - 1 <= len(sentences) <= len(KOREAN_CLIPS) + 2, sentences
    assert len(summary.sentences) == 3
    # Without its punctuation (as some Whisper runs write Korean), the clips' sentences are
    # still found, give or take one: "거쳐야 한다 끊은 1위절이" (Whisper's 끊은 for 그는)
    # reads as a clause that goes on, where "한다 그는" starts a new one.
    bare = [re.sub(r"[.?!,]", "", text) for text in whisper_texts]
    assert len(KOREAN_CLIPS) - 1 <= len(extractive.candidate_sentences(bare)) <= len(sentences)
    bare_summary = extractive.summarise(bare)
    assert_good_summary(bare_summary, bare)
    assert len(bare_summary.sentences) == 3
    # Sentences that share no words rank alike and the richer goes first: 0019's, the
    # richest, leads both; the merged one above outweighs the others, which may differ.
    assert squash(bare_summary.sentences[0]) == squash(summary.sentences[0])


# --- cue words and size --------------------------------------------------------------------


def test_action_items_and_decisions_by_cue_words():
    texts = [
        "오늘 회의에서는 신제품 출시 일정을 논의했습니다",
        "민수 씨는 금요일까지 견적서를 정리해야 합니다",
        "디자인 시안은 지영 씨에게 부탁드립니다",
        "출시일은 다음 달 십오 일로 하기로 했습니다",
        "예산 증액은 이사회에서 결정됐습니다",
        "We agreed to keep the old API for one more release.",
        "I will send the minutes tomorrow.",
        "The weather was nice.",
    ]
    summary = extractive.summarise(texts)
    assert summary.action_items == [texts[1], texts[2], texts[6]]
    assert summary.decisions == [texts[3], texts[4], texts[5]]


def test_no_cues_no_items_and_nothing_to_summarise():
    assert extractive.summarise(["날씨가 맑고 바람이 시원한 오후였다"]).action_items == []
    empty = extractive.summarise(["네", "음 음", "아"])
    assert empty == extractive.ExtractiveSummary([], [], [])


def test_a_long_transcript_is_summarised_quickly_and_briefly(references):
    topics = [
        "예산",
        "인사",
        "마케팅",
        "영업",
        "서버",
        "보안",
        "교육",
        "채용",
        "복지",
        "일정",
        "물류",
        "재무",
        "법무",
        "구매",
        "품질",
        "고객",
        "홍보",
        "디자인",
        "연구",
        "개발",
        "생산",
        "설비",
        "안전",
        "환경",
        "회계",
        "감사",
        "전략",
        "기획",
        "운영",
        "지원",
        "협력",
        "투자",
        "특허",
        "계약",
        "판매",
        "유통",
        "수출",
        "수입",
        "통계",
        "조사",
    ]
    assert len(set(topics)) == 40
    # 240 sentences, each different (the same clip under another agenda item).
    texts = [f"{topic} 안건으로 {reference}" for topic in topics for reference in references]
    started = time.monotonic()
    summary = extractive.summarise(texts)
    assert time.monotonic() - started < 60
    assert_good_summary(summary, texts)
    assert len(summary.sentences) == extractive.MAX_SUMMARY_SENTENCES
