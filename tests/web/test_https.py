"""HTTPS beside HTTP: the certificate the first start makes, the daphne TLS endpoint, cookies
marked Secure over HTTPS, the authority offered for colleagues to trust."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import time

import httpx
import psutil
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.core.exceptions import ImproperlyConfigured
from twisted.internet import endpoints

from sttproject import tls
from tests.factories import PASSWORD, make_user
from workers.launch import procfile_lines


def _load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _alternatives(path) -> tuple[set[str], set[str]]:
    names = _load(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        set(names.get_values_for_type(x509.DNSName)),
        {str(a) for a in names.get_values_for_type(x509.IPAddress)},
    )


# --- the certificate ------------------------------------------------------------------------


def test_first_start_makes_an_authority_and_a_certificate_for_every_name(tmp_path):
    files = tls.tls_files(tmp_path, {"TLS_HOSTS": "stt.lan, 10.9.8.7"})
    names, addresses = _alternatives(files.cert)
    host = socket.gethostname().lower()
    assert {"localhost", host, f"{host.split('.')[0]}.local", "stt.lan"} <= names
    interfaces = {
        entry.address
        for entries in psutil.net_if_addrs().values()
        for entry in entries
        if entry.family == socket.AF_INET
    }
    assert interfaces and interfaces <= addresses, (interfaces, addresses)
    assert {"127.0.0.1", "::1", "10.9.8.7"} <= addresses

    authority, server = _load(files.ca), _load(files.cert)
    server.verify_directly_issued_by(authority)
    assert authority.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = server.not_valid_after_utc - server.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=398)  # what phones accept
    # The keys are this user's only, and so is the folder.
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
    for key in (tmp_path / "tls" / "ca.key", files.key):
        assert key.stat().st_mode & 0o777 == 0o600, key
    # The fingerprint printed for colleagues to compare is the authority's.
    assert files.ca_fingerprint == authority.fingerprint(hashes.SHA256()).hex(":").upper()


def test_the_authority_stays_and_the_certificate_follows_new_names(tmp_path, monkeypatch):
    first = tls.tls_files(tmp_path, {})
    authority, server = first.ca.read_bytes(), first.cert.read_bytes()
    again = tls.tls_files(tmp_path, {})
    assert (again.ca.read_bytes(), again.cert.read_bytes()) == (authority, server)

    # A new name (a DNS name colleagues use): a new server certificate, same authority.
    renamed = tls.tls_files(tmp_path, {"TLS_HOSTS": "stt.example.lan"})
    assert renamed.ca.read_bytes() == authority
    second = renamed.cert.read_bytes()
    assert second != server
    assert "stt.example.lan" in _alternatives(renamed.cert)[0]
    _load(renamed.cert).verify_directly_issued_by(_load(renamed.ca))

    # Close to its end, the certificate is made again at the next start.
    monkeypatch.setattr(tls, "RENEW_BEFORE", datetime.timedelta(days=400))
    renewed = tls.tls_files(tmp_path, {"TLS_HOSTS": "stt.example.lan"})
    assert renewed.cert.read_bytes() != second
    assert renewed.ca.read_bytes() == authority


def test_a_certificate_not_signed_by_the_authority_is_replaced(tmp_path):
    other = tls.tls_files(tmp_path / "other", {})
    mine = tls.tls_files(tmp_path / "mine", {})
    mine.cert.write_bytes(other.cert.read_bytes())
    mine.key.write_bytes(other.key.read_bytes())
    fixed = tls.tls_files(tmp_path / "mine", {})
    _load(fixed.cert).verify_directly_issued_by(_load(fixed.ca))


def test_the_operators_certificate_is_used_as_given(tmp_path):
    made = tls.tls_files(tmp_path / "made", {"TLS_HOSTS": "stt.example.com"})
    env = {"TLS_CERT_FILE": str(made.cert), "TLS_KEY_FILE": str(made.key)}
    given = tls.tls_files(tmp_path / "data", env)
    assert (given.cert, given.key, given.ca) == (made.cert, made.key, None)
    assert "stt.example.com" in given.names
    assert not (tmp_path / "data" / "tls").exists()  # nothing made

    other = tls.tls_files(tmp_path / "other", {})
    with pytest.raises(ImproperlyConfigured, match="is not the key of"):
        tls.tls_files(tmp_path, {**env, "TLS_KEY_FILE": str(other.key)})
    with pytest.raises(ImproperlyConfigured, match="set both"):
        tls.tls_files(tmp_path, {"TLS_CERT_FILE": str(made.cert)})
    with pytest.raises(ImproperlyConfigured, match="TLS_CERT_FILE"):
        tls.tls_files(tmp_path, {**env, "TLS_CERT_FILE": str(tmp_path / "missing.pem")})
    with pytest.raises(ImproperlyConfigured, match="TLS_HOSTS"):
        tls.tls_files(tmp_path, {"TLS_HOSTS": "not a host"})


# --- the launcher ---------------------------------------------------------------------------


def _web_line(tmp_path, **env) -> str:
    environ = {"DATA_DIR": str(tmp_path), "STT_GPUS": "none", **env}
    return next(line for line in procfile_lines("python", environ) if line.startswith("web:"))


def test_the_web_process_serves_https_on_5443_by_default(tmp_path):
    line = _web_line(tmp_path)
    assert "-p 5000" in line and "ssl:port=5443:interface=0.0.0.0" in line
    assert str(tmp_path / "tls" / "server.crt") in line
    assert "ssl:" not in _web_line(tmp_path, HTTPS_PORT="0")
    with pytest.raises(ImproperlyConfigured, match="HTTPS_PORT"):
        _web_line(tmp_path, HTTPS_PORT="5000")
    with pytest.raises(ImproperlyConfigured, match="HTTPS_PORT"):
        _web_line(tmp_path, HTTPS_PORT="70000")


def test_the_endpoint_survives_odd_paths(tmp_path):
    """Twisted parses the endpoint string: a colon or equals sign in a path must not split
    it (a data folder on a mounted volume may be named anything)."""
    folder = tmp_path / "a:b=c"
    files = tls.tls_files(folder, {})
    description = tls.endpoint("::", 8443, files)
    args, kwargs = endpoints._parse(description)
    assert args == ["ssl"]
    assert kwargs == {
        "port": "8443",
        "interface": "::",
        "privateKey": str(files.key),
        "certKey": str(files.cert),
        "extraCertChain": str(files.ca),
    }
    endpoints._parseServer(description, None)  # and Twisted reads the files it names


def test_the_start_prints_https_addresses_for_colleagues(tmp_path):
    from workers.launch import addresses_banner

    text = addresses_banner({"DATA_DIR": str(tmp_path), "TLS_HOSTS": "stt.lan"})
    assert "https://stt.lan:5443/" in text
    assert "/tls/ca.crt" in text and tls.tls_files(tmp_path, {}).ca_fingerprint in text
    assert "https://localhost" not in text  # no use to a colleague
    assert "HTTPS is off" in addresses_banner({"DATA_DIR": str(tmp_path), "HTTPS_PORT": "0"})


# --- the web side ---------------------------------------------------------------------------


def test_the_authority_is_offered_to_install(client, settings, tmp_path, monkeypatch, db):
    settings.TLS_DIR = tmp_path / "tls"
    assert client.get("/tls/ca.crt").status_code == 404  # nothing made yet
    files = tls.tls_files(tmp_path, {})
    response = client.get("/tls/ca.crt")  # anonymous: before anyone can sign in
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-x509-ca-cert"
    assert response.content == files.ca.read_bytes()
    assert b"PRIVATE" not in response.content
    settings.HTTPS_PORT = 0
    assert client.get("/tls/ca.crt").status_code == 404
    settings.HTTPS_PORT = 5443
    monkeypatch.setenv("TLS_CERT_FILE", str(files.cert))
    assert client.get("/tls/ca.crt").status_code == 404  # the operator's own certificate


def test_cookies_set_over_https_are_secure(client, db):
    user = make_user("alice")
    page = client.get("/accounts/login/", secure=True)
    assert page.cookies["csrftoken"]["secure"] is True
    response = client.post(
        "/accounts/login/",
        {"username": user.username, "password": PASSWORD},
        secure=True,
        headers={"Origin": "https://testserver"},
    )
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"] is True

    plain = client.get("/accounts/login/")
    assert not plain.cookies["csrftoken"]["secure"]


def test_hsts_only_when_asked_for(client, settings, db):
    from django.test import Client

    assert "Strict-Transport-Security" not in client.get("/api/config", secure=True)
    settings.SECURE_HSTS_SECONDS = 3600
    # The security middleware reads its settings when a client's handler is built.
    answer = Client().get("/api/config", secure=True)
    assert answer["Strict-Transport-Security"] == "max-age=3600"


# --- the real server ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_https_serves_the_pages_the_api_and_the_socket(tmp_path):
    from tests.conftest import session_cookie_header
    from tests.servers import assert_live_socket_starts, running_web_https

    user = make_user("speaker")
    cookie = session_cookie_header(user)
    with running_web_https(tmp_path / "data") as web:
        context = ssl.create_default_context(cafile=str(web.files.ca))
        https = web.https("localhost")
        config = httpx.get(https + "/api/config", verify=context, timeout=10)
        assert config.status_code == 200 and config.json()["device"]
        page = httpx.get(https + "/accounts/login/", verify=context, timeout=10)
        assert page.status_code == 200 and "Secure" in page.headers["set-cookie"]
        # The same page over plain HTTP beside it.
        assert httpx.get(web.http + "/accounts/login/", timeout=10).status_code == 200

        # The live socket over wss, from the site's own https page (its origin).
        assert_live_socket_starts(
            https.replace("https://", "wss://") + "/ws",
            context,
            {cookie[0].decode(): cookie[1].decode(), "Origin": https},
        )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_huge_anonymous_body_over_https_is_refused_before_it_is_read(tmp_path):
    """The body gate (sttproject/server.py) works on the TLS endpoint too."""
    from tests.servers import running_web_https

    with running_web_https(tmp_path / "data") as web:
        context = ssl.create_default_context(cafile=str(web.files.ca))
        with (
            socket.create_connection(("127.0.0.1", web.https_port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            sock.sendall(
                b"POST /api/transcripts/ HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/octet-stream\r\n"
                + f"Content-Length: {500 * 1024 * 1024}\r\n\r\n".encode()
            )
            sock.sendall(os.urandom(64 * 1024))
            started = time.monotonic()
            answer = sock.recv(4096).decode("latin1")
        assert answer.split()[1] in ("401", "413"), answer
        assert time.monotonic() - started < 5
