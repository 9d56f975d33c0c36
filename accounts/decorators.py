from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404

from accounts.selectors import NotAMember, membership_get


def member_required(view):
    """Load the caller's membership of the team in the URL, or answer 404 for anyone else."""

    @login_required
    @wraps(view)
    def wrapper(request, slug: str, *args, **kwargs):
        try:
            membership = membership_get(team_slug=slug, user=request.user)
        except NotAMember:
            raise Http404("No such team.") from None
        return view(request, membership, *args, **kwargs)

    return wrapper
