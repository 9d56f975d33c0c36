"""Pages of the live table and of the rounds played: the table, a story's estimation history and
the team's history."""

from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from accounts.decorators import member_required
from accounts.models import Membership
from rooms import exports, selectors
from stories import selectors as story_selectors


@member_required
def table(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The live table page; the socket delivers the state, so the page carries none."""
    context = {
        "membership": membership,
        "team": membership.team,
        # The page's heartbeat (docs/protocol.md, ping): how often, and how long to wait.
        "heartbeat_ms": int(settings.ROOM_HEARTBEAT_SECONDS * 1000),
        "heartbeat_timeout_ms": int(settings.ROOM_HEARTBEAT_TIMEOUT_SECONDS * 1000),
    }
    return render(request, "rooms/table.html", context)


@member_required
def story_detail(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    story = story_selectors.story_get(team=membership.team, story_id=pk)
    if story is None:
        raise Http404("No such story.")
    rounds = selectors.round_history(team=membership.team, story=story)
    return render(
        request,
        "stories/story_detail.html",
        {"membership": membership, "team": membership.team, "story": story, "rounds": rounds},
    )


HISTORY_PAGE_SIZE = 20


@member_required
def team_history(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Finished rounds, newest first, a page at a time; ``q`` searches titles and story keys."""
    team = membership.team
    search = request.GET.get("q", "").strip()[:200]
    paginator = Paginator(selectors.history_query(team=team, search=search), HISTORY_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    rounds = selectors.history_records(team=team, rows=page.object_list)
    return render(
        request,
        "stories/history.html",
        {
            "membership": membership,
            "team": team,
            "rounds": rounds,
            "page": page,
            "search": search,
            "query": urlencode({"q": search}) if search else "",
        },
    )


@member_required
def history_export(request: HttpRequest, membership: Membership, kind: str) -> HttpResponseBase:
    """The history as CSV or JSON, streamed; with ``q``, the rounds the search finds."""
    search = request.GET.get("q", "").strip()[:200]
    return exports.history_response(request, membership.team, kind, search)
