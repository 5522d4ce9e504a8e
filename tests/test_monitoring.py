"""The monitoring that compose starts under its "monitoring" profile: Prometheus's scrape
configuration (docker/prometheus.yml), Grafana's provisioning (docker/grafana/) and the
dashboard (docs/grafana-dashboard.json), read against the series the platform exports
(workers/metrics.py). Nothing is started; compose itself is validated in test_compose.py."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import REPO_ROOT
from workers import metrics

DASHBOARD = REPO_ROOT / "docs" / "grafana-dashboard.json"
PROMETHEUS = REPO_ROOT / "docker" / "prometheus.yml"
PROVISIONING = REPO_ROOT / "docker" / "grafana" / "provisioning"
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every sample name the platform's metrics can have (families without events too)."""
    names = set()
    for family in metrics.registry(platform=True).collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def expressions() -> list[str]:
    return [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    ]


def test_every_query_of_the_dashboard_names_series_the_platform_exports(exported):
    used = {name for expr in expressions() for name in re.findall(r"\bstt_\w+", expr)}
    assert used, "the dashboard queries nothing"
    assert used <= exported, sorted(used - exported)

    # Nothing the platform exports is left off the dashboard.
    def family(name: str) -> str:
        return re.sub(r"_(total|bucket|count|sum)$", "", name)

    shown = {family(name) for name in used}
    missing = {family(name) for name in exported if name.startswith("stt_")} - shown
    assert not missing, sorted(missing)


def test_the_dashboard_has_the_panels_operators_asked_for():
    queries = "\n".join(expressions())
    for wanted in (
        "stt_queue_waiting_messages",  # queue depth
        "rate(stt_tasks_total",  # task outcomes
        "stt_transcription_real_time_factor_bucket",  # real-time factor
        "histogram_quantile(0.5, sum by (le) (rate(stt_live_final_latency_seconds_bucket",
        "histogram_quantile(0.95, sum by (le) (rate(stt_live_final_latency_seconds_bucket",
        "stt_queue_wait_seconds_bucket",  # queue wait
        "stt_live_sessions_active",  # active sessions
        'stt_llm_calls_total{backend="vllm",outcome="failure"}',  # LLM failures
        "rate(stt_upload_bytes_total",  # upload bytes
    ):
        assert wanted in queries, wanted
    board = dashboard()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_grafana_provisions_the_data_source_and_the_dashboard_compose_mounts():
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    # The dashboard's data source variable starts on the provisioned one.
    variable = dashboard()["templating"]["list"][0]
    assert variable["type"] == "datasource" and variable["current"]["value"] == source["uid"]
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "speech-platform.yml").read_text())
    (provider,) = providers["providers"]
    compose = yaml.safe_load((REPO_ROOT / "compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    dashboard_mount = next(m for m in mounts if m.startswith("./docs/grafana-dashboard.json:"))
    assert dashboard_mount.split(":")[1].startswith(provider["options"]["path"] + "/")
    assert "./docker/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_prometheus_scrapes_every_app_container_once():
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = [
        target
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    ]
    assert len(targets) == len(set(targets))
    compose = yaml.safe_load((REPO_ROOT / "compose.yml").read_text())
    services = compose["services"]
    port = services["web"]["environment"]["METRICS_PORT"]
    app = {
        name
        for name, svc in services.items()
        if name == "web" or "worker" in (svc.get("command") or [])
    }
    assert {target.rsplit(":", 1)[0] for target in targets} == app
    assert {target.rsplit(":", 1)[1] for target in targets} == {port}
