"""The production deployment: compose.yml, Dockerfile, .dockerignore, docker/entrypoint.sh.

No Docker engine runs here, so nothing is built or started. ``docker-compose config``
validates compose.yml, and the files are read for what the platform's contracts need:
the services, their health checks, the published ports, one GPU per Whisper worker,
vLLM's settings, and an image whose entrypoint runs files that exist.

compose.yml gives secrets no default (``${SECRET_KEY:?...}``), so validation passes
placeholders for them, and a test checks that compose refuses to run without each one.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from workers.queues import Queue, consumed_queues

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE = REPO_ROOT / "compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
WORKER_COMPOSE = REPO_ROOT / "compose.worker.yml"

# Secrets that compose.yml requires (no default); placeholders, only for validation.
SECRETS = {
    "SECRET_KEY": "placeholder-secret-key-for-compose-validation-0123456789",
    "POSTGRES_PASSWORD": "placeholder",
    "FLOWER_BASIC_AUTH": "admin:placeholder",
}
REQUIRED_SERVICES = {"postgres", "redis", "vllm", "web", "stt-gpu0", "keywords", "flower"}
APP_SERVICES = ("web", "keywords", "flower")


# --- helpers ---------------------------------------------------------------------------


def load_compose() -> dict:
    # PyYAML resolves the anchors and `<<` merge keys the file uses, as compose does.
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict]:
    return load_compose()["services"]


def stt_workers(svcs: dict[str, dict]) -> dict[str, dict]:
    return {
        name: svc
        for name, svc in svcs.items()
        if isinstance(svc.get("command"), list)
        and _queue_of(svc["command"]) == ",".join(consumed_queues(Queue.STT))
    }


def _queue_of(command: list[str]) -> str:
    return command[command.index("-Q") + 1] if "-Q" in command else ""


def _option(command: list[str], flag: str) -> str:
    assert flag in command, f"{flag} missing from {command}"
    return str(command[command.index(flag) + 1])


def gpu_devices(svc: dict) -> list[dict]:
    reservations = svc.get("deploy", {}).get("resources", {}).get("reservations", {})
    return [d for d in reservations.get("devices", []) if "gpu" in d.get("capabilities", [])]


def published_targets(svc: dict) -> set[int]:
    """Container ports a service publishes, from short ("[IP:]HOST:CONTAINER") or long syntax."""
    targets = set()
    for port in svc.get("ports", []):
        if isinstance(port, dict):
            targets.add(int(port["target"]))
        else:
            targets.add(int(str(port).split("/")[0].rsplit(":", 1)[1]))
    return targets


def seconds(duration: str) -> float:
    """Compose durations such as 30s, 2m, 1m30s."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), duration
    return sum(float(n) * units[u] for n, u in parts)


