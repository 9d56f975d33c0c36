"""Backlog and history pages of a team."""

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import roles
from accounts import selectors as account_selectors
from accounts.decorators import member_required
from accounts.forms import InviteForm
from accounts.models import Membership
from pokerproject.errors import DomainError, gettext_noop
from stories import exports, imports, selectors, services
from stories.forms import ImportForm, StoryForm


def _story_or_404(membership: Membership, pk: uuid.UUID):
    story = selectors.story_get(team=membership.team, story_id=pk)
    if story is None:
        raise Http404("No such story.")
    return story


def _backlog_url(membership: Membership) -> str:
    return membership.team.get_absolute_url()


@member_required
def team_detail(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    is_facilitator = roles.can(membership.role, roles.Action.MANAGE_MEMBERS)
    context = {
        "membership": membership,
        "team": team,
        "stories": selectors.story_list(team=team),
        "members": account_selectors.team_members(team=team),
        "invites": account_selectors.invite_list(team=team) if is_facilitator else [],
        "can_edit": roles.can_edit_backlog(
            membership.role, voters_may_edit=team.voters_edit_backlog
        ),
        "is_facilitator": is_facilitator,
        "story_form": StoryForm(),
        "invite_form": InviteForm(),
        "roles": [r.value for r in roles.Role],
        "guest_roles": [r.value for r in roles.GUEST_ROLES],
    }
    return render(request, "stories/team_detail.html", context)


def _save_story(request: HttpRequest, membership: Membership, form: StoryForm, story_id=None):
    """Run the create/update service for a valid form; return None on success, else an error."""
    try:
        if story_id is None:
            services.story_create(membership=membership, **form.cleaned_data)
        else:
            services.story_update(membership=membership, story_id=story_id, **form.cleaned_data)
    except IntegrityError:
        return _("Another story of this team already has that key.")
    except DomainError as exc:
        return exc.message
    return None


@require_POST
@member_required
def story_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = StoryForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("A story needs a title; the link must be a URL."))
        return redirect(_backlog_url(membership))
    error = _save_story(request, membership, form)
    if error:
        messages.error(request, error)
    return redirect(_backlog_url(membership))


@member_required
def story_edit(request: HttpRequest, membership: Membership, pk: uuid.UUID) -> HttpResponse:
    story = _story_or_404(membership, pk)
    initial = {f: getattr(story, f) for f in services.EDITABLE_FIELDS}
    form = StoryForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        error = _save_story(request, membership, form, story_id=story.pk)
        if error is None:
            messages.success(request, _("Story saved."))
            return redirect(_backlog_url(membership))
        messages.error(request, error)
    return render(
        request,
        "stories/story_form.html",
        {"membership": membership, "team": membership.team, "story": story, "form": form},
    )


@require_POST
@member_required
def story_delete(request: HttpRequest, membership: Membership, pk: uuid.UUID) -> HttpResponse:
    try:
        services.story_delete(membership=membership, story_id=pk)
        messages.success(request, _("Story deleted."))
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect(_backlog_url(membership))


MOVE_DIRECTIONS = {"up": -1, "down": 1, "top": -(10**6), "bottom": 10**6}
# A refused move's status for the page's script; anything else it refuses is a 400.
MOVE_REFUSAL_STATUS = {"forbidden": 403, "unknown_story": 404}


def _move_input(post: QueryDict) -> dict[str, int]:
    """The move a form or the page's script asks for: a ``direction`` (the up/down buttons) or
    a 1-based ``position`` (drag and drop, the keyboard). Raise InvalidMove for anything else."""
    if "position" in post:
        try:
            return {"position": int(post.get("position", ""))}
        except ValueError:
            raise services.InvalidMove(
                gettext_noop("A position in the backlog is a whole number.")
            ) from None
    offset = MOVE_DIRECTIONS.get(post.get("direction", ""))
    if offset is None:
        raise services.InvalidMove(
            gettext_noop("Move a story up, down, to the top or to the bottom.")
        )
    return {"offset": offset}


