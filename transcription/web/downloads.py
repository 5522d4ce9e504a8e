"""Names of downloaded files: a transcript's export is saved under its title.

``Content-Disposition`` carries an ASCII ``filename`` for old clients and, when the title is
not plain ASCII (Korean), the exact name as RFC 5987's ``filename*`` (UTF-8, percent-encoded),
which every current browser prefers. A title is text a person typed: quotes, slashes,
backslashes, line breaks and other control characters never reach the header or the name.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# Longest stem kept, in characters: file systems allow 255 bytes, and Korean is 3 a syllable.
MAX_STEM = 80
# What no file name on Windows, macOS or Linux may hold; replaced, not dropped ("A/B" -> "A-B").
_FORBIDDEN = re.compile(r'[\\/:*?"<>|]')
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9 ._()\[\]+,=-]+")


def file_stem(title: str, fallback: str) -> str:
    """``title`` as a file name without extension; ``fallback`` when nothing usable is left."""
    text = unicodedata.normalize("NFC", title)
    # Line breaks, tabs and every other control or format character become spaces.
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in text)
    text = _FORBIDDEN.sub("-", text.replace('"', "'"))
    # Leading dots hide a file; trailing dots and spaces are dropped by Windows.
    text = " ".join(text.split())[:MAX_STEM].strip(" .")
    return text if text.strip("-'") else fallback


def ascii_stem(stem: str, fallback: str) -> str:
    """The stem in plain ASCII for ``filename=``: accents dropped (``Café`` -> ``Cafe``);
    ``fallback`` when the title has letters ASCII cannot spell (Hangul), since what would be
    left of it (``v2`` of ``회의록 v2``) would name the file wrongly."""
    text = "".join(
        c for c in unicodedata.normalize("NFKD", stem) if unicodedata.category(c) != "Mn"
    )
    if not text.isascii():
        return fallback
    text = " ".join(_NOT_PLAIN.sub("_", text).split()).strip(" ._-")
    return text if re.search(r"[A-Za-z0-9]", text) else fallback


def attachment(title: str, extension: str, fallback: str) -> str:
    """The ``Content-Disposition`` value that saves the file as ``<title>.<extension>``."""
    stem = file_stem(title, fallback)
    name = f"{stem}.{extension}"
    plain = f"{ascii_stem(stem, fallback)}.{extension}"
    header = f'attachment; filename="{plain}"'
    if name != plain:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header
