"""Guests: the team's guest link, the guest's identity and what it may do, signing up later."""

import pytest

from accounts import roles, services
from accounts.models import Membership, Team, User
from accounts.roles import Role
from conftest import facilitator_of
from rooms import services as room_services
from rooms.models import Vote

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def team(team_factory):
    return team_factory("Falcons")


@pytest.fixture
def open_team(team):
    """A team that admits guests as voters."""
    return services.guests_configure(actor=facilitator_of(team), allowed=True, role=Role.VOTER)


def test_a_facilitator_lets_guests_in_with_an_unguessable_link(team):
    assert team.allow_guests is False
    assert services.guest_team_for_token(token="") is None

    team = services.guests_configure(actor=facilitator_of(team), allowed=True, role="observer")

    assert (team.allow_guests, team.guest_role) == (True, "observer")
    assert len(team.guest_token) >= 32
    assert team.get_guest_url() == f"/guest/{team.guest_token}/"
    assert services.guest_team_for_token(token=team.guest_token) == team
    # Saving the settings again keeps the link.
    again = services.guests_configure(actor=facilitator_of(team), allowed=True, role="voter")
    assert again.guest_token == team.guest_token


def test_only_a_facilitator_configures_guests_and_never_as_facilitators(team, add_member):
    bob = add_member(team, "bob", Role.VOTER)
    with pytest.raises(roles.Forbidden):
        services.guests_configure(actor=bob, allowed=True, role="voter")
    with pytest.raises(roles.Forbidden):
        services.guest_link_rotate(actor=bob)
    with pytest.raises(services.GuestOnly):
        services.guests_configure(actor=facilitator_of(team), allowed=True, role="facilitator")
    assert Team.objects.get(pk=team.pk).allow_guests is False


def test_a_guest_joins_as_a_member_with_an_unusable_password(open_team, listen, committed):
    channel = listen(open_team)
    with committed("default"):
        membership = services.guest_join(token=open_team.guest_token, name="  Gina   the  Guest ")

    guest = membership.user
    assert guest.is_guest
    assert guest.is_active
    assert not guest.has_usable_password()
    assert guest.display_name == "Gina the Guest"
    assert guest.username.startswith("guest-")
    assert (membership.team, membership.role) == (open_team, Role.VOTER)
    # Through membership_add: open tables hear of the newcomer.
    assert [(e["type"], e["data"]) for e in channel.events()] == [
        ("members_changed", {"user_id": guest.pk, "role": "voter"})
    ]


def test_guests_get_the_role_the_facilitator_chose(team):
    team = services.guests_configure(actor=facilitator_of(team), allowed=True, role="observer")
    membership = services.guest_join(token=team.guest_token, name="Olga")
    assert membership.role == Role.OBSERVER


@pytest.mark.parametrize("token", ["", "nope", "x" * 64])
def test_a_bad_token_admits_nobody(open_team, token):
    with pytest.raises(services.GuestsNotAllowed):
        services.guest_join(token=token, name="Mallory")
    assert not User.objects.filter(is_guest=True).exists()


def test_a_rotated_link_stops_new_joins_and_keeps_current_guests(open_team):
    old = open_team.guest_token
    first = services.guest_join(token=old, name="First")

    team = services.guest_link_rotate(actor=facilitator_of(open_team))

    assert team.guest_token != old
    with pytest.raises(services.GuestsNotAllowed):
        services.guest_join(token=old, name="Late")
    assert services.guest_join(token=team.guest_token, name="On time").team == team
    assert Membership.objects.filter(pk=first.pk).exists()


