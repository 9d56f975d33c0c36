"""Guests through the pages: the facilitator's settings, joining by link, what a guest sees, and
signing up to keep the seat. The Django test client, one per browser."""

import random

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import Membership, Team, User
from accounts.roles import Role
from conftest import facilitator_of
from rooms import services as room_services
from rooms.models import Vote
from stories import services as story_services

pytestmark = pytest.mark.django_db(databases="__all__")

PASSWORD = "correct-horse-battery-42"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def session_user(client: Client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id is not None else None


def join(client: Client, team: Team, name: str = "Gina"):
    return client.post(f"/guest/{team.guest_token}/", {"name": name})


@pytest.fixture
def falcons(team_factory):
    team = team_factory("Falcons")
    story_services.story_create(membership=facilitator_of(team), title="Falcon story")
    return services.guests_configure(actor=facilitator_of(team), allowed=True, role=Role.VOTER)


@pytest.fixture
def other_team(team_factory):
    """A team the guest must never see, with guests allowed too."""
    team = team_factory("Hawks")
    story_services.story_create(membership=facilitator_of(team), title="Secret hawk story")
    return services.guests_configure(actor=facilitator_of(team), allowed=True, role=Role.VOTER)


@pytest.fixture
def guest_client(falcons):
    client = Client()
    response = join(client, falcons)
    assert response.status_code == 302
    return client


# --- the facilitator's side -----------------------------------------------------------------------


def test_the_facilitator_turns_guests_on_sees_the_link_and_rotates_it(team_factory):
    team = team_factory("Falcons")
    lead = client_for(facilitator_of(team).user)
    assert "guest-link" not in lead.get(team.get_absolute_url()).content.decode()

    response = lead.post(
        reverse("guest_settings", args=[team.slug]),
        {"allow_guests": "on", "guest_role": "observer"},
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.allow_guests, team.guest_role) == (True, "observer")
    page = lead.get(team.get_absolute_url()).content.decode()
    assert f"/guest/{team.guest_token}/" in page

    old = team.guest_token
    lead.post(reverse("guest_link_rotate", args=[team.slug]))
    team.refresh_from_db()
    assert team.guest_token != old
    assert join(Client(), Team(guest_token=old)).status_code == 404

    lead.post(reverse("guest_settings", args=[team.slug]), {"guest_role": "voter"})
    team.refresh_from_db()
    assert team.allow_guests is False


def test_voters_cannot_change_guest_settings_nor_see_the_link(falcons, add_member):
    bob = client_for(add_member(falcons, "bob", Role.VOTER).user)
    assert falcons.guest_token not in bob.get(falcons.get_absolute_url()).content.decode()
    bob.post(reverse("guest_settings", args=[falcons.slug]), {"guest_role": "voter"})
    old = falcons.guest_token
    bob.post(reverse("guest_link_rotate", args=[falcons.slug]))
    falcons.refresh_from_db()
    assert (falcons.allow_guests, falcons.guest_token) == (True, old)


def test_a_facilitator_role_for_guests_is_refused(falcons):
    lead = client_for(facilitator_of(falcons).user)
    lead.post(reverse("guest_settings", args=[falcons.slug]), {"guest_role": "facilitator"})
    falcons.refresh_from_db()
    assert (falcons.allow_guests, falcons.guest_role) == (True, "voter")


# --- joining --------------------------------------------------------------------------------------


def test_a_guest_joins_by_link_and_keeps_the_identity_across_reloads(falcons):
    browser = Client()
    page = browser.get(f"/guest/{falcons.guest_token}/")
    assert page.status_code == 200
    assert "Join Falcons as a guest" in page.content.decode()

    response = join(browser, falcons, "Gina")
    assert response.status_code == 302
    assert response["Location"] == reverse("table", args=[falcons.slug])
    guest = session_user(browser)
    assert guest.is_guest
    assert guest.display_name == "Gina"
    assert Membership.objects.get(user=guest).team == falcons

    # Reloads, and following the link again, keep the one identity.
    assert browser.get(reverse("table", args=[falcons.slug])).status_code == 200
    again = browser.get(f"/guest/{falcons.guest_token}/")
    assert again.status_code == 302
    assert session_user(browser) == guest
    assert User.objects.filter(is_guest=True).count() == 1


@pytest.mark.parametrize("state", ["off", "bad", "rotated"])
def test_a_link_that_does_not_admit_shows_a_404(falcons, state):
    token = falcons.guest_token
    if state == "off":
        services.guests_configure(actor=facilitator_of(falcons), allowed=False, role="voter")
    elif state == "bad":
        token = "not-the-token"
    else:
        services.guest_link_rotate(actor=facilitator_of(falcons))
    browser = Client()
    assert browser.get(f"/guest/{token}/").status_code == 404
    response = browser.post(f"/guest/{token}/", {"name": "Mallory"})
    assert response.status_code == 404
    assert "does not work" in response.content.decode()
    assert session_user(browser) is None
    assert not User.objects.filter(is_guest=True).exists()


def test_a_bad_name_shows_the_form_again(falcons):
    browser = Client()
    assert join(browser, falcons, "   ").context["form"].errors["name"]
    response = join(browser, falcons, "x" * 41)
    assert response.status_code == 400
    assert "at most 40 characters" in response.content.decode()
    response = browser.post(f"/guest/{falcons.guest_token}/", {"name": "a\x00b"})
    assert response.status_code == 400  # refused at the edge (pokerproject.inputs)
    assert session_user(browser) is None


def test_guest_joins_are_rate_limited_per_address(falcons, settings):
    settings.GUEST_JOIN_LIMIT = 2
    # Addresses of this test's own: the count lives in the cache (on Redis, beyond the test).
    here, there = (f"10.{random.randrange(256)}.{random.randrange(256)}.{n}" for n in (1, 2))
    for name in ("One", "Two"):
        assert join(Client(REMOTE_ADDR=here), falcons, name).status_code == 302
    refused = join(Client(REMOTE_ADDR=here), falcons, "Three")
    assert refused.status_code == 429
    assert "Too many guests" in refused.content.decode()
    assert join(Client(REMOTE_ADDR=there), falcons, "Elsewhere").status_code == 302
    assert User.objects.filter(is_guest=True).count() == 3


def test_a_signed_in_member_goes_to_the_table_and_others_are_told(falcons, other_team):
    lead = client_for(facilitator_of(falcons).user)
    response = lead.get(f"/guest/{falcons.guest_token}/")
    assert response["Location"] == reverse("table", args=[falcons.slug])

    stranger = client_for(facilitator_of(other_team).user)
    response = stranger.post(f"/guest/{falcons.guest_token}/", {"name": "Sneaky"})
    assert response.status_code == 409
    assert not Membership.objects.filter(team=falcons, user=facilitator_of(other_team).user)


def test_a_guest_of_one_team_cannot_join_another_by_its_guest_link(guest_client, other_team):
    guest = session_user(guest_client)
    response = join(guest_client, other_team, "Again")
    assert response.status_code == 409
    assert "guest of another team" in response.content.decode()
    assert session_user(guest_client) == guest
    assert not Membership.objects.filter(team=other_team, user=guest).exists()


def test_a_name_with_markup_is_escaped_on_the_pages(falcons):
    browser = Client()
    join(browser, falcons, "<script>alert(1)</script>")
    lead = client_for(facilitator_of(falcons).user)
    page = lead.get(falcons.get_absolute_url()).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page


# --- what a guest sees ----------------------------------------------------------------------------


def test_a_guest_sees_their_team_and_nothing_of_other_teams(guest_client, falcons, other_team):
    dashboard = guest_client.get("/teams/").content.decode()
    assert "Falcons" in dashboard
    assert "Hawks" not in dashboard
    assert "New team" not in dashboard
    assert "Falcon story" in guest_client.get(falcons.get_absolute_url()).content.decode()
    for url in (
        other_team.get_absolute_url(),
        reverse("table", args=[other_team.slug]),
        reverse("team_history", args=[other_team.slug]),
    ):
        assert guest_client.get(url).status_code == 404, url
    ws_teams = guest_client.get("/api/v1/teams/").json()
    assert [t["slug"] for t in ws_teams] == [falcons.slug]
    assert guest_client.get(f"/api/v1/teams/{other_team.slug}/").status_code == 404
    assert guest_client.get(f"/api/v1/teams/{other_team.slug}/stories/").status_code == 404


def test_a_guest_gets_no_admin_keys_or_member_management(guest_client, falcons, add_member):
    bob = add_member(falcons, "bob", Role.VOTER)
    page = guest_client.get(falcons.get_absolute_url()).content.decode()
    assert "Create invite link" not in page
    assert "API key" not in page
    assert falcons.guest_token not in page
    assert guest_client.get("/admin/").status_code == 302  # to the admin's login
    keys = guest_client.post(
        reverse("api_key_create", args=[falcons.slug]), {"name": "k", "scopes": ["read"]}
    )
    assert keys.status_code == 403
    guest_client.post(
        reverse("member_role", args=[falcons.slug]), {"user_id": bob.user_id, "role": "observer"}
    )
    assert Membership.objects.get(pk=bob.pk).role == Role.VOTER
    guest_client.post(reverse("invite_create", args=[falcons.slug]), {"role": "facilitator"})
    assert not falcons.invites.exists()
    guest_client.post(reverse("team_create"), {"name": "Mine", "region": falcons.region})
    assert not Team.objects.filter(name="Mine").exists()


def test_a_guest_cannot_accept_an_invite_to_another_team(guest_client, other_team):
    invite = services.invite_create(actor=facilitator_of(other_team))
    response = guest_client.post(invite.get_absolute_url())
    assert response.status_code == 302
    assert "Sign up" in " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert not Membership.objects.filter(team=other_team, user=session_user(guest_client))


# --- signing up -----------------------------------------------------------------------------------


def test_a_guest_claims_the_seat_and_keeps_their_history(guest_client, falcons):
    guest = session_user(guest_client)
    membership = Membership.objects.select_related("team", "user").get(user=guest)
    room_services.round_start(membership=facilitator_of(falcons), title="Quick")
    room_services.vote_cast(membership=membership, value="8")
    assert "Sign up to keep your seat" in guest_client.get("/teams/").content.decode()

    response = guest_client.post(
        reverse("guest_claim"),
        {"username": "gina", "email": "", "password1": PASSWORD, "password2": PASSWORD},
    )

    # Back to the table they were playing at, not to a dashboard of one team.
    assert (response.status_code, response.url) == (302, reverse("table", args=[falcons.slug]))
    user = session_user(guest_client)  # still signed in, as the same user
    assert user.pk == guest.pk
    assert (user.is_guest, user.username) == (False, "gina")
    assert guest_client.get(reverse("table", args=[falcons.slug])).status_code == 200
    vote = Vote.objects.using(falcons.shard).get(user_id=user.pk)
    assert vote.value == "8"
    assert Membership.objects.get(user=user).team == falcons
    logged_in = Client().post("/accounts/login/", {"username": "gina", "password": PASSWORD})
    assert logged_in.status_code == 302
    # Claimed: the page sends a full account away.
    assert guest_client.get(reverse("guest_claim")).status_code == 302


def test_a_claim_with_a_taken_username_or_weak_password_is_shown_again(guest_client, make_user):
    make_user("gina")
    for data in (
        {"username": "gina", "password1": PASSWORD, "password2": PASSWORD},
        {"username": "gina2", "password1": "123", "password2": "123"},
    ):
        response = guest_client.post(reverse("guest_claim"), data)
        assert response.status_code == 200
        assert response.context["form"].errors
    assert session_user(guest_client).is_guest


def test_a_guest_who_logs_out_leaves_the_team(guest_client, falcons):
    guest = session_user(guest_client)
    assert guest_client.post("/accounts/logout/").status_code == 302
    guest.refresh_from_db()
    assert guest.is_active is False
    assert not Membership.objects.filter(user=guest).exists()
    assert guest_client.get(reverse("table", args=[falcons.slug])).status_code == 302  # login
