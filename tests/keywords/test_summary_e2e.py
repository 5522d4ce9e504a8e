"""Summaries end to end, through real Celery workers (stt and keywords), the web server and
a real browser: an uploaded Korean clip gets its summary on the transcript page without a
reload, from the fake LLM when it answers and from the embedded analyser when it does not
(``KEYWORD_BACKEND=auto``, a server answering 503); a live session gets one when it stops.
The page is asked for in English (the interface's source language)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from keywords import extractive
from keywords.models import Summary
from tests.browser import chromium, off_loop, sign_in
from tests.celery_workers import running_worker
from tests.factories import PASSWORD, make_user
from tests.live.ws import RATE, connect, receive_until, start, stream
from tests.llm_server import FakeLlmServer, Reply
from tests.polling import wait_for
from tests.servers import running_web
from transcription.models import Segment, Transcript
from transcription.speech.audio import decode_audio

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
MODEL = "Qwen/Qwen2.5-7B-Instruct"
CLIP = "ko_zeroth_104_003_0253"  # 백화점과 영화관 ... 테마파크 및 아파트
LLM_SUMMARY = "백화점과 영화관이 문을 열었고 테마파크와 아파트 공사가 진행 중이다."
LLM_REGENERATED = "다시 쓴 요약: 공사는 계획대로 진행된다."
LLM_DECISION = "완공 목표 연도 유지"


def upload(client, path) -> str:
    with open(path, "rb") as handle:
        response = client.post("/api/transcripts/", {"file": handle})
    assert response.status_code == 202, response.content
    return response.json()["id"]


def texts_of(transcript_id) -> list[str]:
    return list(
        Segment.objects.filter(transcript_id=transcript_id)
        .order_by("index")
        .values_list("text", flat=True)
    )


def summary_shown(
    url: str, user, transcript_id: str, timeout: float = 240.0, regenerated: str | None = None
) -> dict:
    """Open the transcript page in English while it is being made and wait, without
    reloading by hand, until its summary card says done; what the card shows. With
    ``regenerated``, then press Regenerate and wait for that text, again without a reload."""
    with chromium() as browser:
        context = browser.new_context(locale="en-US")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, url, user.username, PASSWORD)
        page.goto(f"{url}/transcripts/{transcript_id}/")
        try:
            page.wait_for_selector('#summary[data-status="done"]', timeout=timeout * 1000)
        except Exception as exc:
            card = page.evaluate(
                "() => (document.getElementById('summary') || document.body).outerHTML"
            )
            raise AssertionError(f"no summary on the page: {card[:3000]}") from exc
        if regenerated:
            page.evaluate("() => { window.notReloaded = true; }")
            page.click("#summary-regenerate")
            page.wait_for_function(
                "(text) => document.getElementById('summary-text').textContent === text",
                arg=regenerated,
                timeout=timeout * 1000,
            )
            assert page.evaluate("() => window.notReloaded === true")
        assert errors == []
        return page.evaluate(
            """() => ({
                backend: document.getElementById('summary').dataset.backend,
                label: document.getElementById('summary-backend').textContent,
                heading: document.getElementById('summary-heading').textContent,
                text: document.getElementById('summary-text').textContent,
                actions: [...document.querySelectorAll('#summary-actions li')].map(li => li.textContent),
                decisions: [...document.querySelectorAll('#summary-decisions li')].map(li => li.textContent),
                pendingHidden: document.getElementById('summary-pending').hidden,
            })"""
        )


def shown_summary(url, owner, transcript_id, regenerated) -> dict:
    """``summary_shown`` in a thread of its own: Playwright leaves an event loop behind in the
    thread that drove it, where Django then refuses the ORM calls after it. A failure says
    where the transcript and its summary stood."""
    try:
        return off_loop(summary_shown, url, owner, transcript_id, 240.0, regenerated)
    except AssertionError as exc:
        state = Transcript.objects.filter(pk=transcript_id).values("status").first()
        rows = list(Summary.objects.filter(transcript_id=transcript_id).values())
        raise AssertionError(f"{exc}\ntranscript {state}, summary {rows}") from exc


def test_with_the_llm_up_the_page_shows_its_summary(owner_client, owner, eval_clip, tmp_path):
    path, _ = eval_clip(CLIP)
    regenerated = LLM_REGENERATED
    with FakeLlmServer(model=MODEL) as llm:
        llm.answer_with(lambda text: Reply.keywords([]))
        answers = iter([LLM_SUMMARY, LLM_REGENERATED])
        llm.answer_summaries_with(lambda text: Reply.summary(next(answers), [], [LLM_DECISION]))
        env = {"KEYWORD_BACKEND": "vllm", "VLLM_API_URL": llm.url, "VLLM_MODEL": MODEL}
        with (
            running_worker("stt"),
            running_worker("keywords", extra_env=env),
            running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url,
        ):
            transcript_id = upload(owner_client, path)
            shown = shown_summary(url, owner, transcript_id, regenerated)
        assert llm.violations == []
        asked = llm.summary_texts
    assert shown["backend"] == "vllm" and shown["label"] == "Written by the LLM"
    assert shown["heading"] == "Summary" and shown["pendingHidden"]
    assert shown["text"] == LLM_REGENERATED and shown["decisions"] == [LLM_DECISION]
    # The LLM was asked twice (the pipeline, Regenerate), about exactly the segments Whisper
    # wrote, one per line.
    assert asked == ["\n".join(texts_of(transcript_id))] * 2
    summary = Summary.objects.get(transcript_id=transcript_id)
    assert (summary.backend, summary.language, summary.text) == ("vllm", "ko", LLM_REGENERATED)
    detail = owner_client.get(f"/api/transcripts/{transcript_id}/").json()
    assert detail["summary"]["text"] == LLM_REGENERATED and detail["summary"]["stale"] is False


async def live_session_until_stopped(user, path) -> str:
    """A live session of ``path`` (and 2 s of silence), stopped after its first final."""
    communicator = await connect(user)
    session = (await start(communicator))["session"]
    await stream(communicator, np.concatenate([decode_audio(path), np.zeros(2 * RATE, np.float32)]))
    await receive_until(communicator, lambda e: e["type"] == "final", timeout=120)
    await communicator.send_json_to({"type": "stop"})
    await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=120)
    await communicator.disconnect()
    return session


def test_with_the_llm_down_the_embedded_summary_is_shown_and_live_sessions_get_one(
    owner_client, owner, eval_clip, tmp_path
):
    path, _ = eval_clip(CLIP)
    regenerated = None
    with FakeLlmServer(model=MODEL) as llm:
        # It lists the model (so auto asks it) but every chat request fails.
        llm.answer_with(lambda text: Reply.error(503))
        env = {"KEYWORD_BACKEND": "auto", "VLLM_API_URL": llm.url, "VLLM_MODEL": MODEL}
        with (
            running_worker("stt"),
            running_worker("keywords", extra_env=env),
            running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url,
        ):
            transcript_id = upload(owner_client, path)
            shown = shown_summary(url, owner, transcript_id, regenerated)
            speaker = make_user("speaker2")
            session = asyncio.run(live_session_until_stopped(speaker, path))
            live = wait_for(
                lambda: Summary.objects.filter(transcript_id=session, status="done").first(),
                timeout=120,
                what="the live session's summary",
            )
        assert llm.violations == []
        assert llm.summary_texts  # it was asked, and failed
    expected = extractive.summarise(texts_of(transcript_id))
    assert expected.text
    assert shown["backend"] == "embedded"
    assert shown["label"] == "The most central sentences, picked without an LLM"
    assert shown["text"] == expected.text
    assert shown["actions"] == expected.action_items
    assert shown["decisions"] == expected.decisions
    # The live session: summarised when it stopped, from what it stored.
    assert Transcript.objects.get(pk=session).status == "done"
    assert live.backend == "embedded"
    assert live.text == extractive.summarise(texts_of(session)).text and live.text
