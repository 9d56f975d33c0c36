"""REST API of imports and exports: stories from JSON rows or a CSV body (with a dry run that
writes nothing), the backlog and the history as CSV or JSON, streamed.

The same parsers (stories.imports), service (stories.services.stories_import) and writers
(stories.exports, rooms.exports) as the pages, so an API import and a page import of the same
rows give the same backlog.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from api.drf import IDEMPOTENCY_KEY, InputSerializer, TeamApi
from api.idempotency import idempotent
from integrations.models import Scope
from rooms import exports as history_exports
from stories import exports, imports, selectors, services
from stories.imports import MAX_IMPORT_ROWS


class RowsRefused(imports.ImportRefused):
    """Rows with errors: a problem (422 ``invalid_rows``) that lists them. Raised, not returned,
    so an Idempotency-Key keeps nothing of it (api.idempotency) and a fixed retry runs."""

    def __init__(self, rows: list[dict]) -> None:
        super().__init__(
            f"{len(rows)} rows have errors; nothing was imported.", code="invalid_rows"
        )
        self.problem_extra = {"rows": rows}


class CsvParser(BaseParser):
    """A ``text/csv`` body, read as an uploaded file is: UTF-8 (a BOM allowed), size-capped."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        data = stream.read(imports.MAX_IMPORT_BYTES + 1) if stream is not None else b""
        return imports.decode(data)


class ImportItemSerializer(InputSerializer):
    # Blank and over-long values pass here: stories.imports reports them per row, as the pages do.
    title = serializers.CharField(required=False, allow_blank=True)
    external_key = serializers.CharField(required=False, allow_blank=True)
    url = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    estimate = serializers.CharField(required=False, allow_blank=True)

    class Meta:
        ref_name = "StoryImportItem"


class ImportInputSerializer(InputSerializer):
    stories = serializers.ListField(
        child=ImportItemSerializer(), min_length=1, max_length=MAX_IMPORT_ROWS
    )

    class Meta:
        ref_name = "StoryImportInput"


ACTIONS = ("create", "update", "unchanged", "skip", "created", "updated")


class ImportRowSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="The row's line in the CSV, or its 1-based index.")
    action = serializers.ChoiceField(
        choices=ACTIONS,
        help_text="Dry run: create, update, unchanged or skip (the row has errors); "
        "import: created, updated or unchanged.",
    )
    errors = serializers.ListField(child=serializers.CharField())
    story_id = serializers.UUIDField(allow_null=True)
    external_key = serializers.CharField()
    title = serializers.CharField()

    class Meta:
        ref_name = "StoryImportRow"


class ImportOutputSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    invalid = serializers.IntegerField()
    rows = ImportRowSerializer(many=True)

    class Meta:
        ref_name = "StoryImportOutput"


DRY_RUN = OpenApiParameter(
    "dry_run", OpenApiTypes.BOOL, description="Check and preview the rows; write nothing."
)


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "1", "false", "0"):
        raise serializers.ValidationError({name: ["Use true or false."]})
    return value in ("true", "1")


def _row(row: imports.ImportRow, action: str, story_id=None) -> dict:
    return {
        "line": row.line,
        "action": action,
        "errors": row.errors,
        "story_id": story_id,
        "external_key": row.external_key,
        "title": row.title,
    }


def _counts(actions: list[str]) -> dict[str, int]:
    return {
        "created": sum(a in ("create", "created") for a in actions),
        "updated": sum(a in ("update", "updated") for a in actions),
        "unchanged": actions.count("unchanged"),
        "invalid": actions.count("skip"),
    }


