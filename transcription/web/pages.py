from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from keywords.backends import answering_backend, last_answer, probe_llm
from keywords.services import summary, summary_of
from transcription.access import visible_transcripts
from transcription.editing import EDITABLE
from workers.gpu import resolve_runtime
from workers.health import platform_health, redis_client, workers_by_queue


def _platform_summary() -> dict:
    """What ``/api/config`` and the pages show: the original keys first, then ours."""
    by_queue, redis_error = workers_by_queue(redis_client())
    stt_workers = by_queue.get("stt", [])
    # A worker whose CUDA could not load runs Whisper on the CPU (cuda_error says why): its
    # GPUs are not used, and the platform's device is the CPU unless another worker's is not.
    on_gpu = [worker for worker in stt_workers if worker.get("device") == "cuda"]
    gpus = [gpu for worker in on_gpu for gpu in worker.get("gpus", [])]
    device, compute_type = resolve_runtime(
        settings.WHISPER_DEVICE, settings.WHISPER_COMPUTE_TYPE, len(gpus)
    )
    if stt_workers and not on_gpu:
        device, compute_type = "cpu", stt_workers[0].get("compute_type") or "int8"
    fallbacks = {
        worker["hostname"]: worker["cuda_error"]
        for workers in by_queue.values()
        for worker in workers
        if worker.get("cuda_error")
    }
    llm = probe_llm()
    answer = last_answer()
    # The backend giving keywords now, not the one KEYWORD_BACKEND asks for: with the LLM
    # down or failing, the embedded extractor answers, and "mode" must say so.
    backend = answering_backend(llm, answer)
    return {
        # The original system's keys, unchanged in meaning.
        "status": "ok" if stt_workers else "degraded",
        "device": device,
        "gpu": gpus[0]["name"] if gpus else None,
        "mode": "llm" if backend == "vllm" else "embedded",
        "llm_enabled": backend == "vllm" and llm.serves_model,
        # Added by this platform.
        "whisper_model": settings.WHISPER_MODEL,
        # Where Whisper runs (cpu when CUDA could not load), and what WHISPER_DEVICE asks for.
        "whisper_device": device,
        "whisper_device_setting": settings.WHISPER_DEVICE,
        "whisper_compute_type": compute_type,
        # Workers that have a GPU but run Whisper on the CPU, each with why: {hostname: error}.
        "cuda_fallback": fallbacks,
        "keyword_backend": settings.KEYWORD_BACKEND,
        "keyword_backend_active": backend,
        "keywords_backend": backend,
        # The keyword workers' latest answer (within a couple of minutes), or null.
        "keywords_last_answer": (
            {"backend": answer["backend"], "age_s": round(max(0.0, time.time() - answer["at"]), 1)}
            if answer
            else None
        ),
        "llm_model": settings.VLLM_MODEL,
        "llm_url": settings.VLLM_API_URL,
        "llm_available": llm.serves_model,
        "gpus": gpus,
        "workers": {queue: len(workers) for queue, workers in by_queue.items()},
        "workers_error": redis_error or None,
        "default_language": settings.DEFAULT_LANGUAGE,
        "upload_max_mb": settings.UPLOAD_MAX_MB,
        # The live page sends someone on plain http (no microphone there) to this port.
        "https_port": settings.HTTPS_PORT,
    }


@login_not_required
@require_GET
@never_cache
def api_config(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_platform_summary(), json_dumps_params={"ensure_ascii": False})


@login_not_required
@require_GET
@never_cache
def api_health(request: HttpRequest) -> JsonResponse:
    healthy, body = platform_health()
    return JsonResponse(
        body, status=200 if healthy else 503, json_dumps_params={"ensure_ascii": False}
    )


def home(request: HttpRequest) -> HttpResponse:
    """The live page."""
    return render(request, "live.html", {"summary": _platform_summary()})


