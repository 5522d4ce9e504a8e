"""``GET /metrics`` (transcription/web/metrics.py): who may read it, and what it answers.

The Django test client's peer is 127.0.0.1 unless a test gives REMOTE_ADDR: the refused
cases come from a documentation address (203.0.113.0/24), as a client elsewhere would.
"""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from transcription.web.metrics import from_loopback
from workers.queues import Queue

ELSEWHERE = "203.0.113.7"


def token_for(user) -> str:
    return Token.objects.create(user=user).key


def families(response) -> dict:
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def test_anonymous_from_another_machine_is_refused_with_401(db):
    response = Client(REMOTE_ADDR=ELSEWHERE).get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert b"stt_" not in response.content


def test_a_staff_token_reads_the_metrics_from_anywhere(cast):
    for scheme in ("Token", "Bearer"):
        response = Client(REMOTE_ADDR=ELSEWHERE).get(
            "/metrics", HTTP_AUTHORIZATION=f"{scheme} {token_for(cast.staff)}"
        )
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain; version=")
        Token.objects.filter(user=cast.staff).delete()


def test_a_token_of_someone_not_staff_is_refused_with_403_even_on_loopback(cast):
    header = f"Token {token_for(cast.owner)}"
    for address in (ELSEWHERE, "127.0.0.1"):
        response = Client(REMOTE_ADDR=address).get("/metrics", HTTP_AUTHORIZATION=header)
        assert response.status_code == 403, address


def test_a_bad_token_is_refused_with_401(db):
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Token not-a-key")
    assert response.status_code == 401


def test_a_signed_in_staff_member_reads_them_and_others_do_not(cast):
    staff, other = Client(REMOTE_ADDR=ELSEWHERE), Client(REMOTE_ADDR=ELSEWHERE)
    staff.force_login(cast.staff)
    other.force_login(cast.owner)
    assert staff.get("/metrics").status_code == 200
    assert other.get("/metrics").status_code == 403


def test_loopback_without_credentials_reads_them_unless_a_proxy_forwards(db):
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    # A reverse proxy on this machine, not named in TRUSTED_PROXIES: its clients are not local.
    forwarded = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=ELSEWHERE)
    assert forwarded.get("/metrics").status_code == 401


@pytest.mark.parametrize(
    ("meta", "local"),
    [
        ({"REMOTE_ADDR": "127.0.0.1"}, True),
        ({"REMOTE_ADDR": "127.8.9.10"}, True),
        ({"REMOTE_ADDR": "::ffff:127.0.0.1"}, True),
        ({"REMOTE_ADDR": "10.0.0.5"}, False),
        ({"REMOTE_ADDR": ""}, False),
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=198.51.100.1"}, False),
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "198.51.100.1"}, False),
    ],
)
def test_from_loopback(rf, meta, local):
    request = rf.get("/metrics")
    request.META.update(meta)
    assert from_loopback(request) is local


def test_the_answer_names_the_series_operators_watch(cast):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Token {token_for(cast.staff)}")
    found = families(response)
    # Read from Redis as it is scraped, once for the platform.
    assert found["stt_broker_up"].samples[0].value == 1
    depth = {s.labels["queue"] for s in found["stt_queue_waiting_messages"].samples}
    assert depth == {queue.value for queue in Queue}
    assert {s.labels["queue"] for s in found["stt_workers_online"].samples} == depth
    # Recorded by the processes (this one here: no multiprocess folder in the test run).
    for name, kind in [
        ("stt_tasks", "counter"),
        ("stt_task_duration_seconds", "histogram"),
        ("stt_queue_wait_seconds", "histogram"),
        ("stt_transcription_real_time_factor", "histogram"),
        ("stt_transcribed_audio_seconds", "counter"),
        ("stt_transcription_processing_seconds", "counter"),
        ("stt_transcriptions", "counter"),
        ("stt_live_final_latency_seconds", "histogram"),
        ("stt_live_sessions_active", "gauge"),
        ("stt_live_sessions", "counter"),
        ("stt_llm_calls", "counter"),
        ("stt_llm_call_duration_seconds", "histogram"),
        ("stt_uploads", "counter"),
        ("stt_upload_bytes", "counter"),
    ]:
        assert found[name].type == kind, name
    calls = {(s.labels["backend"], s.labels["outcome"]) for s in found["stt_llm_calls"].samples}
    assert {("vllm", "failure"), ("embedded", "success")} <= calls
    assert "stt_upload_bytes_total" in {s.name for s in found["stt_upload_bytes"].samples}


def test_the_live_latency_buckets_span_a_tenth_of_a_second_to_thirty(cast):
    response = Client().get("/metrics")
    found = families(response)
    bounds = {
        s.labels["le"]
        for s in found["stt_live_final_latency_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert {"0.1", "1.0", "30.0", "+Inf"} <= bounds
    rtf = {
        float(s.labels["le"])
        for s in found["stt_transcription_real_time_factor"].samples
        if s.name.endswith("_bucket") and s.labels["le"] != "+Inf"
    }
    assert min(rtf) == 0.01 and max(rtf) == 2.0


def test_the_format_is_the_one_the_scraper_asks_for(db):
    # Without an Accept header (curl), the text format every Prometheus reads.
    plain = Client().get("/metrics")
    assert plain["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    openmetrics = Client().get("/metrics", HTTP_ACCEPT="application/openmetrics-text")
    assert openmetrics["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert openmetrics.content.rstrip().endswith(b"# EOF")
