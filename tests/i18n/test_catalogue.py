"""The German catalogue is complete, compiled and in step with the code."""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.i18n.catalogue import GERMAN_MO, GERMAN_PO, messages, read

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def test_every_german_message_is_translated_and_none_is_fuzzy():
    entries = messages(GERMAN_PO)
    assert len(entries) > 300  # the catalogue covers the pages, not a handful of strings
    untranslated = [e.msgid for e in entries if not all(t.strip() for t in e.translations)]
    fuzzy = [e.msgid for e in read(GERMAN_PO) if "fuzzy" in e.flags]
    assert untranslated == []
    assert fuzzy == []
    assert not any(e.obsolete for e in read(GERMAN_PO)), "obsolete entries: run `make messages`"


def test_german_plurals_have_both_forms_and_keep_the_placeholders():
    for entry in messages(GERMAN_PO):
        if entry.msgid_plural:
            assert len(entry.translations) == 2, entry.msgid
        wanted = set(PLACEHOLDER.findall(entry.msgid))
        for text in entry.translations:
            # A plural's singular may leave the count out ("eine Runde"), never add a name.
            found = set(PLACEHOLDER.findall(text))
            assert found <= wanted | set(PLACEHOLDER.findall(entry.msgid_plural or "")), entry.msgid
            assert wanted - {"counter"} <= found, (entry.msgid, text)


def test_the_committed_mo_holds_exactly_the_po():
    """`make run` uses the committed django.mo: it must say what django.po says."""
    with GERMAN_MO.open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]
    expected: dict[object, str] = {}
    for entry in messages(GERMAN_PO):
        msgid = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural:
            for index, text in enumerate(entry.translations):
                expected[(msgid, index)] = text
        else:
            expected[msgid] = entry.msgstr
    compiled_messages = {key: value for key, value in catalog.items() if key != ""}
    assert compiled_messages == expected, "django.mo is stale: run `make messages`"


def _copy_of_the_sources(target: Path) -> None:
    skip = shutil.ignore_patterns(
        ".git", ".venv", "var", "staticfiles", "node_modules", "test-results", "__pycache__",
        ".*_cache", "docs", "bench", "tests", "deploy", "static",
    )  # fmt: skip
    shutil.copytree(settings.BASE_DIR, target, ignore=skip, symlinks=True)


@pytest.mark.processes
def test_every_marked_string_is_in_the_german_catalogue(tmp_path):
    """makemessages over a copy of the sources adds nothing to django.po and removes nothing:
    a string marked in the code but missing from the catalogue (or a stale one) fails here."""
    if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("GNU gettext (xgettext, msgmerge) is missing on CI")
        pytest.skip("GNU gettext is not installed")
    copy = tmp_path / "src"
    _copy_of_the_sources(copy)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "de", "-d", "django", "--no-obsolete"],
        cwd=copy,
        check=True,
        capture_output=True,
        timeout=120,
    )
    regenerated = {e.key: e for e in messages(copy / "locale/de/LC_MESSAGES/django.po")}
    committed = {e.key: e for e in messages(GERMAN_PO)}
    missing = sorted(str(key) for key in regenerated.keys() - committed.keys())
    stale = sorted(str(key) for key in committed.keys() - regenerated.keys())
    assert missing == [], "marked in the code but not in django.po: run `make messages`"
    assert stale == [], "in django.po but no longer in the code: run `make messages`"
    changed = [
        key
        for key, entry in regenerated.items()
        if entry.msgid_plural != committed[key].msgid_plural or "fuzzy" in entry.flags
    ]
    assert changed == []
