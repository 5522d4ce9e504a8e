"""The REST API: every endpoint, its filters and pagination, another user's access (404,
never a list entry), anonymous access, token auth, and the OpenAPI schema and docs."""

from __future__ import annotations

import datetime as dt
import json

import pysrt
import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token

from keywords.models import Category
from tests.factories import make_keyword, make_transcript
from transcription.models import Segment, Transcript
from transcription.web.payloads import (
    SegmentHitSerializer,
    TranscriptDetailSerializer,
    TranscriptListItemSerializer,
)

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/transcripts/",
    "/api/segments/?q=삼성",
    "/api/keywords/",
]


@pytest.fixture
def history(cast):
    """Transcripts of the owner (three), of the other user (one), days apart."""
    now = timezone.now()
    rows = {
        "meeting": make_transcript(
            cast.owner,
            texts=["삼성전자의 새 공장이 평택에 들어섭니다", "엔비디아 H100 서버 증설"],
            title="주간 회의",
        ),
        "live": make_transcript(
            cast.owner,
            texts=["삼성전자가 발표한 갤럭시 일정", "판교 사무실에서 만나요"],
            source=Transcript.Source.LIVE,
            title="",
        ),
        "english": make_transcript(cast.owner, texts=["GPUs are late again"], title="standup"),
        "others": make_transcript(cast.other, texts=["삼성전자의 비밀 계획"], title="남의 것"),
    }
    Transcript.objects.filter(pk=rows["english"].pk).update(language="en")
    # Oldest to newest: meeting, live, english; the other user's in between.
    for days, key in [(10, "meeting"), (5, "live"), (1, "english"), (3, "others")]:
        Transcript.objects.filter(pk=rows[key].pk).update(created_at=now - dt.timedelta(days=days))
    make_keyword(rows["meeting"], "삼성전자", Category.COMPANY, 0.9)
    make_keyword(rows["meeting"], "평택", Category.PLACE, 0.6)
    make_keyword(rows["live"], "삼성전자", Category.COMPANY, 0.8)
    make_keyword(rows["live"], "갤럭시", Category.PRODUCT, 0.7)
    make_keyword(rows["english"], "GPU", Category.EQUIPMENT, 0.7)
    make_keyword(rows["others"], "삼성전자", Category.COMPANY, 0.9)
    make_keyword(rows["others"], "비밀", Category.OTHER, 0.9)
    for row in rows.values():
        row.refresh_from_db()
    return rows


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


# --- the list ---------------------------------------------------------------------------


def test_list_is_own_transcripts_newest_first(cast, history):
    owner = client_for(cast.owner)
    body = owner.get("/api/transcripts/").json()
    assert body["count"] == 3
    assert [r["id"] for r in body["results"]] == [
        str(history[k].pk) for k in ("english", "live", "meeting")
    ]
    # The list's items have the upload response's shape (and no segments).
    assert set(body["results"][0]) == set(TranscriptListItemSerializer().fields) - {"matches"}
    # Staff see everyone's; the other user only their own.
    assert len(ids(client_for(cast.staff).get("/api/transcripts/"))) == 4
    assert ids(client_for(cast.other).get("/api/transcripts/")) == [str(history["others"].pk)]


def test_list_search_with_a_particle_and_highlighted_matches(cast, history):
    owner = client_for(cast.owner)
    body = owner.get("/api/transcripts/", {"q": "삼성전자를"}).json()
    # Newest first; the other user's 삼성전자 never shows.
    assert [r["id"] for r in body["results"]] == [
        str(history["live"].pk),
        str(history["meeting"].pk),
    ]
    match = body["results"][1]["matches"][0]
    assert set(match) == set(TranscriptListItemSerializer().fields["matches"].child.fields)
    assert match["text"] == "삼성전자의 새 공장이 평택에 들어섭니다"
    assert match["highlighted"].startswith("<mark>삼성전자</mark>의")
    assert match["spans"] == [[0, 4]]
    assert (match["index"], match["start"], match["end"]) == (0, 0.0, 1.5)
    # Title matches count too.
    assert ids(owner.get("/api/transcripts/", {"q": "회의"})) == [str(history["meeting"].pk)]
    assert ids(owner.get("/api/transcripts/", {"q": "gpu"})) == [str(history["english"].pk)]
    assert ids(owner.get("/api/transcripts/", {"q": "비밀"})) == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"source": "live"}, ["live"]),
        ({"source": "upload"}, ["english", "meeting"]),
        ({"language": "en"}, ["english"]),
        ({"language": "ko"}, ["live", "meeting"]),
        ({"status": "done"}, ["english", "live", "meeting"]),
        ({"status": "failed"}, []),
        ({"keyword": "갤럭시"}, ["live"]),
        ({"keyword": "gpu"}, ["english"]),  # case-insensitive
        ({"category": "회사"}, ["live", "meeting"]),
        ({"category": "장소"}, ["meeting"]),
        ({"keyword": "삼성전자", "category": "장소"}, []),  # one keyword row must match both
        ({"q": "삼성전자", "source": "upload"}, ["meeting"]),
        ({"source": "", "q": ""}, ["english", "live", "meeting"]),  # blank: no filter
    ],
)
def test_list_filters(cast, history, params, expected):
    got = ids(client_for(cast.owner).get("/api/transcripts/", params))
    assert got == [str(history[k].pk) for k in expected]


