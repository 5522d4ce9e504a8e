from __future__ import annotations

import sys
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from keywords.services import extract_for_transcript
from transcription.batch.pipeline import transcribe_transcript
from transcription.batch.uploads import UploadRejected, check_duration, check_language
from transcription.models import Transcript
from transcription.speech.audio import NotAudioError, probe_audio
from transcription.web.exports import FORMATS, render


class Command(BaseCommand):
    help = (
        "Transcribe files in this process with the same pipeline the workers run (no broker "
        "needed) and store each as a transcript in the history."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--language", default=None, help="ko (default), en, ... or auto")
        parser.add_argument("--format", default="txt", choices=sorted(FORMATS))
        parser.add_argument(
            "--output", type=Path, default=None, help="folder for the exports (default: print them)"
        )
        parser.add_argument("--no-keywords", action="store_true", help="skip keyword extraction")

    def handle(
        self, *args, files: list[Path], language, format: str, output: Path | None, **options
    ):
        try:
            language = check_language(language)
        except UploadRejected as exc:
            raise CommandError(str(exc)) from exc
        if output:
            output.mkdir(parents=True, exist_ok=True)
        failures = 0
        for path in files:
            if not path.is_file():
                self.stderr.write(f"{path}: no such file")
                failures += 1
                continue
            try:
                info = probe_audio(path)
                check_duration(path.name, info.duration_s)
            except (NotAudioError, UploadRejected) as exc:
                self.stderr.write(f"{path}: {exc}")
                failures += 1
                continue
            with path.open("rb") as handle:
                transcript = Transcript.objects.create(
                    source=Transcript.Source.UPLOAD,
                    title=path.name[:255],
                    language=language,
                    duration=info.duration_s or None,
                    audio=File(handle, name=path.name),
                )
            with tqdm(total=100, desc=path.name, unit="%", file=sys.stderr, leave=True) as bar:

                def advance(progress: float, bar=bar) -> None:
                    bar.update(round(progress * 100) - bar.n)

                transcript = transcribe_transcript(transcript.pk, on_progress=advance)
            if transcript.status != Transcript.Status.DONE:
                self.stderr.write(f"{path}: {transcript.error}")
                failures += 1
                continue
            if not options["no_keywords"]:
                extract_for_transcript(transcript)
            meta = {
                "id": str(transcript.pk),
                "title": transcript.title,
                "language": transcript.language,
                "duration": transcript.duration,
            }
            keywords = [
                {"word": k.word, "category": k.category, "importance": k.importance}
                for k in transcript.keywords.all()
            ]
            content, _type, extension = render(
                format, meta, transcript.segments.select_related("speaker"), keywords
            )
            if output:
                target = output / f"{path.stem}.{extension}"
                target.write_text(content, encoding="utf-8")
                self.stderr.write(f"{path} -> {target} (transcript {transcript.pk})")
            else:
                self.stdout.write(content)
        if failures:
            raise CommandError(f"{failures} of {len(files)} file(s) failed")
