"""Keywords end to end: an upload and a live session, with the test LLM server up (vLLM
backend) and with the LLM down (the embedded backend answers), through real workers."""

from __future__ import annotations

import asyncio
import re
import time

import numpy as np
import pytest

from bench.common import free_port
from tests.celery_workers import running_worker
from tests.factories import make_user
from tests.live.ws import RATE, connect, receive_until, start, stream
from tests.llm_server import FakeLlmServer, Reply
from transcription.models import Segment, Transcript
from transcription.speech.audio import decode_audio

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
MODEL = "Qwen/Qwen2.5-7B-Instruct"
CLIP = "ko_zeroth_104_003_0253"  # 백화점과 영화관 ... 테마파크 및 아파트
# What Whisper writes differs between machines (CPU, thread count: "아파트" here, "압박트"
# there), so nothing below names a word: the fake LLM answers with nouns of the text it is
# sent, and the expectations are read back from the segments the model actually produced.
LLM_WORDS_PER_TEXT = 3


def nouns(text: str) -> list[str]:
    """Words of ``text`` that pass the keyword checks as nouns, in order, each once."""
    from keywords.extractors.base import normalise, noun_form

    found: dict[str, str] = {}
    for token in re.findall(r"\w+", text):
        form = noun_form(token)
        if form is not None:
            found.setdefault(normalise(form), form)
    return list(found.values())


def llm_answer(text: str) -> Reply:
    """What the fake LLM says about ``text``: its first nouns, all places, as vLLM would
    answer through the schema."""
    words = nouns(text)[:LLM_WORDS_PER_TEXT]
    return Reply.keywords(
        [{"word": w, "category": "장소", "importance": 0.9 - 0.1 * i} for i, w in enumerate(words)]
    )


def expected_llm_words(segments) -> set[str]:
    return {word for segment in segments for word in nouns(segment.text)[:LLM_WORDS_PER_TEXT]}


def embedded_words(segments) -> set[str]:
    from keywords.extractors.embedded import EmbeddedExtractor
    from keywords.services import MAX_PER_SEGMENT

    extractor = EmbeddedExtractor()
    return {
        item.word
        for segment in segments
        for item in extractor.extract(segment.text, language="ko", max_items=MAX_PER_SEGMENT)
    }


def upload_and_wait_for_keywords(client, path, timeout=120) -> dict:
    with open(path, "rb") as handle:
        body = client.post("/api/transcripts/", {"file": handle}).json()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = client.get(body["url"]).json()
        if detail["status"] == "failed":
            raise AssertionError(detail)
        if detail["status"] == "done" and detail["keywords"]:
            return detail
        time.sleep(0.5)
    raise AssertionError(f"no keywords within {timeout} s: {detail}")


async def live_keywords(user, path) -> tuple[str, dict]:
    """A live session of ``path`` (and 2 s of silence): its id and its first keywords event."""
    communicator = await connect(user)
    session = (await start(communicator))["session"]
    await stream(communicator, np.concatenate([decode_audio(path), np.zeros(2 * RATE, np.float32)]))
    events = await receive_until(communicator, lambda e: e["type"] == "keywords", timeout=90)
    await communicator.disconnect()
    return session, events[-1]


def stored_backends(session) -> set[str]:
    return set(Transcript.objects.get(pk=session).keywords.values_list("backend", flat=True))


def segments_of(transcript_id) -> list[Segment]:
    return list(Segment.objects.filter(transcript_id=transcript_id).order_by("index"))


def test_with_the_llm_up_keywords_come_from_vllm(owner_client, owner, eval_clip):
    path, _ = eval_clip(CLIP)
    with FakeLlmServer(model=MODEL) as llm:
        llm.answer_with(llm_answer)
        env = {"KEYWORD_BACKEND": "vllm", "VLLM_API_URL": llm.url, "VLLM_MODEL": MODEL}
        with running_worker("stt"), running_worker("keywords", extra_env=env):
            detail = upload_and_wait_for_keywords(owner_client, path)
            session, event = asyncio.run(live_keywords(owner, path))
        assert llm.violations == []
        assert llm.chat_calls >= 2
        asked = list(llm.texts)
    uploaded = segments_of(detail["id"])
    # The LLM was asked about exactly what Whisper wrote, segment by segment.
    assert [segment.text for segment in uploaded] == asked[: len(uploaded)]
    # Upload: every segment's answer is stored, with the backend that produced it (no
    # embedded fallback), and shown by category on the page.
    words = {k["word"] for k in detail["keywords"]}
    assert words == expected_llm_words(uploaded) and words
    assert {k["backend"] for k in detail["keywords"]} == {"vllm"}
    page = owner_client.get(f"/transcripts/{detail['id']}/").content.decode()
    assert 'data-category="장소"' in page and sorted(words)[0] in page
    # Live: pushed as a keywords event for the segment it names, and stored.
    live_segment = Segment.objects.get(pk=event["segment"])
    assert {item["word"] for item in event["items"]} == expected_llm_words([live_segment])
    assert stored_backends(session) == {"vllm"}


def test_with_the_llm_down_the_embedded_backend_answers(owner_client, eval_clip):
    path, _ = eval_clip(CLIP)
    user = make_user("speaker2")
    # auto: vLLM when it answers; nothing listens on this port, so the embedded extractor answers.
    env = {"KEYWORD_BACKEND": "auto", "VLLM_API_URL": f"http://127.0.0.1:{free_port()}/v1"}
    with running_worker("stt"), running_worker("keywords", extra_env=env):
        detail = upload_and_wait_for_keywords(owner_client, path)
        session, event = asyncio.run(live_keywords(user, path))
    assert {k["backend"] for k in detail["keywords"]} == {"embedded"}
    # The same extractor run here on the stored text gives the same words.
    assert {k["word"] for k in detail["keywords"]} == embedded_words(segments_of(detail["id"]))
    live_segment = Segment.objects.get(pk=event["segment"])
    assert {item["word"] for item in event["items"]} == embedded_words([live_segment])
    assert stored_backends(session) == {"embedded"}
