"""Cross-site WebSocket hijacking: a page on another site opens /ws with the user's cookie.

Browsers send cookies with a WebSocket handshake whatever page opens it; only the Origin
header tells our page from evil.example's. Reproduced on a running instance: with
``Origin: http://evil.example`` the socket answered ``ready`` and replayed the user's finals.
"""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from sttproject.asgi import application
from sttproject.origins import origin_allowed
from tests.conftest import session_cookie_header

pytestmark = pytest.mark.django_db(transaction=True)


async def _opens(headers: list[tuple[bytes, bytes]], path: str = "/ws") -> bool:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    # A refused socket's consumer still waits for the disconnect; leave nothing running.
    await communicator.disconnect()
    return connected


@pytest.fixture
def cookie(transactional_db):
    from tests.factories import make_user

    return session_cookie_header(make_user("speaker"))


async def test_a_page_on_another_site_cannot_open_the_socket_with_the_users_cookie(cookie):
    headers = [(b"host", b"stt.example.org:5000"), (b"origin", b"http://evil.example"), cookie]
    assert not await _opens(headers)


async def test_the_sites_own_page_opens_it(cookie):
    headers = [(b"host", b"stt.example.org:5000"), (b"origin", b"http://stt.example.org:5000")]
    assert await _opens([*headers, cookie])


async def test_own_host_means_same_port_and_scheme(cookie):
    host = (b"host", b"stt.example.org:5000")
    assert not await _opens([host, (b"origin", b"http://stt.example.org:8080"), cookie])
    assert not await _opens([host, (b"origin", b"https://stt.example.org:5000"), cookie])
    assert not await _opens([host, (b"origin", b"http://evil.stt.example.org:5000"), cookie])


async def test_an_origin_in_csrf_trusted_origins_opens_it(cookie, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://stt.example.org"]
    headers = [(b"host", b"10.0.0.5:5000"), (b"origin", b"https://stt.example.org"), cookie]
    assert await _opens(headers)


async def test_a_host_outside_allowed_hosts_is_not_its_own_origin(cookie, settings):
    # DNS rebinding: evil.example pointed at the server sends Host: evil.example.
    settings.ALLOWED_HOSTS = ["stt.example.org"]
    headers = [(b"host", b"evil.example:5000"), (b"origin", b"http://evil.example:5000"), cookie]
    assert not await _opens(headers)


async def test_programs_without_an_origin_go_on_to_authentication(cookie):
    assert await _opens([(b"host", b"stt.example.org:5000"), cookie])


def test_origin_rules():
    trusted = ["http://localhost:5000", "https://*.example.com"]
    assert origin_allowed("http://localhost:5000", trusted)
    assert origin_allowed("HTTP://LOCALHOST:5000", trusted)
    assert not origin_allowed("http://localhost", trusted)
    assert origin_allowed("https://stt.example.com", trusted)
    assert origin_allowed("https://example.com:443", trusted)
    assert not origin_allowed("http://stt.example.com", trusted)
    assert not origin_allowed("https://example.com.evil", trusted)
    assert not origin_allowed("null", trusted)
    assert not origin_allowed("http://localhost:99999", trusted)
    assert origin_allowed(None, trusted)
