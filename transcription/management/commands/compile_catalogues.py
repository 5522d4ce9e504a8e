"""``manage.py compile_catalogues``: the message catalogues' .mo files, without GNU gettext
(sttproject/catalogues.py). The install step runs it; it does nothing when they are current."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from sttproject.catalogues import compile_all


class Command(BaseCommand):
    help = "Compile locale/*/LC_MESSAGES/*.po to .mo (only those newer than their .mo)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Compile even when current.")

    def handle(self, *args, force: bool = False, **options):
        for path in compile_all([Path(p) for p in settings.LOCALE_PATHS], force=force):
            self.stdout.write(f"compiled {path}")
