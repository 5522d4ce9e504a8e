"""Rows for tests: a fixed cast of users and small transcript factories, and a client to read
them with."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client

from keywords.models import Backend, Category, Keyword
from transcription.models import Segment, Transcript

PASSWORD = "correct horse battery staple"


def make_user(username: str, *, staff: bool = False):
    User = get_user_model()
    return User.objects.create_user(
        username=username, password=PASSWORD, is_staff=staff, is_superuser=staff
    )


def english_client(user=None) -> Client:
    """A test client that asks for English (the interface is Korean by default), signed in
    as ``user`` when given."""
    client = Client(headers={"Accept-Language": "en"})
    if user is not None:
        client.force_login(user)
    return client


def make_transcript(
    owner=None, *, texts=("안녕하세요",), source=Transcript.Source.UPLOAD, **fields
):
    transcript = Transcript.objects.create(
        owner=owner, source=source, status=Transcript.Status.DONE, language="ko", **fields
    )
    for index, text in enumerate(texts):
        Segment.objects.create(
            transcript=transcript, index=index, start=index * 2.0, end=index * 2.0 + 1.5, text=text
        )
    return transcript


def make_keyword(transcript, word: str, category: str = Category.OTHER, importance: float = 0.5):
    return Keyword.objects.create(
        transcript=transcript,
        word=word,
        category=category,
        importance=importance,
        backend=Backend.EMBEDDED,
    )