class StoryImportApi(TeamApi):
    """Import stories: JSON rows, or a CSV file as the body (the pages' format)."""

    parser_classes = [JSONParser, CsvParser]
    request_body_required = True  # api.schema: JSON rows or CSV text, never nothing

    @extend_schema(
        parameters=[DRY_RUN, IDEMPOTENCY_KEY],
        request={
            "application/json": ImportInputSerializer,
            "text/csv": OpenApiTypes.STR,
        },
        responses={200: ImportOutputSerializer},
        description=f"Import up to {MAX_IMPORT_ROWS} stories in one transaction: all or none. "
        "A row whose key is already in the backlog updates that story; a row without a key is "
        "a new story. A row with errors refuses the import (422 `invalid_rows`, each row's "
        "errors in `rows`); `dry_run=true` reports every row and writes nothing. CSV: a header "
        "row naming the columns (title, key, link, description, estimate; docs/api.md).",
    )
    @idempotent
    def post(self, request: Request, slug: str) -> Response:
        membership = self.member(request, slug, Scope.WRITE)
        dry_run = _flag(request, "dry_run")
        if request.content_type.startswith(CsvParser.media_type):
            # An empty body is no text to DRF (it parses nothing): the same refusal as "".
            rows = imports.parse_csv(request.data if isinstance(request.data, str) else "")
        else:
            serializer = ImportInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            rows = imports.rows_from_items([dict(i) for i in serializer.validated_data["stories"]])
        if dry_run or any(not row.valid for row in rows):
            preview = selectors.import_preview(team=membership.team, rows=rows)
            if not dry_run:
                bad = [_row(row, action) for row, action in preview if action == "skip"]
                raise RowsRefused(bad)
            body = [_row(row, action) for row, action in preview]
            return Response({"dry_run": True, **_counts([r["action"] for r in body]), "rows": body})
        result = services.stories_import(membership=membership, rows=rows)
        body = [
            _row(row, action, story.pk)
            for row, (action, story) in zip(rows, result.actions, strict=True)
        ]
        return Response({"dry_run": False, **_counts([r["action"] for r in body]), "rows": body})


class IgnoreAccept(BaseContentNegotiation):
    """An export's media type is its ``as`` parameter; problems are JSON whatever the Accept
    header asks (DRF would answer 406 to ``Accept: text/csv``, which no renderer makes)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


EXPORT_AS = OpenApiParameter("as", str, enum=["json", "csv"], description="Default json.")


def _export_kind(request: Request) -> str:
    kind = request.query_params.get("as", "json")
    if kind not in ("json", "csv"):
        raise serializers.ValidationError({"as": ["Use json or csv."]})
    return kind


class ExportStorySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    external_key = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField()
    estimate = serializers.CharField()
    estimated_at = serializers.DateTimeField(allow_null=True)
    position = serializers.IntegerField()
    description = serializers.CharField()

    class Meta:
        ref_name = "BacklogExportStory"


class BacklogExportSerializer(serializers.Serializer):
    team = serializers.CharField()
    exported_at = serializers.DateTimeField()
    stories = ExportStorySerializer(many=True)

    class Meta:
        ref_name = "BacklogExport"


class BacklogExportApi(TeamApi):
    """The backlog in its order, streamed. The CSV (columns key, title, link, estimate,
    estimated_at, position, description; formula-like cells start with ') imports as it is."""

    content_negotiation_class = IgnoreAccept

    @extend_schema(
        parameters=[EXPORT_AS],
        responses={
            (200, "application/json"): BacklogExportSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request, slug: str):
        team = self.member(request, slug).team
        return exports.backlog_response(request._request, team, _export_kind(request))


class ExportVoteSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    voter = serializers.CharField()
    value = serializers.CharField()
    cast_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "HistoryExportVote"


class ExportRoundSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    story_id = serializers.UUIDField(allow_null=True)
    story_key = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField()
    status = serializers.CharField()
    deck = serializers.CharField()
    estimate = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    revealed_at = serializers.DateTimeField(allow_null=True)
    accepted_at = serializers.DateTimeField(allow_null=True)
    stats = serializers.JSONField(allow_null=True)
    votes = ExportVoteSerializer(many=True)

    class Meta:
        ref_name = "HistoryExportRound"


class HistoryExportSerializer(serializers.Serializer):
    team = serializers.CharField()
    exported_at = serializers.DateTimeField()
    search = serializers.CharField()
    rounds = ExportRoundSerializer(many=True)

    class Meta:
        ref_name = "HistoryExport"


class HistoryExportApi(TeamApi):
    """Finished rounds, newest first, with their votes (who, what, when) and statistics,
    streamed; ``q`` keeps the rounds whose title or story key contains it. CSV: a line per
    vote."""

    content_negotiation_class = IgnoreAccept

    @extend_schema(
        parameters=[
            EXPORT_AS,
            OpenApiParameter("q", str, description="Text the title or story key contains."),
        ],
        responses={
            (200, "application/json"): HistoryExportSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request, slug: str):
        team = self.member(request, slug).team
        search = request.query_params.get("q", "").strip()[:200]
        kind = _export_kind(request)
        return history_exports.history_response(request._request, team, kind, search)