def test_list_date_range(cast, history):
    owner = client_for(cast.owner)
    today = timezone.localdate()
    week_ago = (today - dt.timedelta(days=7)).isoformat()
    two_days_ago = (today - dt.timedelta(days=2)).isoformat()
    expected_recent = [str(history[k].pk) for k in ("english", "live")]
    assert ids(owner.get("/api/transcripts/", {"date_from": week_ago})) == expected_recent
    assert ids(owner.get("/api/transcripts/", {"date_to": two_days_ago})) == [
        str(history[k].pk) for k in ("live", "meeting")
    ]
    assert ids(
        owner.get("/api/transcripts/", {"date_from": week_ago, "date_to": two_days_ago})
    ) == [str(history["live"].pk)]
    # The day of date_to is included.
    assert len(ids(owner.get("/api/transcripts/", {"date_to": today.isoformat()}))) == 3


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "yesterday"},
        {"source": "radio"},
        {"category": "동물"},
        {"date_from": "2026-05-02", "date_to": "2026-05-01"},
        {"page_size": "x"},
    ],
)
def test_list_bad_filters_are_400(cast, history, params):
    response = client_for(cast.owner).get("/api/transcripts/", params)
    if "page_size" in params:  # DRF ignores a bad page size and uses the default
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert next(iter(params)) in response.json()["error"]


def test_list_pagination(cast, db):
    for n in range(5):
        make_transcript(cast.owner, texts=[f"회의 {n}"], title=f"t{n}")
    owner = client_for(cast.owner)
    first = owner.get("/api/transcripts/", {"page_size": 2, "q": "회의"}).json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["previous"] is None
    assert first["count_exact"] is True
    second = owner.get(first["next"]).json()
    third = owner.get(second["next"]).json()
    assert third["next"] is None and len(third["results"]) == 1
    seen = [r["title"] for page in (first, second, third) for r in page["results"]]
    assert seen == ["t4", "t3", "t2", "t1", "t0"]
    assert owner.get("/api/transcripts/", {"page": 9}).status_code == 404


# --- one transcript ---------------------------------------------------------------------


def test_detail_has_segments_and_keywords(cast, history):
    response = client_for(cast.owner).get(f"/api/transcripts/{history['meeting'].pk}/")
    body = response.json()
    assert set(body) == set(TranscriptDetailSerializer().fields)
    # The nested items have the shapes the schema gives them too.
    nested = TranscriptDetailSerializer().fields
    assert set(body["segments"][0]) == set(nested["segments"].child.fields)
    assert set(body["keywords"][0]) == set(nested["keywords"].child.fields)
    assert set(body["keyword_summary"][0]) == set(nested["keyword_summary"].child.fields)
    assert [s["text"] for s in body["segments"]][0] == "삼성전자의 새 공장이 평택에 들어섭니다"
    assert {k["word"] for k in body["keywords"]} == {"삼성전자", "평택"}
    assert body["keyword_summary"][0]["word"] == "삼성전자"
    assert (
        client_for(cast.staff).get(f"/api/transcripts/{history['meeting'].pk}/").status_code == 200
    )