@require_POST
@member_required
def story_move(request: HttpRequest, membership: Membership, pk: uuid.UUID) -> HttpResponse:
    """Move a story. A plain form post is redirected back to the backlog (with a message if
    refused); the backlog's script asks for JSON and gets the new order or the refusal."""
    wants_json = request.get_preferred_type(["text/html", "application/json"]) == (
        "application/json"
    )
    try:
        order = services.story_move(membership=membership, story_id=pk, **_move_input(request.POST))
    except DomainError as exc:
        if wants_json:
            return JsonResponse(
                {"code": exc.code, "detail": exc.message},
                status=MOVE_REFUSAL_STATUS.get(exc.code, 400),
            )
        messages.error(request, exc.message)
    else:
        if wants_json:
            return JsonResponse({"order": [str(story_id) for story_id in order]})
    return redirect(_backlog_url(membership) + f"#story-{pk}")


# --- Import and export ------------------------------------------------------------------------


def _import_source(form: ImportForm) -> tuple[str, str]:
    """The text to import and its kind: an uploaded file is CSV, pasted text as chosen."""
    upload = form.cleaned_data.get("file")
    if upload is not None:
        if upload.size > imports.MAX_IMPORT_BYTES:
            raise imports.too_large()
        return imports.decode(upload.read()), imports.CSV
    text = form.cleaned_data.get("text") or ""
    if not text.strip():
        raise imports.ImportRefused(
            gettext_noop("Choose a CSV file or paste stories."), code="empty"
        )
    return text, form.cleaned_data["kind"]


@member_required
def story_import(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Import stories in two steps: a preview of every row with its errors (nothing written),
    then a confirm that writes the valid rows in one transaction. The confirm parses the text
    the preview showed again (a hidden field): nothing is kept on the server in between."""
    if not roles.can_edit_backlog(
        membership.role, voters_may_edit=membership.team.voters_edit_backlog
    ):
        raise PermissionDenied(_("Only members who may edit the backlog import stories."))
    team = membership.team
    context: dict = {"membership": membership, "team": team, "limits": imports}
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method != "POST" or not form.is_valid():
        return render(request, "stories/import.html", {**context, "form": form})
    try:
        if request.POST.get("confirm"):
            text, kind = request.POST.get("source", ""), form.cleaned_data["kind"]
        else:
            text, kind = _import_source(form)
        rows = imports.parse(text, kind)
        if request.POST.get("confirm"):
            result = services.stories_import(
                membership=membership, rows=[row for row in rows if row.valid]
            )
            messages.success(
                request,
                _("Imported %(new)s new, %(updated)s updated, %(unchanged)s unchanged stories.")
                % {
                    "new": len(result.created),
                    "updated": len(result.updated),
                    "unchanged": len(result.unchanged),
                },
            )
            return redirect(_backlog_url(membership))
    except IntegrityError:
        messages.error(
            request, _("Another story took one of these keys meanwhile; nothing imported.")
        )
        return render(request, "stories/import.html", {**context, "form": form}, status=409)
    except DomainError as exc:
        messages.error(request, exc.message)
        return render(request, "stories/import.html", {**context, "form": form}, status=400)
    preview = selectors.import_preview(team=team, rows=rows)
    return render(
        request,
        "stories/import.html",
        {
            **context,
            "form": ImportForm(initial={"kind": kind}),
            "preview": preview,
            "source": text,
            "kind": kind,
            "valid_count": sum(1 for row in rows if row.valid),
            "error_count": sum(1 for row in rows if not row.valid),
        },
    )


@member_required
def backlog_export(request: HttpRequest, membership: Membership, kind: str) -> HttpResponseBase:
    """The backlog as CSV or JSON, streamed; any member may export."""
    return exports.backlog_response(request, membership.team, kind)
