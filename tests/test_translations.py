"""The Korean catalogues cover every marked string, and the install step's compiler makes
.mo files Django reads (issue 15).

The check runs Django's makemessages over a copy of the sources, so a string marked in a
template, a script or Python and not yet translated fails here, as does a stale or fuzzy
entry: the Korean pages would show it in English.
"""

from __future__ import annotations

import gettext
import os
import re
import shutil
import time
from pathlib import Path

import polib
import pytest
from django.core.management import call_command

from sttproject.catalogues import compile_all, compile_catalogue
from tests.conftest import REPO_ROOT

CATALOGUES = REPO_ROOT / "locale" / "ko" / "LC_MESSAGES"
DOMAINS = ("django", "djangojs")
# What makemessages reads: the pages, their scripts and the Python that people's text is in.
SOURCES = ("templates", "static", "sttproject", "transcription", "keywords", "workers", "locale")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%[sd]")
# Markup inside a translated sentence (links, <strong>, <code>, the status page's Flower link
# that a script finds by id) must come through whole.
TAG = re.compile(r"<[^>]+>")


def untranslated(catalogue: polib.POFile) -> list[str]:
    missing = []
    for entry in catalogue:
        if entry.obsolete:
            continue
        texts = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        if "fuzzy" in entry.flags or not all(t.strip() for t in texts):
            missing.append(entry.msgid)
    return missing


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory, django_db_blocker) -> Path:
    """The catalogues as makemessages would rewrite them now, made in a copy of the tree."""
    if not shutil.which("xgettext") or not shutil.which("msgmerge"):
        pytest.skip("GNU gettext is not installed (apt-get install gettext)")
    tree = tmp_path_factory.mktemp("tree")
    for name in SOURCES:
        shutil.copytree(REPO_ROOT / name, tree / name, ignore=shutil.ignore_patterns("*.mo"))
    here = Path.cwd()
    os.chdir(tree)
    try:
        from django.test import override_settings

        # Only the copy's locale folder (makemessages finds ./locale): never the checkout's.
        with override_settings(LOCALE_PATHS=[]):
            for domain in DOMAINS:
                call_command(
                    "makemessages",
                    locale=["ko"],
                    domain=domain,
                    add_location="file",
                    no_obsolete=True,
                    verbosity=0,
                )
    finally:
        os.chdir(here)
    return tree / "locale" / "ko" / "LC_MESSAGES"


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_marked_string_has_a_korean_translation(refreshed, domain):
    catalogue = polib.pofile(str(refreshed / f"{domain}.po"))
    assert len(catalogue) > 30
    missing = untranslated(catalogue)
    assert not missing, (
        f"{len(missing)} strings of {domain}.po have no Korean translation (or are fuzzy): run "
        f"`make messages`, translate them in locale/ko/LC_MESSAGES/{domain}.po: {missing}"
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_committed_catalogue_is_current(refreshed, domain):
    fresh = {e.msgid for e in polib.pofile(str(refreshed / f"{domain}.po"))}
    committed = {e.msgid for e in polib.pofile(str(CATALOGUES / f"{domain}.po")) if not e.obsolete}
    assert committed == fresh, (
        f"locale/ko/LC_MESSAGES/{domain}.po is out of date: run `make messages`; "
        f"new: {sorted(fresh - committed)}, gone: {sorted(committed - fresh)}"
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_translations_keep_the_placeholders_and_markup(domain):
    for entry in polib.pofile(str(CATALOGUES / f"{domain}.po")):
        texts = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for text in texts:
            for pattern in (PLACEHOLDER, TAG):
                found, expected = pattern.findall(text), pattern.findall(entry.msgid)
                assert sorted(found) == sorted(expected), (entry.msgid, text)


def test_the_compiler_writes_what_gettext_reads_and_skips_current_files(tmp_path):
    folder = tmp_path / "ko" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    po = folder / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
        '"Plural-Forms: nplurals=1; plural=0;\\n"\n\n'
        'msgid "History"\nmsgstr "기록"\n\n'
        '#, fuzzy\nmsgid "Upload"\nmsgstr "올리기"\n\n'
        'msgid "%(count)d hour"\nmsgid_plural "%(count)d hours"\nmsgstr[0] "%(count)d시간"\n\n'
        'msgid "Delete"\nmsgstr ""\n',
        encoding="utf-8",
    )
    assert compile_all([tmp_path]) == [folder / "django.mo"]
    with open(folder / "django.mo", "rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    assert catalogue.gettext("History") == "기록"
    assert catalogue.ngettext("%(count)d hour", "%(count)d hours", 5) == "%(count)d시간"
    # A fuzzy or empty entry is left out, as msgfmt leaves it: the English shows instead.
    assert catalogue.gettext("Upload") == "Upload"
    assert catalogue.gettext("Delete") == "Delete"

    # Current: nothing to do. A newer .po (even one dated ahead of the clock): compiled
    # again, once.
    assert compile_all([tmp_path]) == []
    later = time.time() + 60
    os.utime(po, (later, later))
    assert compile_catalogue(po) is True
    assert compile_catalogue(po) is False
    assert compile_catalogue(po, force=True) is True


def test_no_compiled_catalogue_is_committed():
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert "*.mo" in ignored
    assert "**/*.mo" in (REPO_ROOT / ".dockerignore").read_text().splitlines()
