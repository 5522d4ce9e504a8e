from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from transcription.speech.modelfiles import ModelPreparationError, prepare_embedded_model


class Command(BaseCommand):
    help = "Join and verify the embedded Whisper base model (does nothing when it is ready)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dest", type=Path, default=None, help="target folder (default: EMBEDDED_MODEL_DIR)"
        )

    def handle(self, *args, dest: Path | None, **options):
        target = dest or settings.EMBEDDED_MODEL_DIR
        try:
            wrote = prepare_embedded_model(target)
        except ModelPreparationError as exc:
            raise CommandError(str(exc)) from exc
        state = "prepared" if wrote else "already prepared"
        self.stdout.write(f"Whisper base model {state} in {target}")
        if str(target) != settings.WHISPER_MODEL:
            self.stdout.write(
                f"(workers are configured to use WHISPER_MODEL={settings.WHISPER_MODEL})"
            )
