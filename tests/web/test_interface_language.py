"""The interface in Korean and in English (issue 15): Korean unless the browser asks for
English or the header's switch chose it; the choice is remembered (a cookie), before sign-in
too; <html lang> follows; the admin, the pages' scripts and the API's error messages go the
same way, while the API's machine fields stay as they are."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.browser import chromium, sign_in
from tests.conftest import REPO_ROOT
from tests.factories import PASSWORD, make_transcript, make_user
from tests.servers import running_web

EN = {"Accept-Language": "en"}


def html_lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', page)
    assert found, page[:300]
    return found.group(1)


@pytest.mark.django_db
def test_korean_by_default_english_when_the_browser_asks(cast):
    login = Client().get("/accounts/login/").content.decode()
    assert html_lang(login) == "ko"
    assert "<h1>로그인</h1>" in login and "아이디" in login and "비밀번호" in login
    english = Client().get("/accounts/login/", headers=EN).content.decode()
    assert html_lang(english) == "en"
    assert "<h1>Sign in</h1>" in english and "Username" in english

    client = Client()
    client.force_login(cast.owner)
    make_transcript(cast.owner, title="회의")
    history = client.get("/history/").content.decode()
    assert html_lang(history) == "ko"
    for korean in (">실시간<", ">업로드<", ">기록<", ">계정<", ">로그아웃<", "기록 1건", "최신순"):
        assert korean in history, korean
    history = client.get("/history/", headers=EN).content.decode()
    assert html_lang(history) == "en"
    for english in (">Live<", ">Upload<", ">History<", ">Account<", ">Sign out<", "1 transcript"):
        assert english in history, english
    # A browser that prefers a language the platform lacks, then English, gets English.
    assert (
        html_lang(
            client.get("/history/", headers={"Accept-Language": "fr, en;q=0.8"}).content.decode()
        )
        == "en"
    )


@pytest.mark.django_db
def test_the_switch_is_remembered_before_and_after_sign_in(cast):
    client = Client(enforce_csrf_checks=True)
    login = client.get("/accounts/login/").content.decode()
    # The header's switch: a form to set_language, back to this page, one button each.
    assert 'action="/i18n/setlang/"' in login
    assert '<input type="hidden" name="next" value="/accounts/login/">' in login
    assert 'value="ko" lang="ko" aria-pressed="true">한국어</button>' in login
    assert 'value="en" lang="en" aria-pressed="false">English</button>' in login

    token = client.cookies["csrftoken"].value
    switched = client.post(
        "/i18n/setlang/",
        {"language": "en", "next": "/accounts/login/", "csrfmiddlewaretoken": token},
    )
    assert switched.status_code == 302 and switched["Location"] == "/accounts/login/"
    assert client.cookies["django_language"].value == "en"
    assert int(client.cookies["django_language"]["max-age"]) >= 300 * 24 * 3600
    page = client.get("/accounts/login/").content.decode()
    assert html_lang(page) == "en" and "<h1>Sign in</h1>" in page
    assert 'value="en" lang="en" aria-pressed="true">English</button>' in page

    # Signing in keeps it; the remembered choice wins over the browser's Korean.
    client.force_login(cast.owner)
    korean_browser = {"Accept-Language": "ko-KR,ko;q=0.9"}
    assert html_lang(client.get("/", headers=korean_browser).content.decode()) == "en"
    assert ">History<" in client.get("/upload/").content.decode()

    # And back to Korean from any page.
    token = client.cookies["csrftoken"].value
    client.post(
        "/i18n/setlang/", {"language": "ko", "next": "/upload/", "csrfmiddlewaretoken": token}
    )
    upload = client.get("/upload/", headers=EN).content.decode()
    assert html_lang(upload) == "ko" and "녹음 파일 업로드" in upload


@pytest.mark.django_db
def test_a_switch_to_elsewhere_stays_on_this_site(cast):
    client = Client()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.django_db
def test_the_admin_follows_the_same_choice(cast):
    client = Client()
    client.force_login(cast.staff)
    korean = client.get("/admin/").content.decode()
    assert html_lang(korean) == "ko"
    assert "음성 인식 플랫폼 관리" in korean and "사이트 관리" in korean
    client.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    english = client.get("/admin/").content.decode()
    assert html_lang(english) == "en"
    assert "Speech platform administration" in english and "Site administration" in english
    make_transcript(cast.owner)  # the admin offers actions only over a non-empty list
    actions = client.get("/admin/transcription/transcript/").content.decode()
    assert "Re-run keyword extraction" in actions


@pytest.mark.django_db
def test_the_scripts_strings_come_in_the_pages_language(cast):
    def escaped(text: str) -> str:
        return json.dumps(text)[1:-1]  # as the catalogue writes it (ASCII JSON)

    korean = Client().get("/jsi18n/").content.decode()
    # The live page's connection states and the upload page's messages.
    for text in (
        "대기 중",
        "연결됨",
        "업로드가 중단되었습니다",
        "마이크를 쓰려면 HTTPS가 필요합니다",
    ):
        assert escaped(text) in korean, text
    english = Client().get("/jsi18n/", headers=EN).content.decode()
    assert escaped("대기 중") not in english
    # Loaded by every page, before the page's own scripts.
    client = Client()
    client.force_login(cast.owner)
    live = client.get("/").content.decode()
    assert live.index('<script src="/jsi18n/">') < live.index("js/live.js")


@pytest.mark.django_db
def test_api_errors_in_korean_by_default_and_english_when_asked(cast):
    client = Client()
    client.force_login(cast.owner)
    korean = client.post("/api/transcripts/", {})
    assert korean.status_code == 400
    assert "파일이 없습니다" in korean.json()["error"]
    english = client.post("/api/transcripts/", {}, headers=EN)
    assert english.status_code == 400
    assert english.json()["error"].startswith("no file: send the recording")

    # The OpenAI-compatible endpoint: OpenAI's shape and code whatever the language.
    key = Token.objects.create(user=cast.owner).key
    for headers, expected in (({}, "API 키가 올바르지 않습니다"), (EN, "Incorrect API key")):
        response = Client().get("/v1/models", headers={"Authorization": "Bearer wrong", **headers})
        assert response.status_code == 401
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
        assert expected in error["message"]
    refused = Client().post(
        "/v1/audio/transcriptions",
        {"model": "whisper-1"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "file"
    assert "multipart 필드 'file'" in refused.json()["error"]["message"]


@pytest.mark.django_db
def test_the_lockout_message_follows_the_language(settings):
    make_user("locked")
    for attempt in range(settings.LOGIN_MAX_FAILURES + 1):
        Client().post("/accounts/login/", {"username": "locked", "password": f"no-{attempt}"})
    korean = Client().post("/accounts/login/", {"username": "locked", "password": PASSWORD})
    assert korean.status_code == 429 and "로그인 실패가 너무 많습니다" in korean.content.decode()
    english = Client().post(
        "/accounts/login/", {"username": "locked", "password": PASSWORD}, headers=EN
    )
    assert "Too many failed sign-ins" in english.content.decode()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_person_switches_to_english_before_signing_in_and_it_stays(tmp_path):
    staff = make_user("operator", staff=True)  # before Playwright starts its event loop
    with running_web(extra_env={"UPLOAD_MAX_MB": "1"}) as url, chromium() as browser:
        # A Korean browser: the pages and their scripts' messages in Korean.
        page = browser.new_context(locale="ko-KR").new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/accounts/login/")
        assert page.locator("html").get_attribute("lang") == "ko"
        assert page.locator("h1").inner_text() == "로그인"
        sign_in(page, url, staff.username, PASSWORD)
        page.goto(url + "/upload/")
        page.set_input_files(
            "#file-input",
            files=[
                {"name": "big.wav", "mimeType": "audio/wav", "buffer": b"\0" * (2 * 1024 * 1024)}
            ],
        )
        page.wait_for_selector(".job[data-state=failed]", timeout=10_000)
        assert (
            page.locator(".job .job-error").inner_text() == "이 파일은 업로드 제한 1 MB보다 큽니다."
        )
        assert page.locator(".job .job-state").inner_text() == "실패"
        page.goto(url + "/")
        assert page.locator("#conn").inner_text() == "대기 중"
        assert page.locator("#start").inner_text() == "● 시작"

        # Signed out, on the sign-in page: English with the header's switch.
        page.context.clear_cookies()
        page.goto(url + "/accounts/login/")
        page.locator(".lang-switch button[value=en]").click()
        page.wait_for_function("document.documentElement.lang === 'en'")
        assert page.url == url + "/accounts/login/"
        assert page.locator("h1").inner_text() == "Sign in"

        # Remembered across the sign-in and every page after it, the admin's too.
        sign_in(page, url, staff.username, PASSWORD)
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("#conn").inner_text() == "idle"
        page.goto(url + "/history/")
        assert page.locator("h1").inner_text() == "History"
        page.goto(url + "/admin/")
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Site administration" in page.content()
        page.goto(url + "/upload/")
        page.set_input_files(
            "#file-input",
            files=[
                {"name": "big.wav", "mimeType": "audio/wav", "buffer": b"\0" * (2 * 1024 * 1024)}
            ],
        )
        page.wait_for_selector(".job[data-state=failed]", timeout=10_000)
        assert page.locator(".job .job-error").inner_text() == (
            "This file is larger than the upload limit of 1 MB."
        )

        # And back to Korean from the page one is on.
        page.locator(".lang-switch button[value=ko]").click()
        page.wait_for_function("document.documentElement.lang === 'ko'")
        assert page.url == url + "/upload/"
        assert page.locator("h1").inner_text() == "녹음 파일 업로드"
        assert errors == []


def test_no_template_comment_spans_lines():
    # Django's {# #} ends at the line's end: a two-line one is printed on the page as text
    # (the header showed one on every page); {% comment %} is the multi-line form.
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in sorted((REPO_ROOT / "templates").rglob("*.html"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if line.count("{#") != line.count("#}")
    ]
    assert not offenders, offenders
