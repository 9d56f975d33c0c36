"""Account, team, member and invite pages with the Django test client; health probes; team admin."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invite, Membership, Team, User
from accounts.roles import Role
from conftest import facilitator_of
from pokerproject.regions import registry
from rooms.models import Room
from stories import services as story_services
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")

PASSWORD = "correct-horse-battery-42"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def role_of(team, user) -> str | None:
    membership = Membership.objects.filter(team=team, user=user).first()
    return membership.role if membership else None


def logged_in_user_id(client: Client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value is not None else None


# --- Sign up, log in, log out -----------------------------------------------------------------


def test_signup_creates_the_account_and_logs_in(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "alice",
            "email": "a@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/teams/"
    alice = User.objects.get(username="alice")
    assert alice.check_password(PASSWORD)
    assert logged_in_user_id(client) == alice.pk
    assert client.get("/teams/").status_code == 200


def test_signup_with_mismatched_passwords_shows_the_form_again(client):
    response = client.post(
        reverse("signup"),
        {"username": "alice", "password1": PASSWORD, "password2": PASSWORD + "x"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password2"]
    assert not User.objects.filter(username="alice").exists()
    assert logged_in_user_id(client) is None


@pytest.mark.parametrize(
    ("next_url", "landing"),
    [
        ("/invite/abc/", "/invite/abc/"),
        ("https://evil.example/", "/teams/"),  # never redirect off-site
        ("//evil.example/", "/teams/"),
    ],
)
def test_signup_returns_to_a_safe_next_page_only(client, next_url, landing):
    response = client.post(
        reverse("signup") + "?next=" + next_url,
        {"username": "alice", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response["Location"] == landing


def test_login_and_logout(client, make_user):
    alice = make_user("alice")
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert logged_in_user_id(client) is None

    response = client.post(reverse("login"), {"username": "alice", "password": alice.raw_password})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert logged_in_user_id(client) == alice.pk

    response = client.post(reverse("logout"))
    assert response["Location"] == reverse("home")
    assert logged_in_user_id(client) is None
    assert client.get(reverse("dashboard")).status_code == 302


def test_home_sends_a_logged_in_user_to_the_dashboard(client, make_user):
    assert client.get("/").status_code == 200
    client.force_login(make_user("alice"))
    assert client.get("/")["Location"] == reverse("dashboard")


# --- Dashboard and teams ----------------------------------------------------------------------


def test_dashboard_lists_my_teams_only(make_user, team_factory, add_member):
    alice = make_user("alice")
    alpha = team_factory("Alpha", facilitator=alice)
    beta = team_factory("Beta")
    Membership.objects.create(team=beta, user=alice, role=Role.OBSERVER)
    team_factory("Gamma")
    response = client_for(alice).get(reverse("dashboard"))
    assert response.status_code == 200
    assert [(m.team.name, m.role) for m in response.context["memberships"]] == [
        ("Alpha", "facilitator"),
        ("Beta", "observer"),
    ]
    html = response.content.decode()
    assert alpha.get_absolute_url() in html
    assert beta.get_absolute_url() in html
    assert "Gamma" not in html


def test_create_team_makes_me_facilitator_on_a_shard_of_the_chosen_region(make_user):
    alice = make_user("alice")
    client = client_for(alice)
    form = client.get(reverse("team_create")).context["form"]
    assert [value for value, _ in form.fields["region"].choices] == registry.regions()

    region = registry.regions()[0]
    response = client.post(reverse("team_create"), {"name": "Core", "region": region})
    team = Team.objects.get(name="Core")
    assert response.status_code == 302
    assert response["Location"] == team.get_absolute_url()
    assert role_of(team, alice) == "facilitator"
    assert team.region == region
    assert team.shard in [s.alias for s in settings.SHARDS if s.region == region]
    assert Room.objects.using(team.shard).filter(team_id=team.pk).exists()
    assert client.get(team.get_absolute_url()).status_code == 200


def test_create_team_in_an_unknown_region_is_a_form_error(make_user):
    client = client_for(make_user("alice"))
    response = client.post(reverse("team_create"), {"name": "Core", "region": "mars"})
    assert response.status_code == 200
    assert response.context["form"].errors["region"]
    assert not Team.objects.exists()


# --- Who may open a team's pages --------------------------------------------------------------


def team_urls(team, story_id: int = 1, invite_id: int = 1) -> list[tuple[str, str]]:
    slug = team.slug
    return [
        ("get", reverse("team_detail", args=[slug])),
        ("get", reverse("team_history", args=[slug])),
        ("get", reverse("table", args=[slug])),
        ("get", reverse("story_detail", args=[slug, story_id])),
        ("get", reverse("story_edit", args=[slug, story_id])),
        ("post", reverse("story_create", args=[slug])),
        ("post", reverse("story_edit", args=[slug, story_id])),
        ("post", reverse("story_delete", args=[slug, story_id])),
        ("post", reverse("story_move", args=[slug, story_id])),
        ("post", reverse("member_role", args=[slug])),
        ("post", reverse("member_remove", args=[slug])),
        ("post", reverse("invite_create", args=[slug])),
        ("post", reverse("invite_revoke", args=[slug, invite_id])),
    ]


@pytest.fixture
def guarded_team(team_factory):
    """A team with a story and an invite, so every page of it exists for its members."""
    team = team_factory("Alpha")
    lead = facilitator_of(team)
    story = story_services.story_create(membership=lead, title="Login")
    invite = Invite.objects.create(team=team, role=Role.VOTER, created_by=lead.user)
    return team, story, invite


def test_a_non_member_gets_404_on_every_team_page(guarded_team, make_user):
    """Other teams' pages look exactly like pages of teams that do not exist."""
    team, story, invite = guarded_team
    stranger = client_for(make_user("stranger"))
    for method, url in team_urls(team, story.pk, invite.pk):
        data = {"title": "Mine", "user_id": facilitator_of(team).user_id, "role": "voter"}
        response = getattr(stranger, method)(url, data)
        assert response.status_code == 404, url
    assert list(Story.objects.using(team.shard).values_list("title", flat=True)) == ["Login"]
    assert Membership.objects.filter(team=team).count() == 1
    assert Invite.objects.get(pk=invite.pk).revoked is False


