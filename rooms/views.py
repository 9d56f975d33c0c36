"""Pages of the live table and of the rounds played: the table, a story's estimation history and
the team's history."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import roles
from accounts.decorators import member_required
from accounts.models import Membership
from pokerproject.errors import DomainError
from rooms import exports, selectors, services
from rooms.forms import DeckForm, TeamSettingsForm
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


# --- The team's decks and settings (facilitators change them; members see the decks) ----------


def _decks_url(membership: Membership) -> str:
    return reverse("team_decks", kwargs={"slug": membership.team.slug})


def _default_deck(membership: Membership) -> str:
    return selectors.room_get(team=membership.team).deck


def _refused(form, error: DomainError) -> None:
    form.add_error(None, error.message)


@member_required
def team_decks(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Every deck the team may play; a facilitator adds one here (POST)."""
    can_manage = roles.can(membership.role, roles.Action.MANAGE_DECKS)
    form = DeckForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            deck = services.deck_create(membership=membership, **form.cleaned_data)
        except DomainError as exc:
            if not can_manage:  # the page shows them no form to put the error on
                messages.error(request, exc.message)
                return redirect(_decks_url(membership))
            _refused(form, exc)
        else:
            messages.success(request, _("Deck %(name)s added.") % {"name": deck.name})
            return redirect(_decks_url(membership))
    context = {
        "membership": membership,
        "team": membership.team,
        "decks": selectors.deck_list(team=membership.team),
        "own": {deck.key: deck for deck in selectors.team_decks(team=membership.team)},
        "default_deck": _default_deck(membership),
        "can_manage": can_manage,
        "form": form,
    }
    return render(request, "rooms/decks.html", context, status=400 if form.errors else 200)


@member_required
def team_deck_edit(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    deck = selectors.team_deck_get(team=membership.team, deck_id=pk)
    if deck is None or not roles.can(membership.role, roles.Action.MANAGE_DECKS):
        raise Http404("No such deck.")
    initial = {"name": deck.name, "cards": deck.cards_text}
    form = DeckForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.deck_update(membership=membership, deck_id=deck.pk, **form.cleaned_data)
        except DomainError as exc:
            _refused(form, exc)
        else:
            messages.success(
                request, _("Deck %(name)s saved.") % {"name": form.cleaned_data["name"]}
            )
            return redirect(_decks_url(membership))
    context = {"membership": membership, "team": membership.team, "deck": deck, "form": form}
    return render(request, "rooms/deck_form.html", context, status=400 if form.errors else 200)


@require_POST
@member_required
def team_deck_delete(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    try:
        services.deck_delete(membership=membership, deck_id=pk)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Deck deleted."))
    return redirect(_decks_url(membership))


@require_POST
@member_required
def team_deck_default(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        services.deck_set_default(membership=membership, deck=request.POST.get("deck", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Default deck changed: new rounds are dealt from it."))
    return redirect(_decks_url(membership))


@member_required
def team_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The team's settings: name, default deck, who edits the backlog, guests, the timer."""
    if not roles.can(membership.role, roles.Action.MANAGE_TEAM):
        raise Http404("No such page.")
    team = membership.team
    initial = {
        "name": team.name,
        "default_deck": _default_deck(membership),
        "voters_edit_backlog": team.voters_edit_backlog,
        "allow_guests": team.allow_guests,
        "timer_default_seconds": team.timer_default_seconds,
    }
    decks = selectors.deck_list(team=team)
    form = TeamSettingsForm(request.POST or None, initial=initial, decks=decks)
    if request.method == "POST" and form.is_valid():
        try:
            services.team_settings_update(membership=membership, **form.cleaned_data)
        except DomainError as exc:
            team.refresh_from_db()
            _refused(form, exc)
        else:
            messages.success(request, _("Settings saved."))
            return redirect(reverse("team_settings", kwargs={"slug": team.slug}))
    context = {"membership": membership, "team": team, "form": form}
    return render(request, "rooms/team_settings.html", context, status=400 if form.errors else 200)
