"""compose.yml's TLS proxy, run for real: Caddy (Debian's) with docker/Caddyfile in front of
daphne, as the ``proxy`` service runs it, with a certificate of the operator's (the
``CADDY_TLS="<cert> <key>"`` mode). Pages, the API and the live WebSocket pass through it,
and the platform believes its X-Forwarded-Proto (TRUSTED_PROXIES): Secure cookies, a ``wss``
socket whose https origin is the site's own."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bench.common import free_port
from sttproject.tls import tls_files
from tests.conftest import REPO_ROOT, session_cookie_header
from tests.factories import make_user
from tests.servers import assert_live_socket_starts, running_web
from tests.tools import require_tool

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _run_caddy(tmp_path: Path, https_port: int, upstream: str, files) -> subprocess.Popen:
    caddy = require_tool("caddy")
    env = {
        "PATH": os.environ["PATH"],
        # Caddy keeps its state under these; not the machine's.
        "HOME": str(tmp_path / "caddy-home"),
        "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
        "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
        "SITE_ADDRESS": f"https://localhost:{https_port}",
        "CADDY_TLS": f"{files.cert} {files.key}",
        "CADDY_HTTP_PORT": str(free_port()),
        "CADDY_HTTPS_PORT": str(https_port),
        "WEB_UPSTREAM": upstream,
    }
    config = REPO_ROOT / "docker" / "Caddyfile"
    return subprocess.Popen(
        [caddy, "run", "--config", str(config), "--adapter", "caddyfile"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_the_compose_proxy_serves_the_platform_over_https(tmp_path):
    files = tls_files(tmp_path / "tls", {})
    context = ssl.create_default_context(cafile=str(files.ca))
    user = make_user("behind-proxy")
    name, value = (part.decode() for part in session_cookie_header(user))
    port = free_port()
    with running_web({"TRUSTED_PROXIES": "127.0.0.1,::1", "HTTPS_PORT": "0"}) as url:
        caddy = _run_caddy(tmp_path, port, url.removeprefix("http://"), files)
        try:
            site = f"https://localhost:{port}"
            deadline = time.monotonic() + 30
            while True:
                assert caddy.poll() is None, caddy.stdout.read()
                try:
                    config = httpx.get(site + "/api/config", verify=context, timeout=5)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            assert config.status_code == 200 and config.json()["device"]

            # The platform knows the browser used https: its cookies are Secure.
            login = httpx.get(site + "/accounts/login/", verify=context, timeout=10)
            assert login.status_code == 200
            assert "Secure" in login.headers["set-cookie"], login.headers["set-cookie"]

            # The live socket through the proxy, opened by the site's https page.
            assert_live_socket_starts(
                f"wss://localhost:{port}/ws", context, {name: value, "Origin": site}
            )
        finally:
            caddy.terminate()
            caddy.wait(timeout=10)
