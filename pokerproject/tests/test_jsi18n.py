"""The scripts' translations: the German djangojs catalogue is complete and compiled, holds every
text the scripts in static/ mark, names the protocol's error codes with the server's English
texts, and /jsi18n/ serves it in the request's language, cheaply (public caching, an ETag)."""

from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from conftest import facilitator_of

ROOT = Path(settings.BASE_DIR)
PO = ROOT / "locale" / "de" / "LC_MESSAGES" / "djangojs.po"
MO = PO.with_suffix(".mo")
SCRIPTS = sorted((ROOT / "static").rglob("*.js"))
# The keywords makemessages gives xgettext for the djangojs domain (besides JavaScript's own
# gettext and ngettext), so this test finds what `make messages` would.
XGETTEXT_KEYWORDS = [
    "--keyword=gettext_noop",
    "--keyword=gettext_lazy",
    "--keyword=ngettext_lazy:1,2",
    "--keyword=pgettext:1c,2",
    "--keyword=npgettext:1c,2,3",
]


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


def read_po(text: str) -> list[Entry]:
    """The entries of a PO file (no msgctxt in ours), the header entry first."""
    entries: list[Entry] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        entry = Entry()
        key: tuple[str, int] | None = None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif match := re.match(r"^(msgid_plural|msgid|msgstr)(?:\[(\d+)\])? (\".*\")$", line):
                key = (match[1], int(match[2] or 0))
                append(entry, key, ast.literal_eval(match[3]))
            elif line.startswith('"') and key is not None:
                append(entry, key, ast.literal_eval(line))
        if key is not None:
            entries.append(entry)
    return entries


def append(entry: Entry, key: tuple[str, int], text: str) -> None:
    name, index = key
    if name == "msgid":
        entry.msgid += text
    elif name == "msgid_plural":
        entry.msgid_plural = (entry.msgid_plural or "") + text
    else:
        entry.msgstr[index] = entry.msgstr.get(index, "") + text


def catalogue() -> list[Entry]:
    return read_po(PO.read_text(encoding="utf-8"))


def test_the_german_catalogue_is_complete():
    """No entry is fuzzy or untranslated (msgfmt would leave either out of the .mo, and the
    page would show English), the header included; plurals have both German forms."""
    header, *entries = catalogue()
    assert header.msgid == ""
    assert "fuzzy" not in header.flags
    assert "Language: de\n" in header.msgstr[0]
    assert "Plural-Forms: nplurals=2; plural=(n != 1);" in header.msgstr[0]
    assert len(entries) > 50
    for entry in entries:
        assert "fuzzy" not in entry.flags, entry.msgid
        expected = [0, 1] if entry.msgid_plural is not None else [0]
        assert sorted(entry.msgstr) == expected, entry.msgid
        assert all(text.strip() for text in entry.msgstr.values()), entry.msgid


def test_the_compiled_catalogue_is_the_source():
    """The committed .mo holds exactly the .po's translations (it was compiled after the last
    change of the .po)."""
    with MO.open("rb") as compiled:
        mo = gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]
    expected: dict[object, str] = {}
    for entry in catalogue()[1:]:
        if entry.msgid_plural is None:
            expected[entry.msgid] = entry.msgstr[0]
        else:
            for index, text in entry.msgstr.items():
                expected[(entry.msgid, index)] = text
    assert {key: value for key, value in mo.items() if key != ""} == expected


def test_every_text_of_the_scripts_is_in_the_catalogue(tmp_path: Path):
    """xgettext over static/ (as `make messages` runs it) finds no text the catalogue lacks,
    and the catalogue keeps no text the scripts no longer use."""
    xgettext = shutil.which("xgettext")
    if xgettext is None:
        message = "xgettext is not installed (the gettext package)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    pot = tmp_path / "djangojs.pot"
    subprocess.run(  # noqa: S603 - the system's xgettext on our own files
        [
            xgettext,
            "--language=JavaScript",
            "--from-code=UTF-8",
            *XGETTEXT_KEYWORDS,
            f"--output={pot}",
            *(str(script) for script in SCRIPTS),
        ],
        check=True,
        capture_output=True,
    )
    marked = {(e.msgid, e.msgid_plural) for e in read_po(pot.read_text(encoding="utf-8"))[1:]}
    translated = {(e.msgid, e.msgid_plural) for e in catalogue()[1:]}
    assert len(marked) > 50
    assert sorted(marked - translated, key=str) == [], "missing: run `make messages`"
    assert sorted(translated - marked, key=str) == [], "no longer used: run `make messages`"


# --- the catalogue's URL ---------------------------------------------------------------------


def test_the_catalogue_speaks_german_to_a_german_browser():
    response = Client().get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    body = response.content.decode()
    assert "Verbindung wird aufgebaut" in body
    # Only the project's catalogue: not the admin's scripts' texts.
    assert "Mitternacht" not in body


def test_the_catalogue_is_english_otherwise():
    for language in ("en-US,en;q=0.9", "fr-FR", ""):
        response = Client().get("/jsi18n/", HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == 200
        assert "Verbindung" not in response.content.decode(), language


def test_the_language_cookie_wins_over_the_browser():
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    response = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Verbindung wird aufgebaut" in response.content.decode()


def cache_directives(response) -> set[str]:
    return {part.strip() for part in response["Cache-Control"].split(",")}


@pytest.mark.django_db(databases="__all__")
def test_the_catalogue_is_cached_publicly_even_for_a_signed_in_user(team_factory):
    """Loaded by every page: browsers keep it for an hour, per language, then revalidate it with
    its ETag. It holds nothing personal, so no-store (every signed-in page's) is not added."""
    client = Client()
    client.force_login(facilitator_of(team_factory("Alpha")).user)
    response = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 200
    assert cache_directives(response) == {"public", "max-age=3600"}
    vary = {part.strip().lower() for part in response["Vary"].split(",")}
    assert {"accept-language", "cookie"} <= vary
    assert response["ETag"]
    again = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="de", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert again.content == b""
    # The English catalogue is another script with another tag.
    english = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en", HTTP_IF_NONE_MATCH=response["ETag"])
    assert english.status_code == 200
    assert english["ETag"] != response["ETag"]
    # The pages themselves stay unstored.
    assert "no-store" in client.get("/teams/")["Cache-Control"]


@pytest.mark.django_db(databases="__all__")
def test_every_page_loads_the_catalogue_before_its_scripts():
    """Same origin (the CSP's script-src 'self'), deferred in order before app.js and the
    table's modules, which call gettext."""
    page = Client().get("/accounts/login/").content.decode()
    catalogue_at = page.index('<script src="/jsi18n/" defer></script>')
    assert catalogue_at < page.index("js/app.js")
