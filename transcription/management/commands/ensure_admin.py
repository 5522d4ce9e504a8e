from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from sttproject.env import envstr


class Command(BaseCommand):
    help = (
        "Create the first admin account when no superuser exists. The password comes from "
        "ADMIN_PASSWORD, or is generated and printed this one time."
    )

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = envstr("ADMIN_USERNAME", "admin")
        password = envstr("ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        User.objects.create_superuser(
            username=username, email=envstr("ADMIN_EMAIL", ""), password=password
        )
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin account '{username}' with password: {password}\n"
                    "It is shown only this once; change it in the admin (/admin/password_change/)."
                )
            )
        else:
            self.stdout.write(f"Created admin account '{username}' (password from ADMIN_PASSWORD)")
