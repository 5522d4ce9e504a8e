"""POST /api/ws-ticket/ and the tickets it hands out (transcription/web/tickets.py): one
handshake each, within 60 s, as their user; what /ws does with them is in test_ws_auth.py.

The attacks these guard against: a ticket used twice (two handshakes racing with it), or
after it expired; a ticket readable from what Redis holds; a foreign page minting one with
the user's cookie (CSRF).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from transcription.web import tickets

pytestmark = pytest.mark.django_db(transaction=True)


class Person:
    def __init__(self, name: str) -> None:
        from tests.factories import make_user

        self.user = make_user(name)
        self.token = Token.objects.create(user=self.user).key

    def header(self, scheme: str = "Token") -> tuple[bytes, bytes]:
        return b"authorization", f"{scheme} {self.token}".encode()


@pytest.fixture
def alice(transactional_db) -> Person:
    return Person("alice")


def ticket_for(person: Person, **kwargs) -> str:
    return tickets.issue(person.user, **kwargs)


def test_of_racing_handshakes_one_redeems_the_ticket(alice):
    ticket = ticket_for(alice)
    results: list = []
    barrier = threading.Barrier(8)

    def redeem() -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(tickets.redeem(ticket))
        finally:
            connection.close()  # else the test database cannot be dropped

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.username for r in results if r is not None] == ["alice"]


def test_a_ticket_is_stored_only_as_its_hash(alice, settings):
    import redis

    ticket = ticket_for(alice)
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = [k.decode() for k in client.scan_iter(match="*ws-ticket*")]
    assert len(keys) == 1 and ticket not in keys[0]
    assert 55 <= client.ttl(keys[0]) <= 60


# --- POST /api/ws-ticket/ ---------------------------------------------------------------------


def test_the_ticket_endpoint_answers_a_token(alice):
    response = Client().post(
        "/api/ws-ticket/", HTTP_AUTHORIZATION=f"Token {alice.token}", HTTP_HOST="stt.example"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["expires_in"] == 60
    assert body["url"] == f"ws://stt.example/ws?ticket={body['ticket']}"
    assert response["Cache-Control"] == "no-store"
    assert tickets.redeem(body["ticket"]) == alice.user


def test_the_ticket_endpoint_over_https_gives_a_wss_url(alice):
    response = Client().post(
        "/api/ws-ticket/", HTTP_AUTHORIZATION=f"Bearer {alice.token}", secure=True
    )
    assert response.json()["url"].startswith("wss://testserver/ws?ticket=")


def test_the_ticket_endpoint_wants_the_csrf_token_with_a_cookie(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice.user)
    assert browser.post("/api/ws-ticket/").status_code == 403
    browser.get("/account/")  # sets the CSRF cookie, as the page does
    csrf = browser.cookies["csrftoken"].value
    response = browser.post("/api/ws-ticket/", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 201, response.content


def test_the_ticket_endpoint_refuses_strangers(alice):
    assert Client().post("/api/ws-ticket/").status_code == 401
    assert Client().post("/api/ws-ticket/", HTTP_AUTHORIZATION="Token nope").status_code == 401
    only_post = Client().get("/api/ws-ticket/", HTTP_AUTHORIZATION=f"Token {alice.token}")
    assert only_post.status_code == 405


def test_the_schema_documents_the_ticket_endpoint(alice):
    response = Client().get(
        "/api/schema/",
        HTTP_AUTHORIZATION=f"Token {alice.token}",
        HTTP_ACCEPT="application/vnd.oai.openapi+json",
    )
    operation = response.json()["paths"]["/api/ws-ticket/"]["post"]
    assert "201" in operation["responses"]
    assert "ticket" in json.dumps(operation)


def test_tickets_expire_on_their_own(alice):
    ticket = ticket_for(alice, ttl_s=1)
    time.sleep(1.5)
    assert tickets.redeem(ticket) is None