def test_a_missing_team_is_404_too(make_user):
    client = client_for(make_user("alice"))
    assert client.get(reverse("team_detail", args=["no-such-team"])).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(guarded_team, client):
    team, story, invite = guarded_team
    for method, url in team_urls(team, story.pk, invite.pk):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"{reverse('login')}?next={url}"
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("login"))
    assert client.get(reverse("team_create"))["Location"].startswith(reverse("login"))


# --- Invites ----------------------------------------------------------------------------------


def test_invite_link_flow(team_factory, make_user, client):
    """A facilitator creates a link; someone else opens it, logs in and joins with its role."""
    team = team_factory("Alpha")
    lead = client_for(facilitator_of(team).user)
    response = lead.post(reverse("invite_create", args=[team.slug]), {"role": "observer"})
    assert response["Location"] == team.get_absolute_url()
    invite = Invite.objects.get(team=team)
    assert invite.role == "observer"
    invite_url = invite.get_absolute_url()
    assert invite_url in lead.get(team.get_absolute_url()).content.decode()

    carol = make_user("carol")
    page = client.get(invite_url)
    assert page.status_code == 200
    assert "Join Alpha" in page.content.decode()
    assert f"{reverse('login')}?next={invite_url}" in page.content.decode().replace("%2F", "/")
    # Posting without being logged in joins nobody.
    client.post(invite_url)
    assert role_of(team, carol) is None

    response = client.post(
        reverse("login"), {"username": "carol", "password": carol.raw_password, "next": invite_url}
    )
    assert response["Location"] == invite_url
    response = client.post(invite_url)
    assert response["Location"] == team.get_absolute_url()
    assert role_of(team, carol) == "observer"
    assert client.get(team.get_absolute_url()).status_code == 200


