"""The account page: the user's API token, to rotate, with examples of its use."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from transcription.batch.uploads import format_duration
from transcription.web.openai_api import model_ids


def rotate_token(user) -> Token:
    """A new key for ``user``; the old one stops working at once."""
    with transaction.atomic():
        # DRF keys the token by user (one per user), so rotating is delete and create.
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


@never_cache  # the page shows a secret; no cache (or back button) should keep it
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    # Signed-in users only: LoginRequiredMiddleware sends everyone else to the login page.
    # The rotate form is a POST, so CsrfViewMiddleware refuses it without the form's token.
    if request.method == "POST":
        rotate_token(request.user)
        messages.success(request, gettext("A new API token was made; the old one no longer works."))
        return redirect("account")
    token, _ = Token.objects.get_or_create(user=request.user)
    base_url = request.build_absolute_uri("/").rstrip("/")
    return render(
        request,
        "account.html",
        {
            "token": token,
            "base_url": base_url,
            "default_language": settings.DEFAULT_LANGUAGE,
            "model_ids": model_ids(),
            "upload_audio_per_hour": format_duration(settings.UPLOAD_AUDIO_PER_HOUR_S)
            if settings.UPLOAD_AUDIO_PER_HOUR_S
            else "",
            "timeout_s": settings.OPENAI_API_TIMEOUT_S,
        },
    )
