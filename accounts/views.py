"""Pages for accounts, teams, members and invites. Thin: parse, call one service, render."""

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.decorators import member_required
from accounts.forms import (
    GuestClaimForm,
    GuestJoinForm,
    GuestSettingsForm,
    InviteForm,
    RoleForm,
    SignupForm,
    TeamForm,
)
from accounts.models import Membership, User
from pokerproject import ratelimit
from pokerproject.errors import DomainError


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html")


class LoginView(auth_views.LoginView):
    """Django's login page; in the embedded mode it lists the demo users and their password."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if settings.EMBEDDED_MODE:
            context["demo_members"] = selectors.demo_memberships()
            context["demo_password"] = settings.DEMO_PASSWORD
        return context


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    ok = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if ok else fallback


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(_safe_next(request, "/teams/"))
    return render(
        request, "registration/signup.html", {"form": form, "next": _safe_next(request, "")}
    )


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    memberships = selectors.membership_list_for_user(user=request.user)  # type: ignore[arg-type]  # login_required
    return render(
        request, "accounts/dashboard.html", {"memberships": memberships, "form": TeamForm()}
    )


@login_required
def team_create(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(
                name=form.cleaned_data["name"],
                region=form.cleaned_data["region"],
                creator=request.user,  # type: ignore[arg-type]
            )
        except services.GuestOnly as exc:
            messages.error(request, exc.message)
            return redirect("dashboard")
        messages.success(
            request, _("Team %(team)s created. Invite your teammates below.") % {"team": team.name}
        )
        return redirect(team.get_absolute_url())
    return render(request, "accounts/team_form.html", {"form": form})


def _back(membership: Membership):
    return redirect(membership.team.get_absolute_url())


@require_POST
@member_required
def member_role(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a member and a role."))
        return _back(membership)
    try:
        services.membership_set_role(
            actor=membership, user_id=form.cleaned_data["user_id"], role=form.cleaned_data["role"]
        )
    except (DomainError, Membership.DoesNotExist) as exc:
        messages.error(
            request, exc.message if isinstance(exc, DomainError) else _("No such member.")
        )
    return _back(membership)


@require_POST
@member_required
def member_remove(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        user_id = int(request.POST.get("user_id", ""))
        services.membership_remove(actor=membership, user_id=user_id)
    except (ValueError, Membership.DoesNotExist):
        messages.error(request, _("No such member."))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if user_id == request.user.pk:
            messages.success(request, _("You left %(team)s.") % {"team": membership.team.name})
            return redirect("dashboard")
    return _back(membership)


@require_POST
@member_required
def invite_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = InviteForm(request.POST)
    try:
        if form.is_valid():
            services.invite_create(actor=membership, role=form.cleaned_data["role"])
            messages.success(request, _("Invite link created: share it with your teammates."))
    except DomainError as exc:
        messages.error(request, exc.message)
    return _back(membership)


@require_POST
@member_required
def invite_revoke(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    try:
        services.invite_revoke(actor=membership, invite_id=pk)
    except DomainError as exc:
        messages.error(request, exc.message)
    return _back(membership)


def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    invite = selectors.invite_get_usable(token=token)
    if invite is None:
        return render(request, "accounts/invite_invalid.html", status=404)
    if request.method == "POST" and request.user.is_authenticated:
        try:
            services.invite_accept(invite=invite, user=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("dashboard")
        messages.success(request, _("Welcome to %(team)s.") % {"team": invite.team.name})
        return redirect(invite.team.get_absolute_url())
    return render(request, "accounts/invite_accept.html", {"invite": invite})


# --- guests --------------------------------------------------------------------------------------


@require_POST
@member_required
def guest_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = GuestSettingsForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Guests join as voters or observers."))
        return _back(membership)
    try:
        team = services.guests_configure(
            actor=membership,
            allowed=form.cleaned_data["allow_guests"],
            role=form.cleaned_data["guest_role"],
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if team.allow_guests:
            messages.success(
                request,
                _("Guests join with the link, as %(role)s.")
                % {"role": team.get_guest_role_display()},
            )
        else:
            messages.success(request, _("Guests are off; current guests have left the team."))
    return redirect(membership.team.get_absolute_url() + "#guests")


@require_POST
@member_required
def guest_link_rotate(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        services.guest_link_rotate(actor=membership)
        messages.success(request, _("New guest link: the old one no longer works."))
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect(membership.team.get_absolute_url() + "#guests")


def _guest_joins_left(request: HttpRequest) -> bool:
    """Count a guest join from this address; False once it has made GUEST_JOIN_LIMIT in the
    current window."""
    address = get_client_ip_address(request) or "unknown"
    return ratelimit.allow(
        f"guest-join:{address}",
        limit=settings.GUEST_JOIN_LIMIT,
        window_seconds=settings.GUEST_JOIN_WINDOW_SECONDS,
    )


def guest_join(request: HttpRequest, token: str) -> HttpResponse:
    """The guest link: a name, and you are at the table. A member of the team goes straight
    there; someone signed in with another account (or a guest of another team) is told why
    they cannot join as a guest."""
    team = services.guest_team_for_token(token=token)
    if team is None:
        return render(request, "accounts/guest_invalid.html", status=404)
    user = request.user
    if user.is_authenticated:
        if selectors.is_member(team=team, user=user):
            return redirect("table", slug=team.slug)
        return render(request, "accounts/guest_signed_in.html", {"team": team}, status=409)
    form = GuestJoinForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        if not _guest_joins_left(request):
            form.add_error(None, _("Too many guests joined from your address: try again later."))
            status = 429
        else:
            try:
                membership = services.guest_join(token=token, name=form.cleaned_data["name"])
            except services.GuestsNotAllowed:
                return render(request, "accounts/guest_invalid.html", status=404)
            except DomainError as exc:
                form.add_error("name", exc.message)
            else:
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
                return redirect("table", slug=team.slug)
    if form.errors and status == 200:
        status = 400
    return render(request, "accounts/guest_join.html", {"team": team, "form": form}, status=status)


@login_required
def guest_claim(request: HttpRequest) -> HttpResponse:
    """A guest signs up: the same user, now with a username and password of their own."""
    guest: User = request.user  # type: ignore[assignment]
    if not guest.is_guest:
        return redirect("dashboard")
    # An unsaved user with the guest's name, so the password validators compare with it; the
    # service writes the guest's own row.
    form = GuestClaimForm(request.POST or None, instance=User(first_name=guest.first_name))
    if request.method == "POST" and form.is_valid():
        try:
            user = services.guest_claim(
                user=guest,
                username=form.cleaned_data["username"],
                email=form.cleaned_data.get("email") or "",
                password=form.cleaned_data["password1"],
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            # The new password would end this session like any other: keep it signed in.
            update_session_auth_hash(request, user)
            messages.success(
                request, _("Welcome, %(name)s: the seat is yours.") % {"name": user.username}
            )
            # A guest belonged to one team: back to its table, where they were playing.
            membership = selectors.membership_list_for_user(user=user).first()
            if membership is None:
                return redirect("dashboard")
            return redirect("table", slug=membership.team.slug)
    return render(request, "accounts/guest_claim.html", {"form": form})
