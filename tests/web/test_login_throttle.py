"""The sign-in throttle (issue 12, item 7): 200 wrong passwords in 88 s were all answered
normally and the right one still worked. Now the eleventh wrong password within the window is
refused, and so is the right one until the window has passed; per account and per address,
on the sign-in page and the admin's. Attempts are counted in the test's real PostgreSQL."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture
def client() -> Client:
    # The answers' wording is checked in English; a browser without a choice gets Korean.
    return Client(headers={"Accept-Language": "en"})


def sign_in(client: Client, username: str, password: str, address: str = "192.0.2.10"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(response) -> bool:
    return response.status_code == 302 and response.wsgi_request.user.is_authenticated


def test_the_eleventh_wrong_password_is_throttled_and_then_the_right_one_too(client):
    make_user("owner")
    for attempt in range(10):
        response = sign_in(client, "owner", f"wrong-{attempt}")
        assert response.status_code == 200, attempt
        assert "did not match" in response.content.decode()
    eleventh = sign_in(client, "owner", "wrong-10")
    assert eleventh.status_code == 429
    page = eleventh.content.decode()
    assert "Too many failed sign-ins" in page and "even with the right password" in page
    assert "15 minutes" in page
    assert eleventh["Retry-After"] == "900"

    right = sign_in(client, "owner", PASSWORD)
    assert right.status_code == 429 and not signed_in(right)
    assert "Too many failed sign-ins" in right.content.decode()


def test_the_lockout_ends_when_the_window_has_passed(client, settings):
    settings.LOGIN_MAX_FAILURES = 3
    settings.LOGIN_LOCKOUT_S = 2
    make_user("owner")
    for attempt in range(3):
        assert sign_in(client, "owner", f"wrong-{attempt}").status_code == 200
    locked = sign_in(client, "owner", "wrong-3")
    assert locked.status_code == 429 and "2 seconds" in locked.content.decode()
    assert sign_in(client, "owner", PASSWORD).status_code == 429
    time.sleep(2.2)
    assert signed_in(sign_in(client, "owner", PASSWORD))


def test_a_successful_sign_in_before_the_limit_clears_the_count(client):
    make_user("owner")
    for attempt in range(9):
        assert sign_in(client, "owner", f"wrong-{attempt}").status_code == 200
    assert signed_in(sign_in(client, "owner", PASSWORD))
    client.logout()
    for attempt in range(10):
        assert sign_in(client, "owner", f"again-{attempt}").status_code == 200, attempt
    assert sign_in(client, "owner", "again-10").status_code == 429


def test_one_account_from_many_addresses_is_throttled(client):
    make_user("owner")
    for attempt in range(10):
        response = sign_in(client, "owner", "wrong", address=f"198.51.100.{attempt + 1}")
        assert response.status_code == 200
    assert sign_in(client, "owner", "wrong", address="198.51.100.77").status_code == 429
    # The account, not the address: another account from a fresh address still signs in.
    make_user("other")
    assert signed_in(sign_in(Client(), "other", PASSWORD, address="198.51.100.78"))


def test_one_address_trying_many_accounts_is_throttled(client):
    make_user("owner")
    for attempt in range(10):
        assert sign_in(client, f"guess-{attempt}", "wrong").status_code == 200
    assert sign_in(client, "guess-10", "wrong").status_code == 429
    # The right password of a real account from that address is refused too...
    assert sign_in(Client(), "owner", PASSWORD).status_code == 429
    # ...while the same account from another address signs in.
    assert signed_in(sign_in(Client(), "owner", PASSWORD, address="192.0.2.99"))


def test_the_admin_sign_in_is_throttled_too(client):
    make_user("staff", staff=True)
    url = "/admin/login/?next=/admin/"
    for attempt in range(10):
        response = client.post(url, {"username": "staff", "password": f"wrong-{attempt}"})
        assert response.status_code == 200, attempt
    locked = client.post(url, {"username": "staff", "password": "wrong-10"})
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    right = client.post(url, {"username": "staff", "password": PASSWORD})
    assert right.status_code == 429
    assert not right.wsgi_request.user.is_authenticated
