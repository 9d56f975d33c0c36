"""REST API of the directory: the caller's teams."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.access import caller_memberships
from api.drf import TeamApi


class TeamOutputSerializer(serializers.Serializer):
    slug = serializers.SlugField(source="team.slug")
    name = serializers.CharField(source="team.name")
    region = serializers.CharField(source="team.region")
    role = serializers.CharField()

    class Meta:
        ref_name = "Team"


class TeamListApi(APIView):
    """The teams the caller belongs to (a key: its own team)."""

    @extend_schema(operation_id="teams_list", responses=TeamOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(TeamOutputSerializer(caller_memberships(request), many=True).data)


class TeamDetailApi(TeamApi):
    @extend_schema(operation_id="teams_retrieve", responses=TeamOutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(TeamOutputSerializer(self.member(request, slug)).data)
