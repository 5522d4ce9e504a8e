"""Search latency of the REST API over a large history.

``make bench-search`` (or ``python -m bench.search`` with ``DATABASE_URL`` set) fills a
database of its own (``stt_bench_search`` on the server of ``DATABASE_URL``, created and
migrated if missing) with 10,000 transcripts and 200,000 Korean segments, then times
``GET /api/transcripts/?q=`` and ``GET /api/segments/?q=`` through a real daphne over
HTTP with token auth, for common and rare words, and reports p50/p95 per endpoint and
word class. Target of the issue: p95 under 100 ms on this machine.

The text is not random bytes: a quarter of the segments are the Korean reference
sentences of the shared evaluation set (re-spaced the way people write, particles
attached) and the meeting sentences of ``bench.keywords``; the rest are sentences built
from a word list of a few hundred nouns (companies, products, technologies, places,
people, everyday meeting words) with particles and predicates, drawn with a Zipf
distribution so a few words are very common and most are rare, plus a few planted rare
words found in exactly ``RARE_HITS`` segments. One user owns everything (the worst case
for a user's own history: every row is theirs), 50,000 keywords included. Rows go in
with ``COPY`` and the search column is computed here by the platform's own
``search_document``; the GIN index is rebuilt after the load.

The data is kept: a rerun with the same sizes reuses it and only times (``--refill``
rebuilds it). Results are printed and saved as JSON under ``bench/results/``. Exit status
is 0 whether the target passes or not; it is a benchmark.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import platform as platform_info
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import free_port
from bench.harness import ensure_database, log_tail, start_process, stop_process
from workers.launch import web_command

REPO_ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or REPO_ROOT.parent / "shared" / "eval")
RESULTS_DIR = REPO_ROOT / "bench" / "results"
DATABASE = "stt_bench_search"
USERNAME = "bench-search"
TARGET_P95_MS = 100.0
RARE_HITS = 12
SEED = 20240611

# --- the word list ---------------------------------------------------------------------

# Category -> words, space-separated.
WORDS: dict[str, str] = {
    "회사": (
        "삼성전자 현대자동차 LG전자 SK하이닉스 네이버 카카오 쿠팡 배달의민족 토스 당근마켓 "
        "카카오뱅크 카카오페이 네이버클라우드 LG유플러스 SK텔레콤 KT 포스코 한화 롯데 신세계 "
        "CJ제일제당 아모레퍼시픽 셀트리온 삼성바이오로직스 현대모비스 기아 대한항공 아시아나 "
        "하이브 엔씨소프트 넥슨 크래프톤 넷마블 우아한형제들 야놀자 무신사 컬리 직방 리디 "
        "마이크로소프트 구글 애플 아마존 엔비디아 인텔 퀄컴 오픈AI 메타 테슬라 TSMC 소니"
    ),
    "제품": (
        "갤럭시 아이폰 그랜저 아이오닉 쏘나타 갤럭시탭 맥북 에어팟 하이퍼클로바X 카카오톡 "
        "플레이스테이션 스위치 픽셀 윈도우 엑셀 파워포인트 노션 슬랙 지라 피그마 줌 팀즈 "
        "유튜브 인스타그램 배민 토스뱅크 네이버페이 제네시스 스타벅스카드 비스포크"
    ),
    "기술": (
        "인공지능 머신러닝 딥러닝 반도체 클라우드 데이터베이스 쿠버네티스 도커 파이썬 "
        "자바스크립트 블록체인 메타버스 자율주행 음성인식 번역기 추천시스템 검색엔진 "
        "초거대모델 트랜스포머 강화학습 컴퓨터비전 엣지컴퓨팅 양자컴퓨터 사물인터넷 "
        "마이크로서비스 오픈소스 보안패치 암호화 인증서버 GPU API LLM CUDA HBM3E SaaS"
    ),
    "장비": (
        "서버 노트북 모니터 마이크 스피커 카메라 라우터 스위치허브 프린터 태블릿 스마트폰 "
        "배터리 충전기 키보드 저장장치 웨이퍼 노광장비 로봇팔 드론 센서"
    ),
    "서비스": (
        "고객센터 결제 배송 예약 구독 멤버십 포인트 쿠폰 환불 상담 챗봇 알림 검색 추천 "
        "스트리밍 택배 간편결제 본인인증 클라우드스토리지 화상회의"
    ),
    "장소": (
        "서울 부산 대구 인천 광주 대전 울산 세종 판교 평택 수원 강남 여의도 제주 "
        "분당 송도 을지로 광화문 홍대 성수동 뉴욕 도쿄 베이징 실리콘밸리 싱가포르 베를린"
    ),
    "인물": (
        "김민수 이지은 박서준 최영희 정우성 강다니엘 윤아름 한지민 오세훈 장동련 "
        "김팀장 이과장 박대리 최부장 정이사 강본부장 윤상무 한대표"
    ),
    "기타": (
        "회의 일정 예산 고객 계약 매출 이익 비용 분기 목표 전략 보고서 발표 검토 "
        "개발 출시 테스트 배포 장애 점검 교육 채용 인사 조직 프로젝트 마감 일정표 "
        "품질 성능 지연 용량 요금 가격 할인 경쟁사 시장 점유율 투자 협업 제안서 "
        "회의록 공지 문서 자료 데이터 지표 결과 문제 원인 해결 개선 방안 계획 증설 "
        "커피 점심 저녁 출장 휴가 사무실 공장 창고 본사 지사 연구소"
    ),
}
# Planted words: each in exactly RARE_HITS segments, nowhere else.
RARE_WORDS = ["양자암호통신", "뉴로모픽칩", "하이퍼루프", "오로라플랫폼"]
PARTICLES = ["의", "가", "이", "는", "은", "를", "을", "에서", "에", "와", "과", "도", "로", "으로"]
PREDICATES = [
    "검토했습니다",
    "논의하기로 했습니다",
    "진행 중입니다",
    "다음 주까지 정리해 주세요",
    "확인이 필요합니다",
    "일정이 밀렸다고 합니다",
    "공유드리겠습니다",
    "문제가 없는지 봐야 합니다",
    "이번 분기 안에 끝내겠습니다",
    "다시 협의하겠습니다",
]
# Attached to the previous word when re-spacing the Zeroth references ("등 은" -> "등은").
_ATTACH = {
    "은", "는", "이", "가", "을", "를", "의", "에", "와", "과", "도", "만", "로", "으로",
    "에서", "에게", "인", "해", "하고", "하게", "한다는", "되면서", "돼",
}  # fmt: skip

# Queries: common (head of the Zipf list), medium (its middle, see medium_queries) and rare
# (planted words, and one found nowhere).
COMMON_QUERIES = ["삼성전자", "회의", "고객의", "서버 증설", "gpu"]
RARE_QUERIES = ["양자암호통신", "뉴로모픽칩을", "하이퍼루프", "없는낱말이요"]
MEDIUM_RANKS = (25, 60, 150)


# --- helpers that work before Django is set up -------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low, high = math.floor(k), math.ceil(k)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


# --- the text ------------------------------------------------------------------------------


def reference_sentences() -> list[str]:
    """The Korean references, spaced as written (particles attached), and the meeting
    sentences of the keyword benchmark."""
    from bench.keywords import MEETING_SEGMENTS

    sentences = []
    manifest = EVAL_DIR / "manifest.jsonl"
    if manifest.exists():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line) if line.strip() else {}
            if entry.get("lang") != "ko" or not entry.get("reference"):
                continue
            words: list[str] = []
            for word in entry["reference"].split():
                if words and word in _ATTACH:
                    words[-1] += word
                else:
                    words.append(word)
            sentences.append(" ".join(words))
    else:
        print(f"warning: {manifest} not found; meeting sentences only", file=sys.stderr)
    sentences.extend(text for _id, text in MEETING_SEGMENTS)
    return sentences


class TextMaker:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.references = reference_sentences()
        self.nouns = [(w, c) for c, words in WORDS.items() for w in words.split()]
        rng.shuffle(self.nouns)
        # Zipf: the word at rank r is drawn with weight 1/r.
        self.weights = [1.0 / (rank + 1) for rank in range(len(self.nouns))]
        # The common queries' words lead the list, so "common" means common.
        for word in reversed(("삼성전자", "회의", "고객", "서버", "GPU", "증설")):
            at = next(i for i, (w, _c) in enumerate(self.nouns) if w == word)
            self.nouns.insert(0, self.nouns.pop(at))

    def noun(self) -> tuple[str, str]:
        return self.rng.choices(self.nouns, weights=self.weights)[0]

    def particle(self, word: str) -> str:
        last = word[-1]
        if not ("가" <= last <= "힣"):
            return self.rng.choice(["를", "가", "의", "로", "에서", "는", ""])
        has_final = (ord(last) - 0xAC00) % 28 != 0
        pairs = [("이", "가"), ("을", "를"), ("은", "는"), ("과", "와"), ("으로", "로")]
        if self.rng.random() < 0.35:
            return self.rng.choice(["의", "에서", "에", "도", ""])
        pair = self.rng.choice(pairs)
        return pair[0] if has_final else pair[1]

    def sentence(self) -> tuple[str, list[tuple[str, str]]]:
        if self.rng.random() < 0.25:
            return self.rng.choice(self.references), []
        used = [self.noun() for _ in range(self.rng.randint(2, 5))]
        words = [w + self.particle(w) for w, _c in used]
        return " ".join(words) + " " + self.rng.choice(PREDICATES), used


# --- filling the database ------------------------------------------------------------------


def unset_columns(model, given: list[str]) -> tuple[list[str], tuple]:
    """The model's NOT NULL columns that ``given`` leaves out, with their defaults: a field
    added later (``error_code``, ``warning``, ``attempts``) would otherwise fail the COPY."""
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.column in given or field.null or getattr(field, "db_returning", False):
            continue  # set here, nullable, or an auto-increment key
        value = field.get_default()
        if value is None:
            raise RuntimeError(f"no value for {model.__name__}.{field.name} in bench.search.fill")
        columns.append(field.column)
        values.append(value)
    return columns, tuple(values)


def fill(transcripts: int, per_transcript: int, chunk: int = 1000) -> dict:
    """Empty the bench tables and load the synthetic history with COPY.

    Rows are made and copied ``chunk`` transcripts at a time (their segments and keywords
    with them, in one transaction, so the deferred foreign keys hold at the commit): a
    million segments held in lists at once would take gigabytes; the data is the same."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from keywords.models import Keyword
    from transcription.models import Segment, Transcript
    from transcription.search import search_document

    started = time.perf_counter()
    rng = random.Random(SEED)
    maker = TextMaker(rng)
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=USERNAME)
    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE {Keyword._meta.db_table}, {Segment._meta.db_table}, "
            f"{Transcript._meta.db_table} CASCADE"
        )
    total = transcripts * per_transcript
    slots = rng.sample(range(total), RARE_HITS * len(RARE_WORDS))
    rare_slots = {slot: RARE_WORDS[i // RARE_HITS] for i, slot in enumerate(slots)}
    now = dt.datetime.now(dt.UTC)
    t_cols = ["id", "owner_id", "source", "title", "status", "error", "language", "duration",
              "progress", "processed_s", "task_id", "audio", "created_at", "started_at",
              "finished_at"]  # fmt: skip
    s_cols = ["transcript_id", "index", "start", "end", "text", "search_vector"]
    k_cols = ["transcript_id", "word", "category", "importance", "backend", "created_at"]
    counted = {"transcripts": 0, "segments": 0, "keywords": 0}
    generate_s = 0.0

    def rows_of(first: int, last: int) -> tuple[list, list, list]:
        t_rows, s_rows, k_rows = [], [], []
        for n in range(first, last):
            tid = uuid.UUID(int=rng.getrandbits(128), version=4)
            created = now - dt.timedelta(seconds=rng.uniform(0, 365 * 86400))
            source = "live" if rng.random() < 0.4 else "upload"
            clock = 0.0
            counts: dict[tuple[str, str], int] = {}
            for index in range(per_transcript):
                slot = n * per_transcript + index
                text, used = maker.sentence()
                if slot in rare_slots:
                    word = rare_slots[slot]
                    text = f"{word}{maker.particle(word)} {text}"
                for item in used:
                    counts[item] = counts.get(item, 0) + 1
                length = 1.5 + len(text) * 0.08
                s_rows.append((tid, index, round(clock, 3), round(clock + length, 3), text,
                               search_document(text)))  # fmt: skip
                clock += length + rng.uniform(0.2, 1.5)
            # Uploads are titled by their file name, live sessions not at all (as in use).
            title = "" if source == "live" else f"recording-{created:%Y%m%d-%H%M%S}.m4a"
            t_rows.append((tid, user.pk, source, title, "done", "", "ko", round(clock, 1), 1.0,
                           round(clock, 1), "", "", created, created, created))  # fmt: skip
            top = sorted(counts.items(), key=lambda kv: -kv[1])[:5]
            for (word, category), count in top:
                k_rows.extend(
                    (tid, word, category, round(rng.uniform(0.4, 1.0), 2), "embedded", created)
                    for _ in range(count)
                )
        return t_rows, s_rows, k_rows

    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        raw.execute("SET maintenance_work_mem = '256MB'")
        # Building the GIN index once after the load is far faster than maintaining it.
        raw.execute("DROP INDEX IF EXISTS segment_search_vector")
        for first in range(0, transcripts, chunk):
            made = time.perf_counter()
            t_rows, s_rows, k_rows = rows_of(first, min(first + chunk, transcripts))
            generate_s += time.perf_counter() - made
            with transaction.atomic():
                for model, cols, rows in (
                    (Transcript, t_cols, t_rows),
                    (Segment, s_cols, s_rows),
                    (Keyword, k_cols, k_rows),
                ):
                    more, defaults = unset_columns(model, cols)
                    quoted = ", ".join(f'"{c}"' for c in cols + more)
                    table = model._meta.db_table
                    with raw.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row((*row, *defaults))
            counted["transcripts"] += len(t_rows)
            counted["segments"] += len(s_rows)
            counted["keywords"] += len(k_rows)
        raw.execute(
            "CREATE INDEX segment_search_vector ON transcription_segment USING gin (search_vector)"
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {
        **counted,
        "generate_s": round(generate_s, 1),
        "load_s": round(time.perf_counter() - started - generate_s, 1),
    }


def dataset_stats() -> dict:
    from django.db import connection

    from keywords.models import Keyword
    from transcription.models import Segment, Transcript

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('transcription_segment'))")
        segment_size = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('segment_search_vector'))")
        index_size = cursor.fetchone()[0]
    return {
        "transcripts": Transcript.objects.count(),
        "segments": Segment.objects.count(),
        "keywords": Keyword.objects.count(),
        "segment_table_size": segment_size,
        "search_index_size": index_size,
    }


# --- timing --------------------------------------------------------------------------------


def start_web(database_url: str, data_dir: str) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log_path = Path(data_dir) / "daphne.log"
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": data_dir, "DEBUG": "false"}
    env.setdefault("LOG_LEVEL", "warning")
    process = start_process(web_command("127.0.0.1", port), log_path, env)
    return process, f"http://127.0.0.1:{port}", log_path


def wait_ready(client, url: str, process: subprocess.Popen, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("daphne exited:\n" + log_tail(log_path))
        try:
            if client.get(url + "/api/keywords/?limit=1").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("daphne did not answer in 60 s")


def medium_queries() -> list[str]:
    """Words from the middle of the Zipf list (each in roughly 0.2-1% of segments), one
    with a particle: the same words on every run, as the text is made from a fixed seed."""
    maker = TextMaker(random.Random(SEED))
    words = [maker.nouns[rank][0] for rank in MEDIUM_RANKS]
    return [words[0] + "의", *words[1:]]


def measure(client, url: str, rounds: int, warmup_s: float) -> dict:
    endpoints = {"transcripts": "/api/transcripts/", "segments": "/api/segments/"}
    queries = (
        [(q, "common") for q in COMMON_QUERIES]
        + [(q, "medium") for q in medium_queries()]
        + [(q, "rare") for q in RARE_QUERIES]
    )

    def get(path: str, q: str) -> tuple[float, dict]:
        started = time.perf_counter()
        response = client.get(url + path, params={"q": q})
        body = response.content
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path}?q={q}: HTTP {response.status_code} {body[:300]!r}")
        return elapsed, json.loads(body)

    # Warm-up, untimed: connections, Django's first requests, and the server loading Kiwi
    # in the background on its first search (the rules answer until then).
    deadline = time.monotonic() + warmup_s
    while time.monotonic() < deadline:
        for q, _kind in queries:
            for path in endpoints.values():
                get(path, q)
    timings: dict[tuple[str, str], list[float]] = {}
    hits: dict[tuple[str, str], str] = {}
    for _ in range(rounds):
        for q, _kind in queries:
            for name, path in endpoints.items():
                elapsed, body = get(path, q)
                timings.setdefault((name, q), []).append(elapsed)
                hits[(name, q)] = f"{body['count']}{'' if body['count_exact'] else '+'}"
    per_query = [
        {
            "endpoint": name,
            "query": q,
            "kind": kind,
            "hits": hits[(name, q)],
            "p50_ms": round(percentile(timings[(name, q)], 0.5), 1),
            "p95_ms": round(percentile(timings[(name, q)], 0.95), 1),
            "max_ms": round(max(timings[(name, q)]), 1),
        }
        for q, kind in queries
        for name in endpoints
    ]
    summary = []
    for name in endpoints:
        for kind in ("common", "medium", "rare"):
            values = [
                t
                for (n, q), ts in timings.items()
                for t in ts
                if n == name and (q, kind) in queries
            ]
            summary.append(
                {
                    "endpoint": name,
                    "kind": kind,
                    "requests": len(values),
                    "p50_ms": round(percentile(values, 0.5), 1),
                    "p95_ms": round(percentile(values, 0.95), 1),
                    "mean_ms": round(statistics.fmean(values), 1),
                    "pass": percentile(values, 0.95) < TARGET_P95_MS,
                }
            )
    # Every query of an endpoint pooled (bench/scale.py follows these as the history grows).
    overall = {}
    for name in endpoints:
        pooled = [t for (n, _q), ts in timings.items() if n == name for t in ts]
        overall[name] = {
            "requests": len(pooled),
            "p50_ms": round(percentile(pooled, 0.5), 1),
            "p95_ms": round(percentile(pooled, 0.95), 1),
        }
    # Not part of the target: the top keywords over the whole history, for the record.
    keyword_ms = []
    for _ in range(max(rounds // 4, 5)):
        started = time.perf_counter()
        client.get(url + "/api/keywords/", params={"limit": 50}).raise_for_status()
        keyword_ms.append((time.perf_counter() - started) * 1000)
    keywords = {
        "requests": len(keyword_ms),
        "p50_ms": round(percentile(keyword_ms, 0.5), 1),
        "p95_ms": round(percentile(keyword_ms, 0.95), 1),
    }
    return {
        "per_query": per_query,
        "summary": summary,
        "overall": overall,
        "keywords_endpoint": keywords,
    }


def print_report(result: dict) -> None:
    data = result["dataset"]
    print(
        f"\nDataset: {data['transcripts']:,} transcripts, {data['segments']:,} segments, "
        f"{data['keywords']:,} keywords; segment table {data['segment_table_size']}, "
        f"search index {data['search_index_size']}"
    )
    print(f"{result['rounds']} timed requests per query and endpoint, over HTTP (daphne).\n")
    print(f"{'endpoint':<12} {'query':<14} {'kind':<7} {'hits':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for row in result["per_query"]:
        print(
            f"{row['endpoint']:<12} {row['query']:<14} {row['kind']:<7} {row['hits']:>7} "
            f"{row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f}"
        )
    print(f"\n{'endpoint':<12} {'kind':<7} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8}  target")
    for row in result["summary"]:
        verdict = "PASS" if row["pass"] else "FAIL"
        print(
            f"{row['endpoint']:<12} {row['kind']:<7} {row['requests']:>8} {row['p50_ms']:>8.1f} "
            f"{row['p95_ms']:>8.1f}  {verdict} (p95 < {TARGET_P95_MS:.0f} ms)"
        )
    kw = result["keywords_endpoint"]
    print(
        f"\n(/api/keywords/?limit=50 over the whole history, not in the target: "
        f"p50 {kw['p50_ms']:.1f} ms, p95 {kw['p95_ms']:.1f} ms)"
    )
    print(f"\nOverall: {'PASS' if result['pass'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transcripts", type=int, default=10_000)
    parser.add_argument("--segments-per-transcript", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=40, help="timed requests per query")
    parser.add_argument("--warmup", type=float, default=6.0, help="seconds of untimed requests")
    parser.add_argument("--refill", action="store_true", help="rebuild the data")
    parser.add_argument("--database", default=DATABASE)
    args = parser.parse_args(argv)

    base_url = os.environ.get("DATABASE_URL", "").strip()
    if not base_url:
        print("DATABASE_URL is not set (make bench-search sets it)", file=sys.stderr)
        return 2
    database_url, _created = ensure_database(base_url, args.database)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sttproject.settings")
    data_dir = tempfile.mkdtemp(prefix="bench-search-")
    os.environ["DATA_DIR"] = data_dir  # a throw-away secret key, no uploads

    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from transcription.models import Segment, Transcript

    call_command("migrate", verbosity=0)
    want_segments = args.transcripts * args.segments_per_transcript
    have = (Transcript.objects.count(), Segment.objects.count())
    if args.refill or have != (args.transcripts, want_segments):
        print(
            f"Filling {args.database}: {args.transcripts:,} transcripts, {want_segments:,} segments"
        )
        load = fill(args.transcripts, args.segments_per_transcript)
        print(f"  generated in {load['generate_s']} s, loaded and indexed in {load['load_s']} s")
    else:
        load = None
        print(f"Reusing {args.database}: {have[0]:,} transcripts, {have[1]:,} segments")
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=USERNAME)
    Token.objects.filter(user=user).delete()
    token = Token.objects.create(user=user, key=secrets.token_hex(20))
    dataset = dataset_stats()

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    process, url, log_path = start_web(database_url, data_dir)
    try:
        with httpx.Client(headers={"Authorization": f"Token {token.key}"}, timeout=30) as client:
            wait_ready(client, url, process, log_path)
            timing = measure(client, url, args.rounds, args.warmup)
    finally:
        stop_process(process, timeout=15)
        token.delete()
        shutil.rmtree(data_dir, ignore_errors=True)
    result = {
        "benchmark": "search",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform_info.platform(),
            "python": platform_info.python_version(),
            "cpus": os.cpu_count(),
        },
        "database": re.sub(r"//[^@]*@", "//", database_url),
        "dataset": dataset,
        "load": load,
        "rounds": args.rounds,
        "target_p95_ms": TARGET_P95_MS,
        **timing,
    }
    result["pass"] = all(row["pass"] for row in timing["summary"])
    print_report(result)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"search-{stamp}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"Saved {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