def docker_compose(
    *args: str, env: dict[str, str], tmp_path: Path, file: Path = COMPOSE
) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (CI installs Debian's docker-compose)")
    # An empty env file and a minimal environment: a developer's .env or exported
    # settings must not change what is validated.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(
        [exe, "--env-file", str(empty_env_file), "-f", str(file), *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=REPO_ROOT,
        timeout=120,
    )


def rendered_config(tmp_path: Path, **overrides: str) -> dict:
    result = docker_compose("config", env={**SECRETS, **overrides}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def dockerfile_values(keyword: str) -> list[str]:
    return [rest for kw, rest in dockerfile_instructions() if kw == keyword]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for rest in dockerfile_values("ENV"):
        for item in shlex.split(rest):
            key, sep, value = item.partition("=")
            if sep:
                env[key] = value
    return env


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` (or a folder above it) out of the build context."""
    patterns = [
        ln.strip().lstrip("/")
        for ln in DOCKERIGNORE.read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "exceptions need a smarter matcher"
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatchcase(Path(prefix).name, bare)
            ):
                return True
    return False


# --- compose.yml: validation -----------------------------------------------------------------


@pytest.mark.slow  # starts a process
def test_compose_config_validates(tmp_path):
    result = docker_compose("config", "-q", env=SECRETS, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_compose_refuses_to_run_without_each_secret(tmp_path, secret):
    env = {k: v for k, v in SECRETS.items() if k != secret}
    result = docker_compose("config", "-q", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert secret in result.stderr


@pytest.mark.slow  # starts a process
def test_rendered_settings_reach_vllm_and_workers(tmp_path):
    config = rendered_config(tmp_path)["services"]
    command = [str(arg) for arg in config["vllm"]["command"]]
    assert _option(command, "--model") == "Qwen/Qwen2.5-7B-Instruct"
    assert _option(command, "--gpu-memory-utilization") == "0.85"
    assert _option(command, "--max-model-len") == "8192"
    assert config["stt-gpu0"]["environment"]["WHISPER_MODEL"] == "large-v3"
    assert config["web"]["environment"]["DATABASE_URL"] == (
        f"postgresql://stt:{SECRETS['POSTGRES_PASSWORD']}@postgres:5432/stt"
    )

    tuned = rendered_config(
        tmp_path,
        VLLM_GPU_MEMORY_UTILIZATION="0.6",
        VLLM_MAX_MODEL_LEN="4096",
        VLLM_MODEL="Qwen/Qwen2.5-7B-Instruct-AWQ",
        WHISPER_MODEL="medium",
    )["services"]
    command = [str(arg) for arg in tuned["vllm"]["command"]]
    assert _option(command, "--gpu-memory-utilization") == "0.6"
    assert _option(command, "--max-model-len") == "4096"
    assert _option(command, "--model") == "Qwen/Qwen2.5-7B-Instruct-AWQ"
    # The platform asks vLLM for the model vLLM serves.
    assert tuned["keywords"]["environment"]["VLLM_MODEL"] == "Qwen/Qwen2.5-7B-Instruct-AWQ"
    assert tuned["stt-gpu1"]["environment"]["WHISPER_MODEL"] == "medium"


# --- compose.yml: shape ---------------------------------------------------------------------


def test_required_services_exist():
    missing = REQUIRED_SERVICES - set(services())
    assert not missing, missing


def test_every_service_has_a_sane_healthcheck_and_restarts():
    for name, svc in services().items():
        check = svc.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name
        interval, timeout = seconds(check["interval"]), seconds(check["timeout"])
        assert 5 <= interval <= 120, f"{name}: interval {check['interval']}"
        assert timeout < interval, f"{name}: timeout {check['timeout']} >= interval"
        assert svc.get("restart") == "unless-stopped", name


def test_contract_ports_are_published():
    svcs = services()
    assert 5000 in published_targets(svcs["web"])
    assert 5555 in published_targets(svcs["flower"])
    assert 8000 in published_targets(svcs["vllm"])
    # The database and broker stay on the compose network.
    assert not svcs["postgres"].get("ports")
    assert not svcs["redis"].get("ports")


def test_a_tls_proxy_fronts_the_web_service():
    """HTTPS through Caddy's official image with docker/Caddyfile (run for real in
    tests/test_caddy_proxy.py); the web service believes forwarded headers from it alone."""
    import ipaddress

    compose = load_compose()
    proxy = compose["services"]["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert "./docker/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert (REPO_ROOT / "docker" / "Caddyfile").is_file()
    assert {80, 443} <= published_targets(proxy)
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    address = proxy["networks"]["default"]["ipv4_address"].split(":-")[-1].rstrip("}")
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    subnet = subnet.split(":-")[-1].rstrip("}")
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    trusted = compose["services"]["web"]["environment"]["TRUSTED_PROXIES"]
    assert trusted.split(":-")[-1].rstrip("}") == address


def test_postgres_and_redis_checks():
    svcs = services()
    assert svcs["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(svcs["postgres"]["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in svcs["postgres"]["volumes"])
    assert "redis-cli ping" in " ".join(svcs["redis"]["healthcheck"]["test"])
    assert _option(svcs["redis"]["command"], "--appendonly") == "yes"
    assert any(v.endswith(":/data") for v in svcs["redis"]["volumes"])


def test_each_stt_worker_reserves_exactly_one_distinct_gpu():
    svcs = services()
    workers = stt_workers(svcs)
    assert {"stt-gpu0", "stt-gpu1"} <= set(workers)
    seen: dict[str, str] = {}
    for name, svc in workers.items():
        devices = gpu_devices(svc)
        assert len(devices) == 1, f"{name} reserves {devices}"
        ids = [str(i) for i in devices[0].get("device_ids", [])]
        assert len(ids) == 1 and "count" not in devices[0], f"{name} must pin one GPU: {devices}"
        assert ids[0] not in seen, f"{name} and {seen.get(ids[0])} share GPU {ids[0]}"
        seen[ids[0]] = name
        # The Celery node name, the service name and the GPU agree, and the health check
        # pings this worker and no other.
        command = svc["command"]
        assert name == f"stt-gpu{ids[0]}"
        assert _option(command, "-n") == f"{name}@%h"
        assert _option(command, "--concurrency") == "1"
        assert f"-d {name}@$$HOSTNAME" in " ".join(svc["healthcheck"]["test"])
        env = svc["environment"]
        assert env["WHISPER_DEVICE"] == "cuda"
        assert env["CUDA_VISIBLE_DEVICES"] == "0"  # the one GPU the container sees
        assert "float16" in env["WHISPER_COMPUTE_TYPE"]
        assert "large-v3" in env["WHISPER_MODEL"]
        assert "web" in svc["depends_on"]


@pytest.mark.parametrize(
    ("queue", "prefix", "shares"),
    [
        # The lowest CPU weight, as `nice 19` gives the partial worker outside containers.
        (Queue.STT_PARTIAL, "stt-partial-", 2),
        # Live finals at the default weight (1024), above the uploads' worker.
        (Queue.STT_LIVE, "stt-live-", None),
    ],
)
def test_each_live_and_partial_worker_shares_the_gpu_of_its_stt_worker(queue, prefix, shares):
    svcs = services()
    siblings = {
        name: svc
        for name, svc in svcs.items()
        if isinstance(svc.get("command"), list) and _queue_of(svc["command"]) == queue
    }
    assert set(siblings) == {name.replace("stt-", prefix) for name in stt_workers(svcs)}
    for name, svc in siblings.items():
        twin = svcs[name.replace(prefix, "stt-")]
        assert gpu_devices(svc) == gpu_devices(twin), name
        assert _option(svc["command"], "-n") == f"{name}@%h"
        assert _option(svc["command"], "--concurrency") == "1"
        assert svc.get("cpu_shares") == shares
        # The uploads' worker below the live one, as `nice 10` outside containers.
        assert twin["cpu_shares"] == 128


def test_only_gpu_services_reserve_gpus():
    svcs = services()
    for name in (*APP_SERVICES, "postgres", "redis"):
        assert not gpu_devices(svcs[name]), f"{name} should not hold a GPU"
    assert len(gpu_devices(svcs["vllm"])) == 1


def test_workers_consume_the_platform_queues():
    svcs = services()
    consumed = {
        queue
        for svc in svcs.values()
        if "worker" in svc.get("command", [])
        for queue in _queue_of(svc["command"]).split(",")
    }
    assert consumed == {queue.value for queue in Queue}
    # Live finals first, in the order the launcher gives.
    assert all(
        _queue_of(svc["command"]) == ",".join(consumed_queues(Queue.STT))
        for svc in svcs.values()
        if Queue.STT.value in _queue_of(svc.get("command") or []).split(",")
    )
    for name, svc in svcs.items():
        if "worker" in svc.get("command", []):
            node = _option(svc["command"], "-n")
            assert f"-d {node.removesuffix('@%h')}@$$HOSTNAME" in " ".join(
                svc["healthcheck"]["test"]
            ), f"{name}'s healthcheck does not ping its own node"


def test_vllm_serves_the_model_with_memory_settings():
    vllm = services()["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    command = [str(arg) for arg in vllm["command"]]
    assert "Qwen/Qwen2.5-7B-Instruct" in _option(command, "--model")
    assert _option(command, "--gpu-memory-utilization") == "${VLLM_GPU_MEMORY_UTILIZATION:-0.85}"
    assert _option(command, "--max-model-len") == "${VLLM_MAX_MODEL_LEN:-8192}"
    assert _option(command, "--port") == "8000"
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    assert any(v.endswith(":/root/.cache/huggingface") for v in vllm["volumes"])


def test_start_order_waits_for_health():
    svcs = services()
    for name in ("web", *stt_workers(svcs), "keywords"):
        deps = svcs[name]["depends_on"]
        for dep in ("postgres", "redis"):
            assert deps[dep]["condition"] == "service_healthy", f"{name} -> {dep}"
    # Workers start once web is healthy, i.e. after its migrations.
    for name in (*stt_workers(svcs), "keywords"):
        assert svcs[name]["depends_on"]["web"]["condition"] == "service_healthy"
    assert svcs["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_web_checks_liveness_not_platform_health():
    # /api/health is 503 until workers are up, and workers wait for web to be healthy:
    # using it here would deadlock the start. /api/config answers whenever web serves.
    web = services()["web"]
    check = " ".join(web["healthcheck"]["test"])
    assert "/api/config" in check and "/api/health" not in check
    assert web["command"] == ["web"]


def test_secrets_have_no_defaults():
    text = COMPOSE.read_text()
    for secret in SECRETS:
        uses = re.findall(r"\$\{" + secret + r"(:?[-?])", text)
        assert uses and all(op == ":?" for op in uses), f"{secret}: {uses}"


def test_app_services_share_one_image_and_data_volume():
    svcs = services()
    app = [*APP_SERVICES, *stt_workers(svcs)]
    assert len({svcs[name]["image"] for name in app}) == 1
    for name in app:
        assert svcs[name]["build"]["dockerfile"] == "Dockerfile"
        assert "app-data:/data" in svcs[name]["volumes"]
        assert svcs[name]["environment"]["DATA_DIR"] == "/data"
    assert (REPO_ROOT / svcs["web"]["build"]["context"] / "Dockerfile").is_file()


# --- Dockerfile, entrypoint, .dockerignore ------------------------------------------------


def test_dockerfile_entrypoint_and_cmd_reference_repo_files():
    workdir = dockerfile_values("WORKDIR")[-1]
    assert ("COPY", ". .") in dockerfile_instructions(), "the repository is copied to WORKDIR"
    (entrypoint,) = json.loads(dockerfile_values("ENTRYPOINT")[-1])
    assert entrypoint.startswith(workdir + "/")
    script = REPO_ROOT / entrypoint.removeprefix(workdir + "/")
    assert script == ENTRYPOINT and script.is_file()
    assert script.read_text().startswith("#!/bin/sh\n")
    assert json.loads(dockerfile_values("CMD")[-1]) == ["web"]
    assert '"${1:-web}" = "web"' in script.read_text(), "the entrypoint handles CMD's role"


@pytest.mark.slow  # starts a process
def test_entrypoint_is_valid_shell():
    if shutil.which("sh") is None:
        pytest.skip("no sh")
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)


def test_entrypoint_web_role_prepares_then_serves():
    text = ENTRYPOINT.read_text()
    steps = [
        text.index(s)
        for s in ("migrate", "ensure_admin", "collectstatic", "exec python -m sttproject.server")
    ]
    assert steps == sorted(steps)
    assert "-p 5000" in text
    assert "sttproject.asgi:application" in text
    assert (REPO_ROOT / "sttproject" / "asgi.py").is_file()
    assert (REPO_ROOT / "manage.py").is_file()
    assert list(REPO_ROOT.glob("*/management/commands/ensure_admin.py"))
    assert (REPO_ROOT / "sttproject" / "celery.py").is_file()  # `celery -A sttproject`


def test_dockerfile_installs_with_constraints_and_runs_unprivileged():
    runs = " ".join(dockerfile_values("RUN"))
    assert "pip install -c constraints.txt ." in runs
    assert "prepare_model" in runs
    for rest in dockerfile_values("COPY"):
        if "--from=" in rest:
            continue
        for source in shlex.split(rest)[:-1]:
            assert (REPO_ROOT / source).exists(), f"COPY source {source} is missing"
    user = dockerfile_values("USER")[-1]
    assert user.split(":")[0] not in ("root", "0")
    assert "5000" in dockerfile_values("EXPOSE")[-1].split()


def test_dockerfile_python_matches_the_project():
    args = dict(a.split("=", 1) for a in dockerfile_values("ARG") if "=" in a)
    images = [
        re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], f.split()[0])
        for f in dockerfile_values("FROM")
    ]
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]
    for image in images:
        version = re.match(r"python:(\d+\.\d+)", image)
        assert version, image
        assert SpecifierSet(requires).contains(version.group(1) + ".0"), image


def test_baked_whisper_model_is_the_image_default():
    runs = " ".join(dockerfile_values("RUN"))
    dest = re.search(r"prepare_model --dest (\S+)", runs).group(1)
    assert dockerfile_env()["WHISPER_MODEL"] == dest
    assert not dest.startswith(dockerfile_env()["DATA_DIR"]), "the data volume would hide it"


def test_dockerignore_keeps_what_the_image_needs_and_drops_secrets():
    for needed in (
        "manage.py",
        "pyproject.toml",
        "constraints.txt",
        "sttproject/asgi.py",
        "docker/entrypoint.sh",
        "templates/base.html",
        "static/css",
        "workers/queues.py",
    ):
        assert not dockerignored(needed), needed
    for dropped in (".env", ".git/config", ".venv/bin/python", "var/postgres", "x/__pycache__/y"):
        assert dockerignored(dropped), dropped


# --- compose.worker.yml: a GPU host that needs only URLs ------------------------------------

# What a GPU host is told about the central one; placeholders, only for validation.
WORKER_URLS = {
    "DATABASE_URL": "postgresql://stt:placeholder@10.0.0.5:5432/stt",
    "REDIS_URL": "redis://:placeholder@10.0.0.5:6379/0",
    "STORAGE_URL": "s3://key:secret@stt-audio?endpoint_url=http://10.0.0.5:9000",
    "WORKER_HOST": "gpu-2",
}


def worker_services() -> dict[str, dict]:
    return yaml.safe_load(WORKER_COMPOSE.read_text())["services"]


@pytest.mark.slow  # starts a process
def test_worker_compose_validates(tmp_path):
    result = docker_compose("config", "-q", env=WORKER_URLS, tmp_path=tmp_path, file=WORKER_COMPOSE)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize("variable", sorted(WORKER_URLS))
def test_worker_compose_refuses_to_run_without_each_url(tmp_path, variable):
    env = {k: v for k, v in WORKER_URLS.items() if k != variable}
    result = docker_compose("config", "-q", env=env, tmp_path=tmp_path, file=WORKER_COMPOSE)
    assert result.returncode != 0
    assert variable in result.stderr


@pytest.mark.slow  # starts a process
def test_worker_compose_renders_the_central_urls_and_the_host_name(tmp_path):
    result = docker_compose("config", env=WORKER_URLS, tmp_path=tmp_path, file=WORKER_COMPOSE)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    for name, svc in rendered["services"].items():
        env = svc["environment"]
        for variable, value in WORKER_URLS.items():
            assert env[variable] == value, (name, variable)
        # Celery's %h and the health check's $HOSTNAME: the host's name, in Flower and /status.
        assert svc["hostname"] == "gpu-2", name
    assert set(rendered["volumes"]) == {"worker-data"}


def test_a_gpu_host_runs_only_whisper_workers_and_shares_nothing():
    svcs = worker_services()
    main = services()
    assert svcs, "compose.worker.yml has no services"
    for name, svc in svcs.items():
        # The same workers as on the central host, by name, queues and node name.
        assert name in main, f"{name} is not a worker of compose.yml"
        assert _queue_of(svc["command"]) == _queue_of(main[name]["command"]), name
        assert _option(svc["command"], "-n") == f"{name}@%h"
        assert _option(svc["command"], "--concurrency") == "1"
        assert svc.get("cpu_shares") == main[name].get("cpu_shares"), name
        assert f"-d {name}@$$HOSTNAME" in " ".join(svc["healthcheck"]["test"])
        assert svc["restart"] == "unless-stopped"
        # Nothing of the central host: no service to wait for, no bind mount; the only port
        # is the worker's metrics, for the central Prometheus (loopback unless told).
        assert "depends_on" not in svc, name
        (port,) = svc["ports"]
        assert port.startswith("${METRICS_BIND_ADDRESS:-127.0.0.1}:") and port.endswith(":9560")
        assert svc["tmpfs"] == ["/run/metrics:mode=1777,size=64m"], name
        assert svc["volumes"] == ["worker-data:/data"], name
        env = svc["environment"]
        for variable in WORKER_URLS:
            assert env[variable].startswith("${" + variable + ":?"), (name, variable)
        assert env["DATA_DIR"] == "/data" and env["WHISPER_DEVICE"] == "cuda"
        assert env["PROMETHEUS_MULTIPROC_DIR"] == "/run/metrics"
        assert (env["METRICS_EXPORTER"], env["METRICS_PORT"]) == ("thread", "9560")
        assert env["CUDA_VISIBLE_DEVICES"] == "0"
        assert "@postgres:" not in env["DATABASE_URL"] and "redis://redis" not in env["REDIS_URL"]
    # Each GPU pinned once per kind of worker, each with its stt worker.
    stt = stt_workers(svcs)
    assert {"stt-gpu0", "stt-gpu1"} <= set(stt)
    for name, svc in svcs.items():
        (device,) = gpu_devices(svc)
        assert "count" not in device and len(device["device_ids"]) == 1, name
        index = name.rsplit("gpu", 1)[1]
        assert device["device_ids"] == [index], name
        assert f"stt-gpu{index}" in stt, f"{name} has no stt worker on its GPU"
    kinds = {_queue_of(svc["command"]) for svc in svcs.values()}
    assert kinds == {"stt_live,stt", "stt_live", "stt_partial"}


def test_each_gpu_host_worker_publishes_its_metrics_on_a_port_of_its_own():
    ports = [svc["ports"][0].rsplit(":", 2)[-2] for svc in worker_services().values()]
    assert len(ports) == len(set(ports)), ports


def test_the_central_hosts_workers_carry_its_name():
    # Not the container's id: /status, health and Flower list workers by host.
    svcs = services()
    for name, svc in svcs.items():
        if "worker" in svc.get("command", []):
            assert svc["hostname"] == "${WORKER_HOST:-central}", name


def test_the_central_host_passes_the_storage_url_and_a_redis_url_with_a_password():
    env = services()["web"]["environment"]
    assert env["STORAGE_URL"] == "${STORAGE_URL:-}"  # empty: the app-data volume
    assert env["REDIS_URL"] == "${REDIS_URL:-redis://redis:6379/0}"
    for name in stt_workers(services()):
        assert services()[name]["environment"]["STORAGE_URL"] == "${STORAGE_URL:-}"


# --- compose.yml: monitoring (profile "monitoring"; tests/test_monitoring.py reads its files) --

MONITORING = ("prometheus", "grafana")


def test_prometheus_and_grafana_start_only_under_the_monitoring_profile():
    svcs = services()
    for name, image in (("prometheus", "prom/prometheus:"), ("grafana", "grafana/grafana:")):
        svc = svcs[name]
        assert svc["profiles"] == ["monitoring"], name
        assert svc["image"].startswith(image), name  # the official images
        # Their UIs answer whoever reaches them: the host's loopback unless told otherwise.
        (port,) = svc["ports"]
        assert port.startswith("${" + f"{name.upper()}_BIND_ADDRESS:-127.0.0.1" + "}:"), port
        for volume in svc["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), source
    assert (
        "./docker/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in svcs["prometheus"]["volumes"]
    )
    assert svcs["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    # No other service needs them.
    for name, svc in svcs.items():
        if name not in MONITORING:
            assert not set(MONITORING) & set(svc.get("depends_on") or {}), name
    assert not set(MONITORING) & REQUIRED_SERVICES


def test_every_app_container_keeps_its_metrics_in_memory_and_serves_them():
    svcs = services()
    for name in (*APP_SERVICES, *stt_workers(svcs)):
        svc = svcs[name]
        env = svc["environment"]
        folder = env["PROMETHEUS_MULTIPROC_DIR"]
        # A tmpfs: empty at every start of the container, as the launcher empties its folder.
        assert any(mount.split(":")[0] == folder for mount in svc["tmpfs"]), name
        assert env["METRICS_EXPORTER"] == "thread" and env["METRICS_PORT"] == "9560", name
        # Reachable by Prometheus on the compose network, published nowhere.
        assert env["METRICS_HOST"] == "0.0.0.0", name
        assert 9560 not in published_targets(svc), name


@pytest.mark.slow  # starts a process
def test_the_monitoring_profile_validates_and_keeps_its_services_apart(tmp_path):
    # Profiles need docker-compose 1.28 or later (Debian's 1.29 here, or Compose v2).
    result = docker_compose(
        "--profile", "monitoring", "config", "-q", env=SECRETS, tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rendered = rendered_config(tmp_path)["services"]
    for name in MONITORING:
        assert rendered[name]["profiles"] == ["monitoring"], name
    assert str(rendered["prometheus"]["ports"][0]).startswith("127.0.0.1:9090:")
    assert rendered["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "admin"


@pytest.mark.slow  # starts a process
def test_the_central_host_overrides_in_the_docs_are_valid(tmp_path):
    """docs/production.md's compose.override.yml blocks (MinIO; PostgreSQL and Redis for GPU
    hosts, Redis with a password) merge with compose.yml into a valid file."""
    import textwrap

    text = (REPO_ROOT / "docs" / "production.md").read_text()
    blocks = [textwrap.dedent(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    overrides = [b for b in blocks if "minio:" in b or "--requirepass" in b]
    assert len(overrides) == 2, "docs/production.md: the MinIO and the GPU-host overrides"
    files = []
    for number, block in enumerate(overrides):
        files += ["-f", str(tmp_path / f"override{number}.yml")]
        (tmp_path / f"override{number}.yml").write_text(block)
    env = {
        **SECRETS,
        "PRIVATE_ADDRESS": "10.0.0.5",
        "REDIS_PASSWORD": "placeholder",
        "MINIO_ROOT_USER": "stt",
        "MINIO_ROOT_PASSWORD": "placeholder",
    }
    result = docker_compose(*files, "config", env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(result.stdout)["services"]
    assert "--requirepass" in merged["redis"]["command"]
    assert merged["redis"]["environment"]["REDISCLI_AUTH"] == "placeholder"
    assert all("10.0.0.5" in str(port) for port in merged["postgres"]["ports"])
    assert "minio" in merged
