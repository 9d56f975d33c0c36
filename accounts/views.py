"""Pages for accounts, teams, members and invites. Thin: parse, call one service, render."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.decorators import member_required
from accounts.forms import InviteForm, RoleForm, SignupForm, TeamForm
from accounts.models import Membership
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
        team = services.team_create(
            name=form.cleaned_data["name"],
            region=form.cleaned_data["region"],
            creator=request.user,  # type: ignore[arg-type]
        )
        messages.success(request, f"Team {team.name} created. Invite your teammates below.")
        return redirect(team.get_absolute_url())
    return render(request, "accounts/team_form.html", {"form": form})


def _back(membership: Membership):
    return redirect(membership.team.get_absolute_url())


@require_POST
@member_required
def member_role(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a member and a role.")
        return _back(membership)
    try:
        services.membership_set_role(
            actor=membership, user_id=form.cleaned_data["user_id"], role=form.cleaned_data["role"]
        )
    except (DomainError, Membership.DoesNotExist) as exc:
        messages.error(request, str(exc) if isinstance(exc, DomainError) else "No such member.")
    return _back(membership)


@require_POST
@member_required
def member_remove(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        user_id = int(request.POST.get("user_id", ""))
        services.membership_remove(actor=membership, user_id=user_id)
    except (ValueError, Membership.DoesNotExist):
        messages.error(request, "No such member.")
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if user_id == request.user.pk:
            messages.success(request, f"You left {membership.team.name}.")
            return redirect("dashboard")
    return _back(membership)


@require_POST
@member_required
def invite_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = InviteForm(request.POST)
    try:
        if form.is_valid():
            services.invite_create(actor=membership, role=form.cleaned_data["role"])
            messages.success(request, "Invite link created: share it with your teammates.")
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
        services.invite_accept(invite=invite, user=request.user)
        messages.success(request, f"Welcome to {invite.team.name}.")
        return redirect(invite.team.get_absolute_url())
    return render(request, "accounts/invite_accept.html", {"invite": invite})
