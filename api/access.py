"""Who is calling the API and what they may touch: the one place the team filter lives.

A session user acts through their membership of the team in the URL. An API key acts for its own
team only, as a facilitator (``write``) or an observer (``read``), attributed to the member who
created it, and never with more than that member's current role (a key is refused altogether
once its creator is no member: integrations.services.api_key_use). Any other team answers 404,
whether it exists or not, so slugs cannot be probed.
"""

from __future__ import annotations

from django.http import Http404
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from accounts.models import Membership, Team
from accounts.roles import Role
from accounts.selectors import NotAMember, membership_get
from integrations.models import ApiKey, Scope


class InsufficientScope(PermissionDenied):
    default_code = "insufficient_scope"


def api_key_of(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


def caller_id(request: Request) -> str:
    key = api_key_of(request)
    return f"key:{key.pk}" if key is not None else f"user:{request.user.pk}"


# From the role that may do the least to the one that may do the most.
_RANK = {Role.OBSERVER: 0, Role.VOTER: 1, Role.FACILITATOR: 2}


def _lower(a: Role, b: Role) -> Role:
    return a if _RANK[a] <= _RANK[b] else b


def key_membership(key: ApiKey) -> Membership:
    """The unsaved membership a key acts as: its team, its creator's id, a role by scope capped
    by the creator's current role (an observer's key with ``write`` writes nothing)."""
    role = Role.FACILITATOR if key.has_scope(Scope.WRITE) else Role.OBSERVER
    creator = key.creator_role if key.creator_role in _RANK else Role.OBSERVER
    return Membership(team=key.team, user_id=key.created_by_id, role=_lower(role, Role(creator)))


def caller_membership(request: Request, slug: str, scope: str) -> Membership:
    """The caller's membership of team ``slug``, with ``scope`` checked for keys.

    Raises Http404 for a team the caller cannot see and InsufficientScope for a key without
    the scope the operation needs.
    """
    key = api_key_of(request)
    if key is not None:
        if key.team.slug != slug:
            raise Http404("No such team.")
        if not key.has_scope(scope):
            # The scope's plain name ("write"), as keys are created with, not its enum repr.
            raise InsufficientScope(f"This API key lacks the {Scope(scope).value} scope.")
        return key_membership(key)
    try:
        return membership_get(team_slug=slug, user=request.user)
    except NotAMember:
        raise Http404("No such team.") from None


def caller_memberships(request: Request) -> list[Membership]:
    key = api_key_of(request)
    if key is not None:
        return [key_membership(key)] if key.has_scope(Scope.READ) else []
    return list(
        Membership.objects.filter(user=request.user).select_related("team").order_by("team__name")
    )


def team_for(request: Request, slug: str, scope: str = Scope.READ) -> Team:
    return caller_membership(request, slug, scope).team


def caller_manager(request: Request, slug: str) -> Membership:
    """The caller as the manager of the team's integrations: a key with the ``webhooks`` scope,
    or a facilitator's session."""
    membership = caller_membership(request, slug, Scope.WEBHOOKS)
    key = api_key_of(request)
    if key is not None:
        # The scope stands for the facilitator who made the key, while they still are one.
        if key.creator_role != Role.FACILITATOR:
            raise PermissionDenied(
                "This API key's creator no longer manages the team's webhooks.", code="forbidden"
            )
        return Membership(team=membership.team, user_id=membership.user_id, role=Role.FACILITATOR)
    if membership.role != Role.FACILITATOR:
        raise PermissionDenied("Only a facilitator manages the team's webhooks.", code="forbidden")
    return membership
