"""Pages for notifications: e-mail an invite, one's own preferences, a team's Slack webhook,
the unsubscribe link. Thin: parse, call one service, render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import member_required
from accounts.models import Membership
from notifications import selectors, services
from notifications.forms import InviteEmailForm, PreferenceForm, SlackWebhookForm
from pokerproject.errors import DomainError


def _back(membership: Membership) -> HttpResponse:
    return redirect(membership.team.get_absolute_url())


@require_POST
@member_required
def invite_email(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = InviteEmailForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter a valid e-mail address and a role."))
        return _back(membership)
    try:
        services.invite_email_send(
            actor=membership,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            base_url=f"{request.scheme}://{request.get_host()}",
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("Invite sent to %(email)s.") % {"email": form.cleaned_data["email"]}
        )
    return _back(membership)


@require_POST
@member_required
def slack_webhook(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        if request.POST.get("remove"):
            services.slack_webhook_remove(actor=membership)
            messages.success(request, _("Slack summaries turned off."))
            return _back(membership)
        form = SlackWebhookForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Enter the webhook's https:// URL."))
            return _back(membership)
        services.slack_webhook_set(actor=membership, url=form.cleaned_data["url"])
        messages.success(request, _("Session summaries will be posted to Slack."))
    except DomainError as exc:
        messages.error(request, exc.message)
    return _back(membership)


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    user = request.user
    current = selectors.preference_get(user=user)  # type: ignore[arg-type]  # login_required
    # An unticked box posts nothing at all: bind on the method, not on the data.
    form = PreferenceForm(
        request.POST if request.method == "POST" else None,
        initial={"session_summaries": current.session_summaries},
    )
    if request.method == "POST" and form.is_valid():
        services.preference_set(
            user=user,  # type: ignore[arg-type]
            session_summaries=form.cleaned_data["session_summaries"],
        )
        messages.success(request, _("Your notification settings are saved."))
        return redirect("notification_preferences")
    return render(request, "notifications/preferences.html", {"form": form})


# Without CSRF: the signed token is the credential, and mail clients POST the one-click
# unsubscribe (RFC 8058) with no cookie and no form token.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """One click, no login: following the link (GET) or a mail client's POST unsubscribes;
    the page's button (POST ``subscribe=1``) undoes it."""
    subscribed = request.method == "POST" and request.POST.get("subscribe") == "1"
    try:
        user = services.unsubscribe(token=token, subscribed=subscribed)
    except DomainError as exc:
        return render(request, "notifications/unsubscribe.html", {"error": exc.message}, status=400)
    return render(
        request,
        "notifications/unsubscribe.html",
        {"subscribed": subscribed, "token": token, "who": user.email or user.username},
    )
