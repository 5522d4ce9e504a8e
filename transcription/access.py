"""Who may see what: each user their own transcripts, staff everything.

Another user's transcript is answered as if it did not exist (404), never with its
content or a 403 that would confirm the id.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.authentication import TokenAuthentication

from transcription.models import Transcript


def visible_transcripts(user) -> QuerySet[Transcript]:
    if user is None or not user.is_authenticated:
        return Transcript.objects.none()
    if user.is_staff:
        return Transcript.objects.all()
    return Transcript.objects.filter(owner=user)


def may_see(user, transcript: Transcript) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return user.is_staff or transcript.owner_id == user.pk


class BearerTokenAuthentication(TokenAuthentication):
    """``Authorization: Bearer <token>``, which the OpenAI client libraries send."""

    keyword = "Bearer"