@never_cache
def status_page(request: HttpRequest) -> HttpResponse:
    """Workers, their hosts and GPUs, the LLM's address, Flower's port: for operators (staff).
    Anonymous visitors are sent to sign in (LoginRequiredMiddleware); other users get 403."""
    if not request.user.is_staff:
        raise PermissionDenied(gettext("The status page is for staff."))
    healthy, health = platform_health()
    by_queue, _ = workers_by_queue(redis_client())
    workers = {w["hostname"]: w for queue in by_queue.values() for w in queue}
    return render(
        request,
        "status.html",
        {
            "healthy": healthy,
            "health": health,
            # By host, then name: a GPU host's workers side by side.
            "workers": sorted(workers.values(), key=lambda w: (w.get("host", ""), w["hostname"])),
            "summary": _platform_summary(),
            "flower_port": settings.FLOWER_PORT,
        },
    )


@ensure_csrf_cookie
def upload_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "upload.html",
        {"upload_max_mb": settings.UPLOAD_MAX_MB, "default_language": settings.DEFAULT_LANGUAGE},
    )


def display_words(text: str, words: Any) -> list[dict[str, Any]] | None:
    """A segment's words as the transcript page shows them, one span each, or None to show
    the plain text: when there are no word timings, or they no longer spell the text (a person
    edited it). Spaces go beside the word's span (``leading``, ``trailing``), so the highlight
    covers the word only; the text is stripped at both ends. static/js/transcript.js does the
    same for segments that arrive over the page's socket."""
    if not isinstance(words, list) or not words:
        return None
    for word in words:
        if not (
            isinstance(word, dict)
            and isinstance(word.get("word"), str)
            and all(_is_number(word.get(key)) for key in ("start", "end"))
        ):
            return None
    if "".join(word["word"] for word in words).strip() != text.strip():
        return None
    shown = []
    last = len(words) - 1
    for number, word in enumerate(words):
        raw = word["word"]
        core = raw.strip()
        leading = raw[: len(raw) - len(raw.lstrip())] if core else raw
        trailing = raw[len(raw.rstrip()) :] if core else ""
        shown.append(
            {
                "leading": leading if number > 0 else "",
                "word": core,
                "trailing": trailing if number < last else "",
                "start": float(word["start"]),
                "end": float(word["end"]),
            }
        )
    return shown


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


SUMMARY_EXPECTED_FOR = dt.timedelta(minutes=15)


def transcript_page(request: HttpRequest, pk) -> HttpResponse:
    """A transcript: its audio (uploads only; live sessions keep none) beside the segments
    (word by word where they have word timings), keywords by category, exports, rename and
    delete. Others' transcripts answer 404."""
    transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
    segments = list(transcript.segments.select_related("speaker"))
    for segment in segments:
        segment.shown_words = display_words(segment.text, segment.words)
    summary_now = summary_of(transcript, [s.text for s in segments])
    keywords_by_category: dict[str, list[dict]] = {}
    for item in summary(transcript, limit=200):
        keywords_by_category.setdefault(item["category"], []).append(item)
    return render(
        request,
        "transcript.html",
        {
            "transcript": transcript,
            "segments": segments,
            "keywords_by_category": sorted(keywords_by_category.items()),
            "formats": ["srt", "vtt", "txt", "json"],
            # Corrections and speakers once the transcription no longer writes segments.
            "editable": transcript.status in EDITABLE,
            "speakers": list(transcript.speakers.all()),
            "summary": summary_now,
            # Just finished: its summary is on its way (requested after the keywords, or when
            # a live session ends) although not requested yet; the page waits for it.
            "summary_expected": summary_now is None
            and transcript.status == transcript.Status.DONE
            and transcript.finished_at is not None
            and timezone.now() - transcript.finished_at < SUMMARY_EXPECTED_FOR,
            "audio_url": reverse("transcript-audio", args=[transcript.pk])
            if transcript.audio
            else None,
        },
    )
