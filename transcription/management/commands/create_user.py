from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Create a user account and print its API token (for the REST API and the "
        "OpenAI-compatible /v1 endpoint). Without --password a password is generated and "
        "printed this one time."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--staff",
            action="store_true",
            # On this platform staff are the operators: they see every transcript (not only
            # their own) and manage everything in the admin, so they are superusers too.
            help="an operator: sees every transcript and may use the admin (superuser)",
        )
        parser.add_argument("--password", help="the password (default: generated and printed)")
        parser.add_argument("--email", default="", help="e-mail address (optional)")

    def handle(self, *args, username: str, staff: bool, password: str | None, email: str, **_):
        User = get_user_model()
        username = username.strip()
        if not username:
            raise CommandError("the username is empty")
        if User.objects.filter(username=username).exists():
            raise CommandError(
                f"user {username!r} already exists; their token is on /account/ once they sign in"
            )
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        with transaction.atomic():
            user = User.objects.create_user(
                username=username,
                email=email,
                password=password,
                is_staff=staff,
                is_superuser=staff,
            )
            token = Token.objects.create(user=user)
        kind = "staff user" if staff else "user"
        self.stdout.write(f"Created {kind} '{username}'.")
        if generated:
            self.stdout.write(self.style.WARNING(f"Password (shown only this once): {password}"))
        self.stdout.write(f"API token: {token.key}")