def test_rename(cast, history):
    owner = client_for(cast.owner)
    url = f"/api/transcripts/{history['meeting'].pk}/"
    response = owner.patch(url, {"title": "  삼성 공장 회의 "}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["title"] == "삼성 공장 회의"
    assert Transcript.objects.get(pk=history["meeting"].pk).title == "삼성 공장 회의"
    assert (
        owner.patch(url, {"title": "x" * 256}, content_type="application/json").status_code == 400
    )
    assert owner.patch(url, {}, content_type="application/json").status_code == 400
    # The new title is searchable at once.
    assert ids(owner.get("/api/transcripts/", {"q": "공장 회의"})) == [str(history["meeting"].pk)]


def test_delete_removes_rows_and_the_audio_file(
    cast, history, media, django_capture_on_commit_callbacks
):
    transcript = history["meeting"]
    transcript.audio.save("meeting.flac", ContentFile(b"fLaC not really"), save=True)
    path = media / transcript.audio.name
    assert path.exists()
    owner = client_for(cast.owner)
    # The file is removed once the deletion commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.delete(f"/api/transcripts/{transcript.pk}/")
    assert response.status_code == 204
    assert not Transcript.objects.filter(pk=transcript.pk).exists()
    assert not Segment.objects.filter(transcript_id=transcript.pk).exists()
    assert not path.exists()
    assert owner.get(f"/api/transcripts/{transcript.pk}/").status_code == 404


def test_export(cast, history):
    response = client_for(cast.owner).get(
        f"/api/transcripts/{history['meeting'].pk}/export", {"format": "srt"}
    )
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    subs = pysrt.from_string(response.content.decode())
    # A subtitle line holds 20 characters of Korean: the 21 of the first segment take two.
    assert [s.text for s in subs] == [
        "삼성전자의 새 공장이\n평택에 들어섭니다",
        "엔비디아 H100 서버 증설",
    ]
    bad = client_for(cast.owner).get(
        f"/api/transcripts/{history['meeting'].pk}/export", {"format": "doc"}
    )
    assert bad.status_code == 400


def test_another_users_transcript_is_404_everywhere(cast, history, media):
    other = client_for(cast.other)
    pk = history["meeting"].pk
    assert other.get(f"/api/transcripts/{pk}/").status_code == 404
    assert other.get(f"/api/transcripts/{pk}/export", {"format": "srt"}).status_code == 404
    renamed = other.patch(
        f"/api/transcripts/{pk}/", {"title": "mine"}, content_type="application/json"
    )
    assert renamed.status_code == 404
    assert other.delete(f"/api/transcripts/{pk}/").status_code == 404
    assert Transcript.objects.get(pk=pk).title == "주간 회의"
    assert other.get(f"/transcripts/{pk}/").status_code == 404
    assert other.get("/api/segments/", {"q": "평택"}).json()["count"] == 0
    assert other.get("/api/segments/", {"q": "평택", "transcript": str(pk)}).json()["count"] == 0


# --- segments and keywords --------------------------------------------------------------


def test_segment_hits(cast, history):
    owner = client_for(cast.owner)
    body = owner.get("/api/segments/", {"q": "삼성전자의"}).json()
    assert body["count"] == 2  # not the other user's
    first, second = body["results"]
    assert set(first) == set(SegmentHitSerializer().fields)
    assert first["transcript"] == str(history["live"].pk)  # newest transcript first
    assert first["transcript_title"] == str(history["live"])
    assert first["text"] == "삼성전자가 발표한 갤럭시 일정"
    assert first["highlighted"] == "<mark>삼성전자</mark>가 발표한 갤럭시 일정"
    assert (first["index"], first["start"], first["end"]) == (0, 0.0, 1.5)
    assert first["page_url"] == f"/transcripts/{history['live'].pk}/#segment-0"
    assert second["transcript"] == str(history["meeting"].pk)
    # Segment-level: every word in the same segment.
    assert owner.get("/api/segments/", {"q": "삼성전자 서버"}).json()["count"] == 0
    hit = owner.get("/api/segments/", {"q": "h100 서버"}).json()["results"]
    assert [(h["transcript"], h["index"]) for h in hit] == [(str(history["meeting"].pk), 1)]
    # Filters and one transcript.
    assert owner.get("/api/segments/", {"q": "삼성전자", "source": "live"}).json()["count"] == 1
    only = owner.get("/api/segments/", {"q": "삼성전자", "transcript": str(history["meeting"].pk)})
    assert [h["transcript"] for h in only.json()["results"]] == [str(history["meeting"].pk)]
    # Staff search everyone's.
    assert client_for(cast.staff).get("/api/segments/", {"q": "삼성전자"}).json()["count"] == 3


def test_search_counts_are_bounded(cast, db, monkeypatch):
    from transcription.search.results import (
        QuerySetResults,
        TranscriptHits,
    )

    monkeypatch.setattr(QuerySetResults, "count_bound", 3)
    monkeypatch.setattr(TranscriptHits, "count_bound", 2)
    for n in range(5):
        make_transcript(cast.owner, texts=[f"판교 회의 {n}"])
    owner = client_for(cast.owner)
    segments = owner.get("/api/segments/", {"q": "판교", "page_size": 2}).json()
    assert (segments["count"], segments["count_exact"]) == (3, False)
    assert segments["next"]
    transcripts = owner.get("/api/transcripts/", {"q": "판교", "page_size": 2}).json()
    assert (transcripts["count"], transcripts["count_exact"]) == (3, False)  # 2 shown + more
    last = owner.get("/api/transcripts/", {"q": "판교", "page_size": 2, "page": 3}).json()
    assert len(last["results"]) == 1 and last["next"] is None
    # Without a search, lists are counted exactly.
    assert owner.get("/api/transcripts/").json()["count_exact"] is True


def test_segment_search_needs_q_and_paginates(cast, db):
    transcript = make_transcript(cast.owner, texts=[f"판교 회의 {n}" for n in range(7)])
    owner = client_for(cast.owner)
    missing = owner.get("/api/segments/")
    assert missing.status_code == 400 and "q" in missing.json()["error"]
    page = owner.get("/api/segments/", {"q": "판교", "page_size": 5}).json()
    assert page["count"] == 7 and len(page["results"]) == 5 and page["next"]
    rest = owner.get(page["next"]).json()
    assert [h["index"] for h in page["results"] + rest["results"]] == list(range(7))
    assert {h["transcript"] for h in rest["results"]} == {str(transcript.pk)}


def test_keywords(cast, history):
    owner = client_for(cast.owner)
    body = owner.get("/api/keywords/").json()
    top = body["results"]
    assert top[0] == {"word": "삼성전자", "category": "회사", "count": 2, "transcripts": 2}
    assert {k["word"] for k in top} == {"삼성전자", "평택", "갤럭시", "GPU"}  # not 비밀
    assert [
        k["word"] for k in owner.get("/api/keywords/", {"category": "제품"}).json()["results"]
    ] == ["갤럭시"]
    assert len(owner.get("/api/keywords/", {"limit": 2}).json()["results"]) == 2
    recent = owner.get(
        "/api/keywords/", {"date_from": (timezone.localdate() - dt.timedelta(days=7)).isoformat()}
    ).json()["results"]
    assert {k["word"]: k["count"] for k in recent} == {"삼성전자": 1, "갤럭시": 1, "GPU": 1}
    live = owner.get("/api/keywords/", {"source": "live"}).json()["results"]
    assert {k["word"] for k in live} == {"삼성전자", "갤럭시"}
    assert owner.get("/api/keywords/", {"limit": 0}).status_code == 400
    staff = client_for(cast.staff).get("/api/keywords/").json()["results"]
    assert staff[0] == {"word": "삼성전자", "category": "회사", "count": 3, "transcripts": 3}


# --- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [*ENDPOINTS, "detail", "export"])
def test_anonymous_is_refused(client, history, path):
    pk = history["meeting"].pk
    path = {"detail": f"/api/transcripts/{pk}/", "export": f"/api/transcripts/{pk}/export"}.get(
        path, path
    )
    response = client.get(path)
    assert response.status_code in (401, 403)
    assert "삼성" not in response.content.decode()
    assert client.delete(f"/api/transcripts/{pk}/").status_code in (401, 403)
    assert Transcript.objects.filter(pk=pk).exists()


@pytest.mark.parametrize("keyword", ["Token", "Bearer"])
def test_token_auth(cast, history, keyword):
    token = Token.objects.create(user=cast.owner)
    api = Client(HTTP_AUTHORIZATION=f"{keyword} {token.key}")
    for path in ENDPOINTS:
        assert api.get(path).status_code == 200, path
    assert len(ids(api.get("/api/transcripts/"))) == 3
    pk = history["meeting"].pk
    # Token requests need no CSRF token: they are not made by a browser session.
    renamed = api.patch(
        f"/api/transcripts/{pk}/", {"title": "토큰"}, content_type="application/json"
    )
    assert renamed.status_code == 200
    assert api.get(f"/api/transcripts/{history['others'].pk}/").status_code == 404
    wrong = Client(HTTP_AUTHORIZATION=f"{keyword} {'0' * 40}")
    # 403, not 401: DRF answers with the first authentication class (the session), which
    # names no WWW-Authenticate challenge.
    refused = wrong.get("/api/transcripts/")
    assert refused.status_code in (401, 403)
    assert refused.json()["detail"]  # "Invalid token", in the site's language


def test_session_writes_need_the_csrf_token(cast, history):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(cast.owner)
    url = f"/api/transcripts/{history['meeting'].pk}/"
    assert browser.patch(url, {"title": "x"}, content_type="application/json").status_code == 403
    assert browser.delete(url).status_code == 403


# --- schema and docs ------------------------------------------------------------------


def test_schema_is_valid_openapi_and_documents_every_endpoint(owner_client):
    response = owner_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    as_yaml = yaml.safe_load(owner_client.get("/api/schema/").content)
    assert as_yaml["paths"].keys() == schema["paths"].keys()
    paths = schema["paths"]
    for path, methods in [
        ("/api/transcripts/", {"get", "post"}),
        ("/api/transcripts/{id}/", {"get", "patch", "delete"}),
        ("/api/transcripts/{id}/export", {"get"}),
        ("/api/segments/", {"get"}),
        ("/api/keywords/", {"get"}),
        ("/api/segments/{id}/", {"get", "patch"}),
        ("/api/transcripts/{id}/speakers/", {"get", "post"}),
        ("/api/transcripts/{id}/speakers/{speaker_id}/", {"patch", "delete"}),
        ("/api/transcripts/{id}/speakers/assign", {"post"}),
    ]:
        assert methods <= set(paths[path]), path
    params = {p["name"] for p in paths["/api/transcripts/"]["get"]["parameters"]}
    assert {"q", "source", "language", "status", "date_from", "date_to", "keyword", "category",
            "page", "page_size"} <= params  # fmt: skip
    params = {p["name"] for p in paths["/api/segments/"]["get"]["parameters"]}
    assert {"q", "transcript", "page"} <= params
    params = {p["name"] for p in paths["/api/keywords/"]["get"]["parameters"]}
    assert {"category", "date_from", "date_to", "source", "limit"} <= params
    export = {p["name"]: p for p in paths["/api/transcripts/{id}/export"]["get"]["parameters"]}
    assert set(export["format"]["schema"]["enum"]) == {"srt", "vtt", "txt", "json"}
    assert export["max_chars"]["schema"]["type"] == "integer"
    assert export["max_duration"]["schema"]["type"] == "number"
    page = schema["components"]["schemas"]["PaginatedTranscriptListItemList"]
    assert {"count", "count_exact", "next", "previous", "results"} <= set(page["properties"])
    edit = paths["/api/segments/{id}/"]["patch"]
    assert {"200", "400", "404", "409"} <= set(edit["responses"])
    conflict = edit["responses"]["409"]["content"]["application/json"]["schema"]["$ref"]
    conflict_fields = schema["components"]["schemas"][conflict.rsplit("/", 1)[1]]["properties"]
    assert {"error", "code", "text", "version", "edited_by"} <= set(conflict_fields)
    segment = schema["components"]["schemas"]["Segment"]["properties"]
    assert {"original_text", "edited", "version", "speaker"} <= set(segment)
    assert "speakers" in schema["components"]["schemas"]["TranscriptDetail"]["properties"]
    schemes = schema["components"]["securitySchemes"]
    assert {"cookieAuth", "tokenAuth", "bearerAuth"} <= set(schemes)


def test_docs_page_renders_offline(owner_client):
    response = owner_client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # Swagger UI comes from the sidecar package, not a CDN this network cannot reach.
    assert "cdn." not in html and "unpkg" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert "/api/schema/" in html


def test_audio_is_downloadable_with_a_token(cast, history, media):
    recorded = history["live"]
    recorded.audio.save("session.wav", ContentFile(bytes(range(256)) * 8), save=True)
    token = Token.objects.create(user=cast.owner)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    detail = api.get(f"/api/transcripts/{recorded.pk}/").json()
    assert detail["audio"] == f"/api/transcripts/{recorded.pk}/audio"
    assert api.get(f"/api/transcripts/{history['meeting'].pk}/").json()["audio"] is None
    # An <audio> element's Accept header, which names no JSON, is answered all the same.
    whole = api.get(detail["audio"], HTTP_ACCEPT="audio/webm,audio/*;q=0.9")
    assert whole.status_code == 200 and whole["Content-Type"] in ("audio/x-wav", "audio/wav")
    assert b"".join(whole) == bytes(range(256)) * 8
    part = api.get(detail["audio"], HTTP_RANGE="bytes=256-511")
    assert part.status_code == 206 and part["Content-Range"] == "bytes 256-511/2048"
    assert b"".join(part) == bytes(range(256))
    assert api.head(detail["audio"])["Content-Length"] == "2048"
    assert api.get(f"/api/transcripts/{history['meeting'].pk}/audio").status_code == 404
    assert api.get(f"/api/transcripts/{history['others'].pk}/audio").status_code == 404
    anonymous = Client().get(detail["audio"])
    assert anonymous.status_code in (401, 403)
    assert b"".join(anonymous) != bytes(range(256)) * 8
