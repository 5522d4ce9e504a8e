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


def credentials_valid(session_key: str | None, authorization: str | None) -> bool:
    """Whether a session id or an ``Authorization: Token|Bearer <key>`` header belongs to an
    active user: the web server asks before it reads a large request body (the view then
    authenticates the request as usual)."""
    from django.conf import settings
    from django.contrib.auth import SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.base import SessionBase
    from django.utils.module_loading import import_string

    key = token_key(authorization)
    if key and user_for_token(key) is not None:
        return True
    if session_key:
        store: SessionBase = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key)
        user_id = store.get(SESSION_KEY)
        users = get_user_model().objects.filter(is_active=True)
        if user_id is not None and users.filter(pk=user_id).exists():
            return True
    return False


def token_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Token <key>`` or ``Bearer <key>`` header (empty if the
    header names the scheme alone: a bad token, not none); None for no header or any other
    scheme (``Basic``, which a browser sends by itself to a site behind a password-protected
    proxy, is not an API token)."""
    scheme, _, key = (authorization or "").strip().partition(" ")
    if scheme.lower() not in ("token", "bearer"):
        return None
    return key.strip()


def user_for_token(key: str):
    """The active user whose API token ``key`` is, or None."""
    from rest_framework.authtoken.models import Token

    if not key:
        return None
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


class BearerTokenAuthentication(TokenAuthentication):
    """``Authorization: Bearer <token>``, which the OpenAI client libraries send."""

    keyword = "Bearer"
