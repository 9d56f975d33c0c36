"""Reading stories to import: a CSV file or a pasted list, parsed and checked row by row.

Pure: no ORM, no I/O. The pages and the API parse with these functions, show each row with its
errors, and hand the rows to ``stories.services.stories_import``, which checks them again and
writes the valid ones in one transaction.

CSV: a header row names the columns (any order, any case; unknown columns are ignored, so an
export of this server imports as it is): ``title`` (required; also ``summary``), ``key`` (also
``external_key``, ``issue key``), ``link`` (also ``url``), ``description``, ``estimate`` (also
``story points``). Comma, semicolon or tab separated (read from the header).

A pasted list: one story per line. ``PROJ-123 Title`` takes a leading key of the tracker form
(letters, a dash, digits); ``Title<TAB>https://link`` takes a link after a tab; both combine.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext

from pokerproject.errors import DomainError, gettext_noop

MAX_IMPORT_BYTES = 1024 * 1024
MAX_IMPORT_ROWS = 500
MAX_TITLE = 200
MAX_KEY = 64
MAX_URL = 500
MAX_ESTIMATE = 16
MAX_DESCRIPTION = 10_000

CSV = "csv"
LIST = "list"
FORMATS = (CSV, LIST)

# Header names (lower case, spaces and dashes as underscores) -> the story field they fill.
COLUMNS = {
    "title": "title",
    "summary": "title",
    "key": "external_key",
    "external_key": "external_key",
    "issue_key": "external_key",
    "link": "url",
    "url": "url",
    "description": "description",
    "estimate": "estimate",
    "story_points": "estimate",
}
FIELDS = ("title", "external_key", "url", "description", "estimate")

# What a spreadsheet would run as a formula. Exports put a ' before such a cell
# (stories.exports.csv_cell); reading, one leading ' before them is dropped again.
FORMULA_START = re.compile(r"^'*[=+\-@\t\r]")
_ESCAPED_FORMULA = re.compile(r"^'+[=+\-@\t\r]")
_LIST_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9_]*-\d+):?\s+(\S.*)$")
_NO_SPACE = re.compile(r"^\S+$")
_validate_url = URLValidator(schemes=["http", "https"])


class ImportRefused(DomainError):
    """A whole import refused (too large, not UTF-8, not CSV, rows with errors); ``code`` says
    why."""


@dataclass
class ImportRow:
    """One story to import: ``line`` in the source, the fields it gives, what is wrong with it."""

    line: int
    values: dict[str, str]
    errors: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def __getattr__(self, name: str) -> str:
        # row.title, row.external_key, ... for the templates: "" when the source lacks it.
        if name in FIELDS:
            return self.values.get(name, "")
        raise AttributeError(name)

    def item(self) -> dict[str, Any]:
        """The row as stories.services.stories_upsert takes it."""
        return {"external_key": "", **self.values}


def decode(data: bytes) -> str:
    """The text of an uploaded file: UTF-8, with or without a byte order mark."""
    if len(data) > MAX_IMPORT_BYTES:
        raise too_large()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(
            gettext_noop("The file is not UTF-8 text. Save it as CSV UTF-8 and try again."),
            code="bad_encoding",
        ) from None
    return text


def too_large() -> ImportRefused:
    return ImportRefused(
        gettext_noop("The file is larger than %(size)s KiB; split it."),
        code="too_large",
        params={"size": MAX_IMPORT_BYTES // 1024},
    )


def _check_text(text: str) -> str:
    if len(text.encode()) > MAX_IMPORT_BYTES:
        raise too_large()
    if "\x00" in text:
        raise ImportRefused(
            gettext_noop("The text holds NUL characters: is it a spreadsheet rather than CSV?"),
            code="not_text",
        )
    return text.removeprefix("\ufeff")


def _too_many(count: int) -> None:
    if count > MAX_IMPORT_ROWS:
        raise ImportRefused(
            gettext_noop("%(count)s stories: at most %(max)s per import; split the file."),
            code="too_many_rows",
            params={"count": count, "max": MAX_IMPORT_ROWS},
        )


def unescape_cell(value: str) -> str:
    """Drop the ' an export put before a cell a spreadsheet would run as a formula."""
    return value[1:] if _ESCAPED_FORMULA.match(value) else value


