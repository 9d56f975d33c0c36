"""OpenAPI: every operation documents its problem+json error responses."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from api.drf import NON_BLANK_PATTERN
from api.problems import PROBLEM_CONTENT_TYPE


class ProblemSerializer(serializers.Serializer):
    """An error (RFC 9457). ``code`` is stable; ``errors`` lists invalid fields."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(required=False, child=serializers.JSONField())

    class Meta:
        ref_name = "Problem"


ERROR_DESCRIPTIONS = {
    "400": "Invalid input (`invalid`) or a rule of the table (`not_in_deck`, ...).",
    "401": "No API key, or one that is unknown, revoked or whose creator left the team "
    "(`not_authenticated`, `invalid_key`).",
    "403": "The key lacks the scope, or the member's role does not allow it.",
    "404": "No such object in the caller's teams.",
    "409": "The table or backlog is not in a state that allows it, a team's limit is reached "
    "(`too_many_webhooks`), or the Idempotency-Key is in use (`idempotency_in_progress`).",
    "422": "The Idempotency-Key was used with a different request (`idempotency_key_reused`), "
    "an upsert names an external key twice (`repeated_external_key`), an import's rows "
    "have errors (`invalid_rows`, each row's errors in `rows`) or its CSV cannot be read "
    "(`no_title_column`, `bad_csv`, `bad_encoding`, `empty`, `too_large`, ...), or a deck "
    "breaks a rule of decks (`invalid_deck`: labels unique, two cards besides ?, ☕, ∞ and "
    "pass, a new name).",
    "429": "Too many requests; see Retry-After.",
}


class ProblemAutoSchema(AutoSchema):
    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        # A serializer that takes exactly one of some fields (its ``exactly_one_of``): one
        # ``required`` per field under oneOf, so a body with none or two of them is invalid.
        if direction == "request" and (names := getattr(serializer, "exactly_one_of", ())):
            schema["oneOf"] = [{"required": [name]} for name in names]
        return schema

    def _get_request_for_media_type(self, serializer, direction="request"):
        schema, required = super()._get_request_for_media_type(serializer, direction)
        # A view that takes a body in several media types, one of them plain text (a CSV
        # import), says so itself: drf-spectacular takes a text body for an optional one.
        return schema, (
            required
            or bool(getattr(serializer, "exactly_one_of", ()))
            or getattr(self.view, "request_body_required", False)
        )

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # DRF trims a text field and refuses it blank (api.drf.InputSerializer): "   " is as
        # invalid as "", so the schema asks for a character that is not a space (a search).
        if (
            direction == "request"
            and type(field) is serializers.CharField
            and not field.allow_blank
            and field.trim_whitespace
            and schema.get("type") == "string"
            and "pattern" not in schema
        ):
            schema["pattern"] = NON_BLANK_PATTERN
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response" or not self.path.startswith("/api/v1/"):
            return responses
        codes = ["400", "401", "403", "404", "429"]
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes += ["409"]
        if self.method == "POST":
            codes += ["422"]
        # A read that a state can refuse (the votes of a round still being voted) says so.
        codes += [c for c in getattr(self.view, "problem_statuses", ()) if c not in codes]
        for code in codes:
            if code in responses:
                continue
            response = self._get_response_for_code(
                ProblemSerializer, code, media_types=[PROBLEM_CONTENT_TYPE]
            )
            response["description"] = ERROR_DESCRIPTIONS[code]
            responses[code] = response
        return responses
