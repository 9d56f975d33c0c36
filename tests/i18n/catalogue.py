"""A reader of the gettext catalogues the tests check: just what a .po file as makemessages and
msgmerge write it holds (contexts, plurals, flags, obsolete entries)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

GERMAN_PO = Path(settings.BASE_DIR) / "locale" / "de" / "LC_MESSAGES" / "django.po"
GERMAN_MO = GERMAN_PO.with_suffix(".mo")

_LINE = re.compile(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?) (\".*\")$")


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: str = ""
    plurals: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)

    @property
    def translations(self) -> list[str]:
        if self.msgid_plural:
            return [self.plurals[i] for i in sorted(self.plurals)]
        return [self.msgstr]


def read(path: Path) -> list[Entry]:
    """The entries of a .po file, the header (msgid "") included."""
    entries: list[Entry] = []
    entry: Entry | None = None
    last: tuple[str, int | None] = ("", None)
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            if entry is not None:
                entries.append(entry)
            entry = None
            continue
        if entry is None:
            entry = Entry()
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match:
            name, index = match.group(1), match.group(2)
            value = ast.literal_eval(match.group(3))
            last = (name.split("[")[0], int(index) if index is not None else None)
            _append(entry, last, value, start=True)
        elif line.startswith('"'):
            _append(entry, last, ast.literal_eval(line), start=False)
    if entry is not None:
        entries.append(entry)
    return entries


def _append(entry: Entry, where: tuple[str, int | None], value: str, *, start: bool) -> None:
    name, index = where
    if name == "msgstr" and index is not None:
        entry.plurals[index] = ("" if start else entry.plurals[index]) + value
        return
    current = None if start else getattr(entry, name)
    setattr(entry, name, (current or "") + value)


def messages(path: Path) -> list[Entry]:
    """The translatable entries: no header, no obsolete ones."""
    return [entry for entry in read(path) if entry.msgid and not entry.obsolete]
