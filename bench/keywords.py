"""Keyword extraction latency per segment: the embedded extractor and the vLLM client.

``make bench-keywords`` (or ``python -m bench.keywords``) times, per segment:

* embedded: ``EmbeddedExtractor().extract(text, language=...)`` in this process
  (kiwipiepy morphology, scoring and the shared post-check).
* vllm: ``VllmExtractor(api_url=<test server>).extract(text, language=...)`` against
  the OpenAI-compatible test server of ``tests/llm_server.py``, run in a thread of
  this process and answering at once with valid JSON whose keywords are in the text
  (the embedded extractor's own answer for that text, computed before timing). The
  server times its own handling of each request (from the request body being read
  to the response written); client overhead = client total - server handling, i.e.
  what the client itself costs: building the request, JSON both ways, httpx and the
  loopback socket, parsing the reply and the post-check. The LLM's own time is not
  part of it; a real vLLM adds its generation time on top.

Segments are the reference sentences of the shared evaluation set (Korean and
English; empty ones skipped) plus a few meeting-style Korean sentences with company,
product and technology names. Everything is warmed up first (Kiwi loaded, one
untimed pass per backend), then ``--rounds`` rounds time every segment once per
backend. Before each timed call the post-check's word cache (``noun_form``) is
cleared, so every segment is analysed as if its words were new, as a segment of a
fresh transcript mostly is; ``--keep-cache`` measures with the cache warm instead.

No database, Redis or GPU is used. The target of the issue: embedded p50 at most
20 ms per segment on this machine. Results are printed as tables and saved as JSON
under ``bench/results/``. Exit status is 0 whether the target passes or not; it is a
benchmark.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import math
import os
import platform as platform_info
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or REPO_ROOT.parent / "shared" / "eval")
RESULTS_DIR = REPO_ROOT / "bench" / "results"

TARGET_EMBEDDED_P50_MS = 20.0
MODEL = "Qwen/Qwen2.5-7B-Instruct"
API_KEY = "bench-key"
MAX_ITEMS = 10

# Meeting-style sentences as a live session would cut them: names of companies,
# products and technologies, Latin model names inside Hangul, particles attached.
MEETING_SEGMENTS: tuple[tuple[str, str], ...] = (
    (
        "meeting_ko_01",
        "다음 분기에는 네이버 클라우드의 하이퍼클로바X를 사내 검색에 붙이고 "
        "고객 상담 챗봇은 GPT-4o로 먼저 시범 운영하겠습니다.",
    ),
    (
        "meeting_ko_02",
        "삼성전자랑 SK하이닉스에서 HBM3E 공급 일정이 또 밀렸다고 해서 "
        "엔비디아 H100 서버 증설은 3월 이후로 미뤄야 할 것 같아요.",
    ),
    (
        "meeting_ko_03",
        "카카오페이 결제 모듈은 쿠버네티스 클러스터로 옮겼고 "
        "장애 알림은 슬랙이랑 지라에 동시에 올라가도록 설정해 뒀습니다.",
    ),
    (
        "meeting_ko_04",
        "김민수 팀장님이 판교 사무실에서 LG유플러스 담당자와 만나서 "
        "5G 전용망 계약 조건을 다시 협의하기로 했습니다.",
    ),
    (
        "meeting_ko_05",
        "이번 갤럭시 S24 출시 행사 영상은 유튜브 라이브로 송출하고 "
        "자막은 우리 음성 인식 엔진으로 실시간 생성하는 걸로 하죠.",
    ),
    (
        "meeting_ko_06",
        "AWS 비용이 너무 많이 나와서 일부 배치 작업은 구글 클라우드 TPU로 돌리고 "
        "나머지는 온프레미스 A100 서버에서 처리하는 방안을 검토 중입니다.",
    ),
    (
        "meeting_ko_07",
        "토스 앱 리뉴얼 일정은 현대자동차 협업 건이랑 겹치니까 "
        "디자인 시안은 피그마로 다음 주 화요일까지 공유해 주세요.",
    ),
    (
        "meeting_ko_08",
        "Qwen2.5 모델을 vLLM으로 서빙해 보니 한국어 키워드 추출 품질은 괜찮은데 "
        "지연 시간이 길어서 임베디드 추출기를 기본값으로 두려고 합니다.",
    ),
)


@dataclass
class Segment:
    id: str
    lang: str
    text: str
    source: str
    reply_items: list[dict[str, Any]] = field(default_factory=list)
    embedded_ms: list[float] = field(default_factory=list)
    vllm_total_ms: list[float] = field(default_factory=list)
    vllm_server_ms: list[float] = field(default_factory=list)
    embedded_keywords: list[str] = field(default_factory=list)
    vllm_keywords: list[str] = field(default_factory=list)

    @property
    def vllm_overhead_ms(self) -> list[float]:
        return [t - s for t, s in zip(self.vllm_total_ms, self.vllm_server_ms, strict=True)]


def load_segments(manifest: Path) -> list[Segment]:
    segments: list[Segment] = []
    if manifest.exists():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            text = (entry.get("reference") or "").strip()
            if not text or entry.get("lang") not in ("ko", "en"):
                continue
            segments.append(Segment(entry["id"], entry["lang"], text, "eval"))
    else:
        print(f"warning: {manifest} not found; meeting sentences only", file=sys.stderr)
    segments.extend(Segment(sid, "ko", text, "meeting") for sid, text in MEETING_SEGMENTS)
    return segments


# --- the test server, with its handling time recorded ----------------------------------


def start_server():
    """The test server of tests/llm_server.py, timing each chat request it handles.

    The handler class is swapped for a subclass before any connection is made (the
    server builds one handler per connection from ``RequestHandlerClass``).
    """
    from tests.llm_server import FakeLlmServer, _Handler

    server = FakeLlmServer(model=MODEL, api_key=API_KEY)
    server.handling_s = []  # type: ignore[attr-defined]

    class TimedHandler(_Handler):
        # http.server writes the headers and the body in two sends; with Nagle's
        # algorithm on, the body waits for the client's delayed ACK (about 40 ms on
        # Linux), which would show up here as client overhead. vLLM's server (uvicorn)
        # sets TCP_NODELAY; so does httpx on the client side.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            start = time.perf_counter()
            try:
                super().do_POST()
            finally:
                self.fake.handling_s.append(time.perf_counter() - start)  # type: ignore[attr-defined]

    server.start()
    assert server._httpd is not None
    server._httpd.RequestHandlerClass = type("Handler", (TimedHandler,), {"fake": server})
    return server


# --- statistics and formatting ---------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values),
        "mean": sum(values) / len(values),
    }


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def table(headers: list[str], rows: Iterable[list[str]], align: str) -> list[str]:
    """Plain-text table; ``align`` has one 'l' or 'r' per column."""
    rows = list(rows)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ]
        return "  " + "  ".join(parts).rstrip()

    return [line(headers), "  " + "  ".join("-" * w for w in widths), *map(line, rows)]


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the benchmark ---------------------------------------------------------------------


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return (time.perf_counter() - start) * 1000, result


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sttproject.settings")
    import django

    django.setup()  # settings only: nothing here opens a database connection
    # One INFO line per request from httpx would bury the tables (and time stderr).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)

    import kiwipiepy

    from keywords.extractors import EmbeddedExtractor, VllmExtractor
    from keywords.extractors.base import get_kiwi, noun_form
    from keywords.extractors.vllm import CircuitBreaker
    from tests.llm_server import Reply

    segments = load_segments(EVAL_DIR / "manifest.jsonl")
    started_at = dt.datetime.now()
    load_before = os.getloadavg()
    reset_cache: Callable[[], None] = (lambda: None) if args.keep_cache else noun_form.cache_clear

    t0 = time.perf_counter()
    get_kiwi()
    kiwi_load_s = time.perf_counter() - t0
    print(f"Kiwi loaded in {kiwi_load_s:.2f} s; {len(segments)} segments, {args.rounds} rounds")

    embedded = EmbeddedExtractor()
    # The scripted answer for each text: the embedded extractor's keywords, which are
    # in the text and pass the post-check, as a good LLM answer would.
    for seg in segments:
        items = embedded.extract(seg.text, language=seg.lang, max_items=MAX_ITEMS)
        seg.reply_items = [item.as_message() for item in items]
        seg.embedded_keywords = [item.word for item in items]

    server = start_server()
    client = VllmExtractor(
        api_url=server.url,
        model=MODEL,
        api_key=API_KEY,
        timeout_s=10.0,
        # Its own breaker, never opened by a slow run: every call must reach the server.
        breaker=CircuitBreaker(failure_threshold=1_000_000),
    )
    failures: list[str] = []

    def call_vllm(seg: Segment) -> tuple[float, float, list[Any]]:
        server.script(Reply.keywords(seg.reply_items, expect_text=seg.text))
        before = len(server.handling_s)
        total_ms, items = timed(
            lambda: client.extract(seg.text, language=seg.lang, max_items=MAX_ITEMS)
        )
        # The handler records its time in a finally block, after the last byte went
        # out; the client may have it already. Wait for the record (not timed).
        deadline = time.monotonic() + 2
        while len(server.handling_s) == before and time.monotonic() < deadline:
            time.sleep(0.0001)
        if len(server.handling_s) != before + 1:
            raise RuntimeError(
                f"expected one request per call, server saw {len(server.handling_s) - before}"
            )
        return total_ms, server.handling_s[-1] * 1000, items

    try:
        print("warming up ...", flush=True)
        for _ in range(args.warmup):
            for seg in segments:
                embedded.extract(seg.text, language=seg.lang, max_items=MAX_ITEMS)
                call_vllm(seg)

        for round_no in range(args.rounds):
            for seg in segments:
                reset_cache()
                ms, _ = timed(
                    lambda seg=seg: embedded.extract(
                        seg.text, language=seg.lang, max_items=MAX_ITEMS
                    )
                )
                seg.embedded_ms.append(ms)
            for seg in segments:
                reset_cache()
                total_ms, server_ms, items = call_vllm(seg)
                seg.vllm_total_ms.append(total_ms)
                seg.vllm_server_ms.append(server_ms)
                words = [item.word for item in items]
                if round_no == 0:
                    seg.vllm_keywords = words
                    if words != seg.embedded_keywords:
                        failures.append(
                            f"{seg.id}: client returned {words}, server sent {seg.embedded_keywords}"
                        )
            if (round_no + 1) % max(1, args.rounds // 5) == 0:
                print(f"  round {round_no + 1}/{args.rounds}", flush=True)
    finally:
        client.close()
        server.stop()

    violations = list(server.violations)
    meta = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "host": platform_info.node(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform_info.python_version(),
        "kiwipiepy": kiwipiepy.__version__,
        "rounds": args.rounds,
        "warmup_passes": args.warmup,
        "max_items": MAX_ITEMS,
        "noun_form_cache": "kept warm" if args.keep_cache else "cleared before each call",
        "gc": "enabled",
        "kiwi_load_s": round(kiwi_load_s, 3),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    outcome = report(segments, meta, violations, failures)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = started_at.strftime("%Y%m%d-%H%M%S")
    out = Path(args.output) if args.output else RESULTS_DIR / f"keywords-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "meta": meta,
                "segments": [
                    {
                        "id": s.id,
                        "lang": s.lang,
                        "source": s.source,
                        "text": s.text,
                        "keywords": s.embedded_keywords,
                        "vllm_keywords": s.vllm_keywords,
                        "embedded_ms": s.embedded_ms,
                        "vllm_total_ms": s.vllm_total_ms,
                        "vllm_server_ms": s.vllm_server_ms,
                    }
                    for s in segments
                ],
                **outcome,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"\nresults saved to {out}")
    return 0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform_info.processor() or platform_info.machine()


def report(
    segments: list[Segment], meta: dict, violations: list[str], failures: list[str]
) -> dict[str, Any]:
    lines: list[str] = []
    add = lines.append
    add("")
    add(
        f"Keyword extraction latency per segment, ms ({meta['rounds']} rounds x "
        f"{len(segments)} segments; post-check word cache {meta['noun_form_cache']})"
    )
    add(f"machine: {meta['cpu']}, {meta['cores']} cores; load avg before {meta['load_before']}")

    # Per segment: medians over the rounds.
    add("")
    add("Per segment (p50 over rounds)")
    rows = []
    for s in segments:
        rows.append(
            [
                s.id,
                s.lang,
                str(len(s.text)),
                str(len(s.embedded_keywords)),
                fmt(percentile(s.embedded_ms, 50)),
                fmt(percentile(s.vllm_total_ms, 50)),
                fmt(percentile(s.vllm_server_ms, 50)),
                fmt(percentile(s.vllm_overhead_ms, 50)),
                shorten(", ".join(s.embedded_keywords[:4]), 40),
            ]
        )
    lines.extend(
        table(
            [
                "segment",
                "lang",
                "chars",
                "kw",
                "embedded",
                "vllm total",
                "server",
                "overhead",
                "top keywords",
            ],
            rows,
            "llrrrrrrl",
        )
    )

    # Summary: every call of every round, split by language.
    groups = {
        "all": segments,
        "ko": [s for s in segments if s.lang == "ko"],
        "en": [s for s in segments if s.lang == "en"],
    }
    measures: dict[str, Callable[[Segment], list[float]]] = {
        "embedded": lambda s: s.embedded_ms,
        "vllm client total": lambda s: s.vllm_total_ms,
        "vllm server handling": lambda s: s.vllm_server_ms,
        "vllm client overhead": lambda s: s.vllm_overhead_ms,
    }
    summary: dict[str, dict[str, Any]] = {}
    rows = []
    for name, values_of in measures.items():
        summary[name] = {}
        for group, members in groups.items():
            values = [v for s in members for v in values_of(s)]
            st = summary[name][group] = stats(values)
            rows.append(
                [
                    name,
                    group,
                    str(st["n"]),
                    fmt(st["p50"]),
                    fmt(st["p95"]),
                    fmt(st["max"]),
                    fmt(st["mean"]),
                ]
            )
    add("")
    add("Summary over all calls (ms)")
    lines.extend(
        table(["backend", "segments", "calls", "p50", "p95", "max", "mean"], rows, "llrrrrr")
    )

    # Target.
    targets = []
    add("")
    add("Targets")
    p50 = summary["embedded"]["all"]["p50"]
    ok = p50 is not None and p50 <= TARGET_EMBEDDED_P50_MS
    verdict = "PASS" if ok else "FAIL"
    detail = (
        f"p50 {fmt(p50)} ms (ko {fmt(summary['embedded']['ko']['p50'])}, "
        f"en {fmt(summary['embedded']['en']['p50'])}; p95 {fmt(summary['embedded']['all']['p95'])})"
    )
    name = f"embedded extractor p50 <= {TARGET_EMBEDDED_P50_MS:g} ms per segment"
    targets.append({"target": name, "result": verdict, "detail": detail})
    add(f"  {verdict}  {name}: {detail}")
    overhead = summary["vllm client overhead"]["all"]
    add(
        f"  INFO  vLLM client overhead (no target): p50 {fmt(overhead['p50'])} ms, "
        f"p95 {fmt(overhead['p95'])} ms, on top of the server's own time"
    )
    if violations:
        add(f"  FAIL  the test server found {len(violations)} bad request(s): {violations[:3]}")
    if failures:
        add(f"  FAIL  the vLLM client's keywords differ from the server's answer: {failures[:3]}")
    add(f"load avg after: {meta['load_after']}")
    print("\n".join(lines), flush=True)
    return {
        "summary": summary,
        "targets": targets,
        "violations": violations,
        "mismatches": failures,
        "printed": lines,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.keywords", description=__doc__)
    parser.add_argument(
        "--rounds", type=int, default=50, help="timed calls per segment and backend"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed passes over all segments first"
    )
    parser.add_argument(
        "--keep-cache",
        action="store_true",
        help="keep the post-check's word cache warm between calls instead of clearing it",
    )
    parser.add_argument(
        "--output", help="JSON file to write (default bench/results/keywords-<time>.json)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    gc.collect()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
