"""Accounts and safety: login, API tokens on the account page, the create_user command,
CSRF on forms and the per-user upload rate limit."""

from __future__ import annotations

import io
import re
import uuid

import httpx
import openai
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from tests.factories import PASSWORD, make_user
from tests.servers import running_web
from transcription.models import Transcript

KO_CLIP = "ko_picovoice_leopard_test_ko"  # 3.9 s


def csrf_client() -> Client:
    # The test client skips CSRF checks unless asked; browsers get no such pass.
    return Client(enforce_csrf_checks=True)


@pytest.mark.django_db
def test_login_page_signs_in(client, owner):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    response = client.post("/accounts/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    wrong = client.post("/accounts/login/", {"username": "owner", "password": "nope"})
    assert "did not match" in wrong.content.decode()


@pytest.mark.django_db
def test_pages_send_anonymous_users_to_the_login(client):
    for url in ["/", "/upload/", "/status/", "/account/", f"/transcripts/{uuid.uuid4()}/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


@pytest.mark.django_db
def test_health_config_and_the_api_stay_reachable_without_a_login(client):
    assert client.get("/api/health").status_code in (200, 503)
    config = client.get("/api/config")
    assert config.status_code == 200 and "status" in config.json()
    # The API answers 401/403 itself instead of redirecting to a login page.
    assert client.get("/api/transcripts/").status_code in (401, 403)
    assert client.get("/v1/models").status_code == 401


@pytest.mark.django_db
def test_account_page_shows_a_token_made_on_the_first_visit(owner_client, owner):
    assert not Token.objects.filter(user=owner).exists()
    page = owner_client.get("/account/")
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"] or "no-cache" in page["Cache-Control"]
    key = Token.objects.get(user=owner).key
    html = page.content.decode()
    assert key in html
    assert 'OpenAI(base_url="http://testserver/v1"' in html
    assert "http://testserver/api/transcripts/" in html
    assert 'href="/account/"' in html  # the nav link
    # The same token on a later visit.
    assert owner_client.get("/account/").content.decode().count(key) >= 1
    assert Token.objects.filter(user=owner).count() == 1


@pytest.mark.django_db
def test_rotating_the_token_ends_the_old_one(owner):
    browser = csrf_client()
    browser.force_login(owner)
    browser.get("/account/")
    old = Token.objects.get(user=owner).key
    api = Client()
    assert api.get("/api/transcripts/", HTTP_AUTHORIZATION=f"Token {old}").status_code == 200

    csrf = browser.cookies["csrftoken"].value
    response = browser.post("/account/", {"csrfmiddlewaretoken": csrf, "action": "rotate"})
    assert response.status_code == 302 and response["Location"] == "/account/"
    new = Token.objects.get(user=owner).key
    assert new != old
    assert "old one no longer works" in browser.get("/account/").content.decode()

    # 403 rather than 401: DRF takes the challenge from the first authenticator (sessions).
    assert api.get("/api/transcripts/", HTTP_AUTHORIZATION=f"Token {old}").status_code in (
        401,
        403,
    )
    assert api.get("/api/transcripts/", HTTP_AUTHORIZATION=f"Token {new}").status_code == 200
    assert api.get("/api/transcripts/", HTTP_AUTHORIZATION=f"Bearer {new}").status_code == 200


@pytest.mark.django_db
def test_forms_without_the_csrf_token_are_refused(owner):
    browser = csrf_client()
    browser.force_login(owner)
    browser.get("/account/")
    key = Token.objects.get(user=owner).key
    assert browser.post("/account/", {"action": "rotate"}).status_code == 403
    assert Token.objects.get(user=owner).key == key
    anonymous = csrf_client()
    response = anonymous.post("/accounts/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 403
    # A signed-in browser cannot upload through the REST API without the token either.
    with io.BytesIO(b"RIFF") as handle:
        assert browser.post("/api/transcripts/", {"file": handle}).status_code == 403


@pytest.mark.django_db
def test_create_user_command_prints_a_working_token():
    out = io.StringIO()
    call_command("create_user", "alice", "--staff", "--password", "s3cret-pass", stdout=out)
    user = get_user_model().objects.get(username="alice")
    assert user.is_staff and user.is_superuser
    assert user.check_password("s3cret-pass")
    key = re.search(r"API token: (\w+)", out.getvalue()).group(1)
    assert Token.objects.get(user=user).key == key
    assert Client().get("/api/transcripts/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200

    out = io.StringIO()
    call_command("create_user", "bob", stdout=out)
    bob = get_user_model().objects.get(username="bob")
    assert not bob.is_staff
    password = re.search(r"Password \(shown only this once\): (\S+)", out.getvalue()).group(1)
    assert bob.check_password(password)
    # Through the sign-in page: the throttle (django-axes) checks only requests, and
    # Client.login() authenticates without one.
    signed_in = Client().post("/accounts/login/", {"username": "bob", "password": password})
    assert signed_in.status_code == 302 and signed_in.wsgi_request.user.is_authenticated

    with pytest.raises(CommandError, match="already exists"):
        call_command("create_user", "bob", stdout=io.StringIO())


@pytest.fixture
def two_uploads_an_hour(settings, monkeypatch):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "uploads": "2/hour"}
    # Changing the setting reloads DRF's api_settings (its setting_changed hook)...
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    assert api_settings.DEFAULT_THROTTLE_RATES["uploads"] == "2/hour"
    # ...but SimpleRateThrottle copied the rates into a class attribute at import time.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    yield
    # pytest-django restores REST_FRAMEWORK, which reloads api_settings again.


@pytest.mark.django_db
def test_uploads_are_rate_limited_per_user(two_uploads_an_hour, cast, eval_clip):
    path, _ = eval_clip(KO_CLIP)

    def upload(user) -> object:
        client = Client()
        client.force_login(user)
        with open(path, "rb") as handle:
            return client.post("/api/transcripts/", {"file": handle, "language": "ko"})

    assert upload(cast.owner).status_code == 202
    assert upload(cast.owner).status_code == 202
    third = upload(cast.owner)
    assert third.status_code == 429
    wait = int(third["Retry-After"])
    assert 3500 <= wait <= 3600
    # DRF's message, in the site language (ko): "요청이 제한되었습니다. 3600 초 후에 사용 가능합니다."
    assert str(wait) in third.json()["detail"]
    assert Transcript.objects.filter(owner=cast.owner).count() == 2
    # The limit is per user: someone else still may upload.
    assert upload(cast.other).status_code == 202
    # Reading is never limited.
    reader = Client()
    reader.force_login(cast.owner)
    assert reader.get("/api/transcripts/").status_code == 200


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_rest_and_openai_uploads_share_one_limit_across_processes(eval_clip):
    user = make_user("limited")
    key = Token.objects.create(user=user).key
    path, _ = eval_clip(KO_CLIP)
    # The real setting, read by a real server; the counters are in the Redis cache.
    env = {"UPLOAD_RATE_LIMIT": "2/hour", "OPENAI_API_TIMEOUT_S": "1"}
    with running_web(extra_env=env) as url:

        def rest_upload() -> httpx.Response:
            with open(path, "rb") as handle:
                return httpx.post(
                    url + "/api/transcripts/",
                    headers={"Authorization": f"Token {key}"},
                    files={"file": (path.name, handle)},
                    timeout=60,
                )

        assert rest_upload().status_code == 202
        assert rest_upload().status_code == 202
        assert rest_upload().status_code == 429
        client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.RateLimitError) as caught, open(path, "rb") as audio:
            client.audio.transcriptions.create(model="whisper-1", file=audio)
        error = caught.value
        assert error.code == "rate_limit_exceeded"
        assert "2 per hour" in error.message and "Try again in" in error.message
        assert int(error.response.headers["Retry-After"]) > 3000
    assert Transcript.objects.filter(owner=user).count() == 2