def test_turning_guests_off_stops_joins_and_removes_the_guests(
    open_team, add_member, listen, committed
):
    bob = add_member(open_team, "bob", Role.VOTER)
    guest = services.guest_join(token=open_team.guest_token, name="Gina").user
    token = open_team.guest_token
    channel = listen(open_team)

    with committed("default"):
        team = services.guests_configure(
            actor=facilitator_of(open_team), allowed=False, role="voter"
        )

    assert team.allow_guests is False
    with pytest.raises(services.GuestsNotAllowed):
        services.guest_join(token=token, name="Late")
    guest.refresh_from_db()
    assert guest.is_active is False  # the session that was the guest's identity is over
    assert not Membership.objects.filter(user=guest).exists()
    assert Membership.objects.filter(pk=bob.pk).exists()
    # The guest's sockets: first the session ends (4401), then the membership (4403).
    assert [(e["type"], e["data"]["user_id"]) for e in channel.events()] == [
        ("session_ended", guest.pk),
        ("members_changed", guest.pk),
    ]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "invalid_name"),
        ("   ", "invalid_name"),
        ("x" * (services.GUEST_NAME_MAX + 1), "invalid_name"),
        ("bell\x07", "invalid_name"),
        ("zero\u200bwidth", "invalid_name"),
        ("rtl\u202eevil", "invalid_name"),
    ],
)
def test_a_display_name_is_checked(open_team, name, code):
    with pytest.raises(services.InvalidGuestName) as refused:
        services.guest_join(token=open_team.guest_token, name=name)
    assert refused.value.code == code
    assert not User.objects.filter(is_guest=True).exists()


def test_a_name_with_markup_is_kept_as_text(open_team):
    name = "<b>Zoë</b> & co"
    assert services.guest_join(token=open_team.guest_token, name=name).user.display_name == name
    assert services.guest_name_clean("x" * services.GUEST_NAME_MAX) == "x" * 40


def test_a_guest_stays_a_voter_or_observer_in_their_one_team(open_team, team_factory):
    lead = facilitator_of(open_team)
    guest = services.guest_join(token=open_team.guest_token, name="Gina").user

    with pytest.raises(services.GuestOnly):
        services.membership_set_role(actor=lead, user_id=guest.pk, role="facilitator")
    services.membership_set_role(actor=lead, user_id=guest.pk, role="observer")
    assert Membership.objects.get(user=guest).role == Role.OBSERVER

    other = team_factory("Other")
    invite = services.invite_create(actor=facilitator_of(other))
    with pytest.raises(services.GuestOnly):
        services.invite_accept(invite=invite, user=guest)
    with pytest.raises(services.GuestOnly):
        services.team_create(name="Mine", creator=guest)
    assert list(Membership.objects.filter(user=guest).values_list("team", flat=True)) == [
        open_team.pk
    ]


def test_a_removed_guest_is_deactivated(open_team):
    guest = services.guest_join(token=open_team.guest_token, name="Gina").user
    services.membership_remove(actor=facilitator_of(open_team), user_id=guest.pk)
    guest.refresh_from_db()
    assert guest.is_active is False


def test_claiming_the_seat_keeps_the_user_its_membership_and_its_votes(open_team):
    lead = facilitator_of(open_team)
    membership = services.guest_join(token=open_team.guest_token, name="Gina")
    membership = Membership.objects.select_related("team", "user").get(pk=membership.pk)
    room_services.round_start(membership=lead, title="Quick")
    room_services.vote_cast(membership=membership, value="5")

    user = services.guest_claim(
        user=membership.user, username="gina", password="a-long-pass-phrase", email="g@e.test"
    )

    assert user.pk == membership.user_id
    user.refresh_from_db()
    assert (user.is_guest, user.username, user.email) == (False, "gina", "g@e.test")
    assert user.check_password("a-long-pass-phrase")
    assert user.display_name == "Gina"
    assert Membership.objects.get(user=user).role == Role.VOTER
    votes = Vote.objects.using(open_team.shard).filter(user_id=user.pk)
    assert list(votes.values_list("value", flat=True)) == ["5"]
    # Claimed once: a full account cannot claim again, and may now do what members do.
    with pytest.raises(services.NotAGuest):
        services.guest_claim(user=user, username="gina2", password="a-long-pass-phrase")
    assert services.team_create(name="Gina's", creator=user).created_by == user


def test_a_claim_needs_a_free_username(open_team, make_user):
    make_user("taken")
    guest = services.guest_join(token=open_team.guest_token, name="Gina").user
    with pytest.raises(services.UsernameTaken):
        services.guest_claim(user=guest, username="TAKEN", password="a-long-pass-phrase")
    guest.refresh_from_db()
    assert guest.is_guest
    assert not guest.has_usable_password()
