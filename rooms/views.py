from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.decorators import member_required
from accounts.models import Membership


@member_required
def table(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The live table page; the socket delivers the state, so the page carries none."""
    return render(request, "rooms/table.html", {"membership": membership, "team": membership.team})