def test_a_voter_cannot_create_invites(team_factory, add_member):
    team = team_factory()
    bob = add_member(team, "bob")
    response = client_for(bob.user).post(
        reverse("invite_create", args=[team.slug]), {"role": "voter"}
    )
    assert response.status_code == 302
    assert not Invite.objects.filter(team=team).exists()
    assert any("may not" in m for m in messages_of(response))


@pytest.mark.parametrize("how", ["revoked", "expired", "unknown"])
def test_a_revoked_or_expired_link_shows_a_404_page(team_factory, make_user, how):
    team = team_factory()
    lead = facilitator_of(team)
    invite = Invite.objects.create(team=team, role=Role.VOTER, created_by=lead.user)
    if how == "revoked":
        client_for(lead.user).post(reverse("invite_revoke", args=[team.slug, invite.pk]))
        assert Invite.objects.get(pk=invite.pk).revoked
    elif how == "expired":
        Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    url = invite.get_absolute_url() if how != "unknown" else reverse("invite_accept", args=["nope"])
    carol = client_for(make_user("carol"))
    for response in (carol.get(url), carol.post(url)):
        assert response.status_code == 404
        assert "does not work" in response.content.decode()
    assert role_of(team, User.objects.get(username="carol")) is None


# --- Members ----------------------------------------------------------------------------------


def test_facilitator_changes_a_members_role(team_factory, add_member):
    team = team_factory()
    bob = add_member(team, "bob")
    lead = client_for(facilitator_of(team).user)
    response = lead.post(
        reverse("member_role", args=[team.slug]), {"user_id": bob.user_id, "role": "observer"}
    )
    assert response["Location"] == team.get_absolute_url()
    assert role_of(team, bob.user) == "observer"


def test_a_voter_cannot_change_roles(team_factory, add_member):
    team = team_factory()
    bob = add_member(team, "bob")
    lead = facilitator_of(team)
    response = client_for(bob.user).post(
        reverse("member_role", args=[team.slug]), {"user_id": bob.user_id, "role": "facilitator"}
    )
    assert response.status_code == 302
    assert role_of(team, bob.user) == "voter"
    assert role_of(team, lead.user) == "facilitator"
    assert any("may not" in m for m in messages_of(response))


@pytest.mark.parametrize("data", [{"user_id": "x", "role": "voter"}, {"role": "voter"}])
def test_a_bad_role_form_changes_nothing(team_factory, data):
    team = team_factory()
    lead = facilitator_of(team)
    response = client_for(lead.user).post(reverse("member_role", args=[team.slug]), data)
    assert response.status_code == 302
    assert role_of(team, lead.user) == "facilitator"
    assert messages_of(response) == ["Choose a member and a role."]


def test_the_last_facilitator_cannot_be_demoted_or_removed(team_factory):
    team = team_factory()
    lead = facilitator_of(team)
    client = client_for(lead.user)
    response = client.post(
        reverse("member_role", args=[team.slug]), {"user_id": lead.user_id, "role": "voter"}
    )
    assert messages_of(response) == ["A team needs at least one facilitator."]
    client.get(team.get_absolute_url())  # shows (and so clears) that message
    response = client.post(reverse("member_remove", args=[team.slug]), {"user_id": lead.user_id})
    assert response["Location"] == team.get_absolute_url()
    assert messages_of(response) == ["A team needs at least one facilitator."]
    assert role_of(team, lead.user) == "facilitator"


def test_facilitator_removes_a_member(team_factory, add_member):
    team = team_factory()
    bob = add_member(team, "bob")
    client = client_for(facilitator_of(team).user)
    response = client.post(reverse("member_remove", args=[team.slug]), {"user_id": bob.user_id})
    assert response["Location"] == team.get_absolute_url()
    assert role_of(team, bob.user) is None
    # Removing someone who is not a member is reported, not a crash.
    client.get(team.get_absolute_url())
    response = client.post(reverse("member_remove", args=[team.slug]), {"user_id": bob.user_id})
    assert messages_of(response) == ["No such member."]