def _header_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def parse_csv(text: str) -> list[ImportRow]:
    text = _check_text(text)
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise ImportRefused(gettext_noop("The file is empty."), code="empty")
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        columns = [COLUMNS.get(_header_key(name)) for name in header]
        if "title" not in columns:
            raise ImportRefused(
                gettext_noop(
                    "The first row must name the columns, one of them title "
                    "(also key, link, description, estimate)."
                ),
                code="no_title_column",
            )
        rows: list[ImportRow] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            _too_many(len(rows) + 1)
            values: dict[str, str] = {}
            for column, cell in zip(columns, cells, strict=False):
                if column is not None and column not in values:
                    values[column] = unescape_cell(cell).strip()
            rows.append(ImportRow(line=reader.line_num, values=values))
    except csv.Error as exc:
        raise ImportRefused(
            gettext_noop("Line %(line)s is not valid CSV: %(error)s."),
            code="bad_csv",
            params={"line": reader.line_num, "error": exc},
        ) from None
    return validate(rows)


def parse_list(text: str) -> list[ImportRow]:
    text = _check_text(text)
    rows: list[ImportRow] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        _too_many(len(rows) + 1)
        values: dict[str, str] = {}
        title, tab, link = line.partition("\t")
        if tab:
            values["url"] = link.strip()
        match = _LIST_KEY.match(title.strip())
        if match:
            values["external_key"], title = match.group(1), match.group(2)
        values["title"] = title.strip()
        rows.append(ImportRow(line=number, values=values))
    if not rows:
        raise ImportRefused(gettext_noop("The list is empty."), code="empty")
    return validate(rows)


def parse(text: str, kind: str) -> list[ImportRow]:
    if kind == CSV:
        return parse_csv(text)
    if kind == LIST:
        return parse_list(text)
    raise ImportRefused(
        gettext_noop("Import from %(formats)s."),
        code="invalid",
        params={"formats": " / ".join(FORMATS)},
    )


def row_errors(values: dict[str, str]) -> list[str]:
    """What keeps one story from being imported (duplicates are validate's)."""
    errors = []
    title = values.get("title", "")
    if not title:
        errors.append(gettext("The title is missing."))
    elif len(title) > MAX_TITLE:
        errors.append(gettext("The title is longer than %(max)s characters.") % {"max": MAX_TITLE})
    key = values.get("external_key", "")
    if len(key) > MAX_KEY:
        errors.append(gettext("The key is longer than %(max)s characters.") % {"max": MAX_KEY})
    elif key and not _NO_SPACE.match(key):
        errors.append(gettext("The key may not contain spaces."))
    url = values.get("url", "")
    if url:
        try:
            if len(url) > MAX_URL:
                raise ValidationError("too long")
            _validate_url(url)
        except ValidationError:
            errors.append(
                gettext("The link is not an http(s) URL of at most %(max)s characters: %(url)s")
                % {"max": MAX_URL, "url": url[:80]}
            )
    estimate = values.get("estimate", "")
    if estimate and (len(estimate) > MAX_ESTIMATE or not _NO_SPACE.match(estimate)):
        errors.append(
            gettext("The estimate is not a card: at most %(max)s characters, no spaces.")
            % {"max": MAX_ESTIMATE}
        )
    if len(values.get("description", "")) > MAX_DESCRIPTION:
        errors.append(
            gettext("The description is longer than %(max)s characters.") % {"max": MAX_DESCRIPTION}
        )
    if any(char < " " and char not in "\t\n\r" for value in values.values() for char in value):
        errors.append(gettext("A field holds control characters."))
    return errors


def validate(rows: list[ImportRow]) -> list[ImportRow]:
    """Set each row's errors: its own, and a key that an earlier row already names."""
    _too_many(len(rows))
    seen: dict[str, int] = {}
    for row in rows:
        row.errors = row_errors(row.values)
        key = row.values.get("external_key", "")
        if key in seen:
            row.errors.append(
                gettext("The key %(key)s repeats line %(line)s.") % {"key": key, "line": seen[key]}
            )
        elif key:
            seen[key] = row.line
    return rows


def rows_from_items(items: list[dict[str, Any]]) -> list[ImportRow]:
    """Rows from JSON objects (the API): the fields of FIELDS, as text; others ignored."""
    _too_many(len(items))
    rows = []
    for number, item in enumerate(items, start=1):
        values = {
            name: str(item[name]).strip()
            for name in FIELDS
            if isinstance(item.get(name), str | int | float) and not isinstance(item[name], bool)
        }
        rows.append(ImportRow(line=number, values=values))
    return validate(rows)
