"""Shared pieces of the REST API's edges: pagination and the team-scoped base view."""

from __future__ import annotations

import re
from collections.abc import Mapping

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import Membership
from api.access import caller_membership
from api.idempotency import KEY_PATTERN
from integrations.models import Scope


class StrictPageSize:
    """``page_size`` as documented (an integer from 1 to ``max_page_size``) or 400 ``invalid``:
    DRF would quietly use another size for ``page_size=0``, ``=-1``, ``=1000`` or ``=abc``."""

    page_size: int
    page_size_query_param = "page_size"
    max_page_size: int

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError(
                {self.page_size_query_param: [f"Use an integer from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)  # type: ignore[misc]
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class PagePagination(StrictPageSize, PageNumberPagination):
    page_size = 50
    max_page_size = 200
    last_page_strings = ()  # the schema says an integer: "last" is no page number

    def get_page_number(self, request: Request, paginator) -> int:
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationError({self.page_query_param: ["Use an integer from 1."]})
        return int(raw)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters


class EstimateCursorPagination(StrictPageSize, CursorPagination):
    page_size = 100
    max_page_size = 500
    ordering = ("estimated_at", "id")


# A character that is not blank to Python's str.strip() (which DRF trims with; it also takes
# \x1c-\x1f and \x85 for spaces) nor to the schema's ECMA-262 \s (which also takes \ufeff): text
# without one is blank on both sides.
NON_BLANK_PATTERN = r"[^\s\x1c-\x1f\x85\ufeff]"
_NON_BLANK = re.compile(NON_BLANK_PATTERN)


def is_blank(text: str) -> bool:
    return _NON_BLANK.search(text) is None


# The JSON type a field's value must have, most specific first.
_JSON_TYPES: tuple[tuple[type[serializers.Field], type, str], ...] = (
    (serializers.BooleanField, bool, "a boolean"),
    (serializers.IntegerField, int, "an integer"),
    (serializers.CharField, str, "a string"),
    (serializers.UUIDField, str, "a string"),
    (serializers.ListField, list, "an array"),
    (serializers.DictField, dict, "an object"),
    (serializers.BaseSerializer, dict, "an object"),
)


def _type_error(field: serializers.Field, value: object) -> str | None:
    for field_class, json_type, name in _JSON_TYPES:
        if not isinstance(field, field_class):
            continue
        if json_type is int and isinstance(value, float) and value.is_integer():
            return None  # 2.0 is an integer to JSON Schema
        if isinstance(value, json_type) and not (json_type is int and isinstance(value, bool)):
            return None
        return f"Must be {name}."
    return None


class InputSerializer(serializers.Serializer):
    """A request body read as the schema describes it: each value of the JSON type its field
    says (DRF would take 5 for "5", "5" for 5 and "yes" for true), text that DRF trims
    refused as blank when it holds nothing but spaces by either reckoning (NON_BLANK_PATTERN),
    and text longer than its maxLength refused before it is trimmed."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors: dict[str, list[str]] = {}
            for name, field in self.fields.items():
                value = data.get(name)
                if field.read_only or value is None:
                    continue
                if message := _type_error(field, value):
                    errors[name] = [message]
                elif (
                    type(field) is serializers.CharField
                    and field.trim_whitespace
                    and not field.allow_blank
                    and is_blank(value)
                ):
                    errors[name] = [str(field.error_messages["blank"])]
                elif (
                    isinstance(field, serializers.CharField)
                    and field.max_length is not None
                    and isinstance(value, str)
                    and len(value) > field.max_length
                ):
                    # DRF measures after trimming; the schema's maxLength counts what was sent.
                    message = field.error_messages["max_length"].format(max_length=field.max_length)
                    errors[name] = [str(message)]
            if errors:
                # Report the other fields' errors too, as DRF does.
                try:
                    super().to_internal_value(data)
                except ValidationError as exc:
                    if isinstance(exc.detail, dict):
                        errors = {**exc.detail, **errors}
                raise ValidationError(errors)
        return super().to_internal_value(data)


IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type={"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Repeat a POST safely: the first response is replayed for the same key and body "
    "(24 h); a different body with the same key answers 422. 1 to 255 printable ASCII "
    "characters, no space at either end (else 400 `invalid_idempotency_key`).",
)


class TeamApi(APIView):
    """A view under ``/api/v1/teams/<slug>/``: every object it touches belongs to that team."""

    def member(self, request: Request, slug: str, scope: str = Scope.READ) -> Membership:
        return caller_membership(request, slug, scope)

    def paginate(
        self,
        request: Request,
        queryset,
        serializer_class,
        paginator_class: type[BasePagination] | None = None,
    ):
        # A view's own pagination_class, not a default on TeamApi: the schema would then take
        # every list a view answers (the votes of a round) for a paginated one.
        paginator = (paginator_class or getattr(self, "pagination_class", PagePagination))()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)
