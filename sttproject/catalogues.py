"""The message catalogues: ``locale/<lang>/LC_MESSAGES/*.po`` compiled to the ``.mo`` files
Django reads.

Django's own ``compilemessages`` needs GNU gettext's ``msgfmt``; a fresh machine and the
Docker image have none, so the install step compiles with polib (pure Python) instead. The
``.mo`` files are build output (.gitignore), rebuilt only when their ``.po`` is newer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import polib

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def compile_catalogue(po_path: Path, *, force: bool = False) -> bool:
    """Writes ``<name>.mo`` beside ``po_path``; False when it was already up to date.

    Fuzzy and untranslated entries are left out (gettext's rule): they show the source text.
    """
    mo_path = po_path.with_suffix(".mo")
    if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
        return False
    catalogue = polib.pofile(str(po_path), encoding="utf-8")
    # Written aside and renamed: a server or test reading the catalogue meanwhile sees the
    # old file or the new one, never half of one.
    fd, tmp = tempfile.mkstemp(prefix=mo_path.name, suffix=".tmp", dir=mo_path.parent)
    os.close(fd)
    try:
        catalogue.save_as_mofile(tmp)
        os.chmod(tmp, 0o644)
        # Never older than its source, even when the .po's time is ahead of the clock (a
        # checkout from another machine): otherwise it would be compiled at every start.
        source_time = po_path.stat().st_mtime
        if os.stat(tmp).st_mtime < source_time:
            os.utime(tmp, (source_time, source_time))
        os.replace(tmp, mo_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def compile_all(locale_dirs: Iterable[Path] = (LOCALE_DIR,), *, force: bool = False) -> list[Path]:
    """Compiles every ``.po`` under the locale folders; returns the ``.mo`` files written."""
    written = []
    for folder in locale_dirs:
        for po_path in sorted(Path(folder).glob("*/LC_MESSAGES/*.po")):
            if compile_catalogue(po_path, force=force):
                written.append(po_path.with_suffix(".mo"))
    return written


if __name__ == "__main__":
    for path in compile_all():
        print(f"compiled {path}")