def test_a_member_leaves_the_team(team_factory, add_member):
    team = team_factory("Alpha")
    bob = add_member(team, "bob")
    client = client_for(bob.user)
    response = client.post(reverse("member_remove", args=[team.slug]), {"user_id": bob.user_id})
    assert response["Location"] == reverse("dashboard")
    assert messages_of(response) == ["You left Alpha."]
    assert role_of(team, bob.user) is None
    assert client.get(team.get_absolute_url()).status_code == 404


def test_a_voter_cannot_remove_someone_else(team_factory, add_member):
    team = team_factory()
    bob = add_member(team, "bob")
    lead = facilitator_of(team)
    client_for(bob.user).post(reverse("member_remove", args=[team.slug]), {"user_id": lead.user_id})
    assert role_of(team, lead.user) == "facilitator"


def test_member_actions_only_accept_post(team_factory):
    team = team_factory()
    client = client_for(facilitator_of(team).user)
    for name in ("member_role", "member_remove", "invite_create"):
        assert client.get(reverse(name, args=[team.slug])).status_code == 405


# --- Health -----------------------------------------------------------------------------------


def test_healthz_is_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_reports_every_component(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    expected = {f"db:{alias}" for alias in settings.DATABASES} | {"cache", "channel_layer"}
    assert set(body["components"]) == expected
    assert {f"db:{alias}" for alias in registry.shard_aliases()} <= expected
    assert all(component["ok"] for component in body["components"].values())


# --- Admin ------------------------------------------------------------------------------------


@pytest.fixture
def admin_client_(make_user) -> Client:
    admin = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    return client_for(admin)


def test_admin_team_changelist_and_add_page(admin_client_, team_factory):
    team = team_factory("Alpha")
    response = admin_client_.get(reverse("admin:accounts_team_changelist"))
    assert response.status_code == 200
    assert "Alpha" in response.content.decode()
    assert team.shard in response.content.decode()
    response = admin_client_.get(reverse("admin:accounts_team_add"))
    assert response.status_code == 200
    assert response.context["adminform"].form["region"].initial == registry.home_region()
    response = admin_client_.get(reverse("admin:accounts_team_change", args=[team.pk]))
    assert response.status_code == 200


def test_admin_adds_a_team_on_a_shard_of_its_region(admin_client_):
    region = registry.home_region()
    response = admin_client_.post(
        reverse("admin:accounts_team_add"),
        {
            "name": "Ops",
            "slug": "ops",
            "region": region,
            "members": [],
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "invites-TOTAL_FORMS": "0",
            "invites-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    team = Team.objects.get(slug="ops")
    assert team.region == region
    assert team.shard == registry.shard_for_team(team.pk, region)


def test_the_login_page_lists_the_demo_users_in_the_embedded_mode(client, settings):
    """With the embedded mode's settings the login page names the demo team's users, their
    roles and password; in any other mode it names nobody."""
    from io import StringIO

    from django.core.management import call_command

    call_command("seed_demo", password="demo-pw-1", stdout=StringIO())
    settings.EMBEDDED_MODE, settings.DEMO_PASSWORD = True, "demo-pw-1"
    page = client.get("/accounts/login/").content.decode()
    assert "Demo users" in page
    assert "<code>demo-pw-1</code>" in page
    for name, role in (("alice", "facilitator"), ("bob", "voter"), ("carol", "observer")):
        label = role.capitalize()  # the role's label, in the page's language
        assert f'<code>{name}</code> <span class="badge role-{role}">{label}</span>' in page
    assert User.objects.get(username="bob").check_password("demo-pw-1")
    settings.EMBEDDED_MODE = False
    page = client.get("/accounts/login/").content.decode()
    assert "Demo users" not in page
    assert "demo-pw-1" not in page
