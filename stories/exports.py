"""Exports as streamed responses: CSV safe to open in a spreadsheet, and JSON.

The backlog's export is here; the history's (rooms.exports) uses the same writers. A response
is produced page by page from the database (selectors read in keyset pages), so a large team's
export never sits whole in memory: an async iterator under ASGI (Django would otherwise read a
synchronous one to its end before sending anything), a plain one under WSGI.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from stories import selectors
from stories.imports import FORMULA_START

if TYPE_CHECKING:
    from accounts.models import Team
    from stories.models import Story

CSV_TYPE = "text/csv; charset=utf-8"
JSON_TYPE = "application/json"
# Spreadsheets read a UTF-8 file as such only when it starts with a byte order mark; imports
# accept it.
BOM = "\ufeff"

BACKLOG_COLUMNS = ("key", "title", "link", "estimate", "estimated_at", "position", "description")


def csv_cell(value: Any) -> str:
    """A cell as text, with a ' before what a spreadsheet would run as a formula (= + - @, a
    tab or a carriage return first; CSV injection). stories.imports drops it on the way in."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if FORMULA_START.match(text) else text


def csv_lines(header: Iterable[str], pages: Iterator[list[list[Any]]]) -> Iterator[str]:
    """The CSV text, a page of rows per chunk, the header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(list(header))
    yield BOM + flush()
    for rows in pages:
        writer.writerows([csv_cell(cell) for cell in row] for row in rows)
        yield flush()


def json_document(head: dict[str, Any], name: str, pages: Iterator[list[dict]]) -> Iterator[str]:
    """``{**head, name: [...]}`` with the list's items a page per chunk."""
    opening = json.dumps(head, cls=DjangoJSONEncoder)[:-1]
    yield f'{opening}{", " if head else ""}"{name}": ['
    first = True
    for items in pages:
        for item in items:
            yield ("\n" if first else ",\n") + json.dumps(item, cls=DjangoJSONEncoder)
            first = False
    yield "\n]}\n"


def _aiterate(chunks: Iterator[str]) -> AsyncIterator[str]:
    """Pull each chunk on a thread: the reads it makes never block the event loop."""
    sentinel = object()
    pull = sync_to_async(lambda: next(chunks, sentinel), thread_sensitive=True)

    async def iterate() -> AsyncIterator[str]:
        while (chunk := await pull()) is not sentinel:
            yield chunk  # type: ignore[misc]

    return iterate()


def streamed(
    request: HttpRequest, chunks: Callable[[], Iterator[str]], *, content_type: str, filename: str
) -> StreamingHttpResponse:
    iterator = chunks()
    content = _aiterate(iterator) if isinstance(request, ASGIRequest) else iterator
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def filename(team: Team, what: str, extension: str) -> str:
    return f"{team.slug}-{what}-{timezone.now():%Y%m%d-%H%M}.{extension}"


def story_record(story: Story) -> dict[str, Any]:
    return {
        "id": str(story.pk),
        "external_key": story.external_key,
        "title": story.title,
        "url": story.url,
        "estimate": story.estimate,
        "estimated_at": story.estimated_at,
        "position": story.position,
        "description": story.description,
    }


def backlog_csv(team: Team) -> Iterator[str]:
    pages = (
        [
            [s.external_key, s.title, s.url, s.estimate, s.estimated_at, s.position, s.description]
            for s in stories
        ]
        for stories in selectors.story_export_rows(team=team)
    )
    return csv_lines(BACKLOG_COLUMNS, pages)


def backlog_json(team: Team) -> Iterator[str]:
    head = {"team": team.slug, "exported_at": timezone.now()}
    pages = ([story_record(s) for s in page] for page in selectors.story_export_rows(team=team))
    return json_document(head, "stories", pages)


def respond(
    request: HttpRequest,
    team: Team,
    what: str,
    kind: str,
    *,
    as_csv: Callable[[], Iterator[str]],
    as_json: Callable[[], Iterator[str]],
) -> StreamingHttpResponse:
    """The export ``what`` of ``team`` as ``kind`` (csv or json), streamed as a download."""
    if kind == "csv":
        chunks, content_type = as_csv, CSV_TYPE
    else:
        chunks, content_type = as_json, JSON_TYPE
    return streamed(request, chunks, content_type=content_type, filename=filename(team, what, kind))


def backlog_response(request: HttpRequest, team: Team, kind: str) -> StreamingHttpResponse:
    return respond(
        request,
        team,
        "backlog",
        kind,
        as_csv=lambda: backlog_csv(team),
        as_json=lambda: backlog_json(team),
    )
