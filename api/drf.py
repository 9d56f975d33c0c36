"""Shared pieces of the REST API's edges: pagination and the team-scoped base view."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import Membership
from api.access import caller_membership
from integrations.models import Scope


class PagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class EstimateCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("estimated_at", "id")


IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Repeat a POST safely: the first response is replayed for the same key and body "
    "(24 h); a different body with the same key answers 422.",
)


class TeamApi(APIView):
    """A view under ``/api/v1/teams/<slug>/``: every object it touches belongs to that team."""

    def member(self, request: Request, slug: str, scope: str = Scope.READ) -> Membership:
        return caller_membership(request, slug, scope)

    def paginate(
        self, request: Request, queryset, serializer_class, paginator_class=PagePagination
    ):
        paginator = paginator_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)
