"""Integration pages of a team (facilitators only): API keys, webhooks and their delivery log,
the Jira connection. Thin: parse, call one service, render. Secrets are shown once, in the
response to the POST that made them, and never stored in the clear."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import roles
from accounts.decorators import member_required
from accounts.models import Membership
from integrations import jira, selectors, services, tasks
from integrations.forms import ApiKeyForm, JiraConnectionForm, JiraImportForm, WebhookEndpointForm
from pokerproject.errors import DomainError


def facilitator_required(view):
    @member_required
    def wrapper(request: HttpRequest, membership: Membership, *args, **kwargs):
        if not roles.can(membership.role, roles.Action.MANAGE_MEMBERS):
            raise PermissionDenied(_("Only facilitators manage integrations."))
        return view(request, membership, *args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _back(membership: Membership) -> str:
    return membership.team.get_absolute_url() + "#integrations"


def _secret_page(request, membership, *, title: str, secret: str, note: str) -> HttpResponse:
    response = render(
        request,
        "integrations/secret_created.html",
        {
            "membership": membership,
            "team": membership.team,
            "title": title,
            "secret": secret,
            "note": note,
            "back": _back(membership),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@facilitator_required
def api_key_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("A key needs a name and at least one scope."))
        return redirect(_back(membership))
    key, raw = services.api_key_create(
        actor=membership, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"]
    )
    return _secret_page(
        request,
        membership,
        title=_("API key “%(name)s” created") % {"name": key.name},
        secret=raw,
        note=_("Copy it now: it is shown only once. Send it as “Authorization: Bearer <key>”."),
    )


@require_POST
@facilitator_required
def api_key_revoke(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    if services.api_key_revoke(actor=membership, key_id=pk):
        messages.success(request, _("API key revoked."))
    return redirect(_back(membership))


@require_POST
@facilitator_required
def webhook_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = WebhookEndpointForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("A webhook needs an http(s) URL."))
        return redirect(_back(membership))
    try:
        endpoint, secret = services.webhook_endpoint_create(actor=membership, **form.cleaned_data)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(_back(membership))
    return _secret_page(
        request,
        membership,
        title=_("Webhook for %(url)s created") % {"url": endpoint.url},
        secret=secret,
        note=_("Its signing secret: copy it now, it is shown only once."),
    )


def _endpoint_or_404(membership: Membership, pk: int):
    endpoint = selectors.webhook_endpoint_get(team=membership.team, endpoint_id=pk)
    if endpoint is None:
        raise Http404("No such webhook.")
    return endpoint


@facilitator_required
def webhook_detail(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    endpoint = _endpoint_or_404(membership, pk)
    team = membership.team
    return render(
        request,
        "integrations/webhook_detail.html",
        {
            "membership": membership,
            "team": team,
            "endpoint": endpoint,
            "deliveries": selectors.delivery_list(team=team, endpoint=endpoint)[:50],
            "attempts": selectors.attempt_list(team=team, endpoint=endpoint),
        },
    )


@require_POST
@facilitator_required
def webhook_rotate(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    endpoint = _endpoint_or_404(membership, pk)
    secret = services.webhook_endpoint_rotate_secret(actor=membership, endpoint_id=endpoint.pk)
    return _secret_page(
        request,
        membership,
        title=_("New secret for %(url)s") % {"url": endpoint.url},
        secret=secret,
        note=_(
            "The previous secret keeps signing next to this one for a while (24 h by "
            "default), so switch your receiver now."
        ),
    )


@require_POST
@facilitator_required
def webhook_toggle(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    endpoint = _endpoint_or_404(membership, pk)
    services.webhook_endpoint_set_active(
        actor=membership, endpoint_id=endpoint.pk, active=not endpoint.is_active
    )
    messages.success(
        request, _("Webhook disabled.") if endpoint.is_active else _("Webhook enabled.")
    )
    return redirect(reverse("webhook_detail", args=[membership.team.slug, endpoint.pk]))


@require_POST
@facilitator_required
def webhook_delete(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    endpoint = _endpoint_or_404(membership, pk)
    services.webhook_endpoint_delete(actor=membership, endpoint_id=endpoint.pk)
    messages.success(request, _("Webhook deleted."))
    return redirect(_back(membership))


@facilitator_required
def jira_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    connection = selectors.jira_connection_get(team=team)
    form = JiraConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            connection = jira.connection_save(actor=membership, **form.cleaned_data)
        except DomainError as exc:
            messages.error(request, _("Could not connect: %(error)s") % {"error": exc.message})
        else:
            found = connection.story_points_field_name or _("no story points field found")
            messages.success(
                request,
                _("Connected to %(site)s (%(field)s).")
                % {"site": connection.site_url, "field": found},
            )
            return redirect(reverse("jira_settings", args=[team.slug]))
    return render(
        request,
        "integrations/jira.html",
        {
            "membership": membership,
            "team": team,
            "connection": connection,
            "form": form,
            "import_form": JiraImportForm(),
            "syncs": selectors.jira_sync_list(team=team) if connection else [],
        },
    )


@require_POST
@facilitator_required
def jira_import(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = JiraImportForm(request.POST)
    if not form.is_valid() or selectors.jira_connection_get(team=membership.team) is None:
        messages.error(request, _("Connect Jira and enter a JQL query first."))
    else:
        result = tasks.jira_import.delay(
            membership.team.pk, membership.user_id, form.cleaned_data["jql"]
        )
        text = result.result if result.ready() else _("Import started; reload to see the result.")
        messages.info(request, str(text))
    return redirect(reverse("jira_settings", args=[membership.team.slug]))


@require_POST
@facilitator_required
def jira_disconnect(request: HttpRequest, membership: Membership) -> HttpResponse:
    jira.connection_delete(actor=membership)
    messages.success(request, _("Jira disconnected; the token is deleted."))
    return redirect(reverse("jira_settings", args=[membership.team.slug]))
