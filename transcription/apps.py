from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "transcription"
    verbose_name = "Transcription"

    def ready(self) -> None:
        from transcription import signals  # noqa: F401 (connects the receivers)
