"""A transcript's stored audio goes with it, however the row is deleted: the API, the
history page, the admin, or a user deleted with everything they owned."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from transcription import storage
from transcription.models import Transcript

log = logging.getLogger(__name__)


@receiver(post_delete, sender=Transcript, dispatch_uid="transcription.delete_audio")
def delete_audio(sender, instance: Transcript, **_kwargs) -> None:
    name, stored_in = instance.audio.name, instance.audio.storage
    if not name:
        return

    def remove() -> None:
        try:
            # The file, or the object in the bucket (and a live recording's spool here).
            storage.delete(name, stored_in)
        except OSError as exc:  # a file already gone is not an error; a busy disk is logged
            log.warning("could not delete the audio of transcript %s: %s", instance.pk, exc)

    # Only once the rows are gone for good: a rolled-back delete keeps its recording.
    transaction.on_commit(remove)
