"""Exports of a team's history (finished rounds, their votes and statistics), streamed with the
backlog export's writers (stories.exports): CSV safe to open in a spreadsheet, and JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from rooms import selectors
from rooms.selectors import RoundRecord
from stories import exports

if TYPE_CHECKING:
    from accounts.models import Team

# One line per vote (who estimated what, when), each with its round; a round without votes
# has one line with the voter columns empty.
HISTORY_COLUMNS = (
    "round_id",
    "revealed_at",
    "story_key",
    "title",
    "link",
    "status",
    "deck",
    "accepted_estimate",
    "accepted_at",
    "votes",
    "mean",
    "median",
    "mode",
    "min",
    "max",
    "consensus",
    "voter",
    "vote",
    "voted_at",
)


def _lines(record: RoundRecord) -> list[list[Any]]:
    stats = record.stats or {}
    head = [
        record.id,
        record.revealed_at,
        record.story_key,
        record.title,
        record.story_url,
        record.status,
        record.deck,
        record.estimate,
        record.accepted_at,
        stats.get("votes", len(record.votes)),
        stats.get("mean"),
        stats.get("median"),
        " ".join(stats.get("mode") or []),
        stats.get("min"),
        stats.get("max"),
        {True: "yes", False: "no"}.get(stats.get("consensus"), ""),  # type: ignore[arg-type]
    ]
    if not record.votes:
        return [[*head, "", "", ""]]
    return [[*head, v.voter_name, v.value, v.cast_at] for v in record.votes]


def round_document(record: RoundRecord) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "story_id": str(record.story_id) if record.story_id else None,
        "story_key": record.story_key,
        "title": record.title,
        "url": record.story_url,
        "status": record.status,
        "deck": record.deck,
        "estimate": record.estimate,
        "started_at": record.started_at,
        "revealed_at": record.revealed_at,
        "accepted_at": record.accepted_at,
        "stats": record.stats,
        "votes": [
            {"user_id": v.user_id, "voter": v.voter_name, "value": v.value, "cast_at": v.cast_at}
            for v in record.votes
        ],
    }


def history_csv(team: Team, search: str = "") -> Iterator[str]:
    pages = (
        [line for record in records for line in _lines(record)]
        for records in selectors.history_pages(team=team, search=search)
    )
    return exports.csv_lines(HISTORY_COLUMNS, pages)


def history_json(team: Team, search: str = "") -> Iterator[str]:
    head = {"team": team.slug, "exported_at": timezone.now(), "search": search}
    pages = (
        [round_document(r) for r in records]
        for records in selectors.history_pages(team=team, search=search)
    )
    return exports.json_document(head, "rounds", pages)


def history_response(
    request: HttpRequest, team: Team, kind: str, search: str = ""
) -> StreamingHttpResponse:
    return exports.respond(
        request,
        team,
        "history",
        kind,
        as_csv=lambda: history_csv(team, search),
        as_json=lambda: history_json(team, search),
    )
