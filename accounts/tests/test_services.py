"""The directory services: teams placed on a shard of their region, memberships, invites."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from accounts import roles, selectors, services
from accounts.models import Invite, Membership, Team
from accounts.roles import Role
from conftest import facilitator_of
from pokerproject.regions import registry
from pokerproject.regions.config import ShardSpec
from rooms import game
from rooms.models import Room

pytestmark = pytest.mark.django_db(databases="__all__")


def role_of(team, user) -> str | None:
    membership = Membership.objects.filter(team=team, user=user).first()
    return membership.role if membership else None


# --- Teams ------------------------------------------------------------------------------------


def test_team_create_makes_the_creator_facilitator_and_the_room_on_the_shard(make_user):
    alice = make_user("alice")
    team = services.team_create(name="  Core Team ", creator=alice)
    assert (team.name, team.slug, team.created_by) == ("Core Team", "core-team", alice)
    assert team.region == registry.home_region()
    assert team.shard in registry.shards_in_region(team.region)
    assert team.shard == registry.shard_for_team(team.pk, team.region)
    assert Team.objects.get(pk=team.pk).shard == team.shard  # recorded in the directory
    assert role_of(team, alice) == Role.FACILITATOR
    room = Room.objects.using(team.shard).get(team_id=team.pk)
    assert (room.version, room.deck, room.current_round_id) == (0, game.DEFAULT_DECK, None)


def test_team_slugs_are_unique(make_user):
    alice = make_user("alice")
    slugs = [services.team_create(name="Alpha", creator=alice).slug for _ in range(3)]
    assert slugs == ["alpha", "alpha-2", "alpha-3"]
    assert services.team_create(name="!!!", creator=alice).slug == "team"
    assert services.team_create(name="Ünïcode Team", creator=alice).slug == "unicode-team"


def test_team_in_an_unknown_region_is_refused_before_anything_is_written(make_user):
    alice = make_user("alice")
    with pytest.raises(registry.UnknownRegion):
        services.team_create(name="Alpha", creator=alice, region="mars")
    assert not Team.objects.exists()
    assert not Membership.objects.exists()


def test_team_shard_is_chosen_inside_its_region(make_user, settings):
    """With shards in several regions, a team only ever lands on a shard of its own region."""
    home = settings.SHARDS[0]
    settings.SHARDS = [
        ShardSpec(alias="us-1", region="us", url="postgres://us-1/db"),
        home,
        ShardSpec(alias="us-2", region="us", url="postgres://us-2/db"),
        ShardSpec(alias="ap-1", region="ap", url="postgres://ap-1/db"),
    ]
    alice = make_user("alice")
    teams = [
        services.team_create(name=f"T{i}", creator=alice, region=home.region) for i in range(8)
    ]
    assert {team.shard for team in teams} == {home.alias}
    assert {team.region for team in teams} == {home.region}
    for team in teams:
        assert Room.objects.using(home.alias).filter(team_id=team.pk).exists()


# --- Invites ----------------------------------------------------------------------------------


def test_invite_lets_anyone_with_the_link_join_with_its_role(team_factory, make_user):
    team = team_factory()
    lead = facilitator_of(team)
    invite = services.invite_create(actor=lead, role=Role.OBSERVER)
    assert (invite.team, invite.role, invite.created_by) == (team, "observer", lead.user)
    assert len(invite.token) >= 32
    assert invite.expires_at > timezone.now() + timedelta(days=13)
    assert selectors.invite_get_usable(token=invite.token) == invite

    newcomer = make_user("newcomer")
    membership = services.invite_accept(invite=invite, user=newcomer)
    assert (membership.team, membership.role) == (team, "observer")
    # The link stays usable for the rest of the team.
    assert selectors.invite_get_usable(token=invite.token) == invite


def test_following_an_invite_again_keeps_the_role_one_has(team_factory, add_member):
    team = team_factory()
    bob = add_member(team, "bob", Role.VOTER)
    invite = services.invite_create(actor=facilitator_of(team), role=Role.OBSERVER)
    assert services.invite_accept(invite=invite, user=bob.user).role == "voter"
    assert Membership.objects.filter(team=team, user=bob.user).count() == 1


def test_revoked_or_expired_invites_are_unusable(team_factory):
    team = team_factory()
    lead = facilitator_of(team)
    revoked = services.invite_create(actor=lead)
    expired = services.invite_create(actor=lead)
    services.invite_revoke(actor=lead, invite_id=revoked.pk)
    Invite.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert selectors.invite_get_usable(token=revoked.token) is None
    assert selectors.invite_get_usable(token=expired.token) is None
    assert selectors.invite_get_usable(token="no-such-token") is None
    assert list(selectors.invite_list(team=team)) == [expired]  # revoked ones are not listed


def test_only_facilitators_manage_invites(team_factory, add_member):
    team = team_factory()
    invite = services.invite_create(actor=facilitator_of(team))
    for role in (Role.VOTER, Role.OBSERVER):
        member = add_member(team, f"m-{role}", role)
        with pytest.raises(roles.Forbidden):
            services.invite_create(actor=member)
        with pytest.raises(roles.Forbidden):
            services.invite_revoke(actor=member, invite_id=invite.pk)
    assert Invite.objects.filter(team=team).count() == 1
    assert selectors.invite_get_usable(token=invite.token) == invite


def test_a_facilitator_cannot_revoke_another_teams_invite(team_factory):
    alpha, beta = team_factory("Alpha"), team_factory("Beta")
    theirs = services.invite_create(actor=facilitator_of(beta))
    services.invite_revoke(actor=facilitator_of(alpha), invite_id=theirs.pk)
    assert selectors.invite_get_usable(token=theirs.token) == theirs


# --- Roles ------------------------------------------------------------------------------------


def test_facilitator_sets_roles(team_factory, add_member):
    team = team_factory()
    lead = facilitator_of(team)
    bob = add_member(team, "bob")
    assert services.membership_set_role(actor=lead, user_id=bob.user_id, role="observer").role == (
        "observer"
    )
    assert role_of(team, bob.user) == "observer"
    services.membership_set_role(actor=lead, user_id=bob.user_id, role="facilitator")
    assert role_of(team, bob.user) == "facilitator"
    # With a second facilitator, the first may step down.
    services.membership_set_role(actor=lead, user_id=lead.user_id, role="voter")
    assert role_of(team, lead.user) == "voter"


def test_voters_and_observers_cannot_set_roles(team_factory, add_member):
    team = team_factory()
    bob = add_member(team, "bob")
    olga = add_member(team, "olga", Role.OBSERVER)
    for actor, target in ((bob, olga), (olga, bob), (bob, bob)):
        with pytest.raises(roles.Forbidden):
            services.membership_set_role(actor=actor, user_id=target.user_id, role="facilitator")
    assert (role_of(team, bob.user), role_of(team, olga.user)) == ("voter", "observer")


def test_unknown_role_or_member_is_refused(team_factory, make_user):
    team = team_factory()
    lead = facilitator_of(team)
    stranger = make_user("stranger")
    with pytest.raises(ValueError, match="admin"):
        services.membership_set_role(actor=lead, user_id=lead.user_id, role="admin")
    with pytest.raises(Membership.DoesNotExist):
        services.membership_set_role(actor=lead, user_id=stranger.pk, role="voter")
    assert not Membership.objects.filter(user=stranger).exists()


def test_the_last_facilitator_can_be_neither_demoted_nor_removed(team_factory, add_member):
    team = team_factory()
    lead = facilitator_of(team)
    add_member(team, "bob")
    for role in ("voter", "observer"):
        with pytest.raises(services.LastFacilitator) as excinfo:
            services.membership_set_role(actor=lead, user_id=lead.user_id, role=role)
        assert excinfo.value.code == "last_facilitator"
    with pytest.raises(services.LastFacilitator):
        services.membership_remove(actor=lead, user_id=lead.user_id)
    assert role_of(team, lead.user) == "facilitator"
    # Re-affirming the facilitator role is not a demotion.
    services.membership_set_role(actor=lead, user_id=lead.user_id, role="facilitator")


def test_members_leave_and_facilitators_remove(team_factory, add_member):
    team = team_factory()
    lead = facilitator_of(team)
    bob, carol = add_member(team, "bob"), add_member(team, "carol")
    with pytest.raises(roles.Forbidden):
        services.membership_remove(actor=bob, user_id=carol.user_id)
    services.membership_remove(actor=bob, user_id=bob.user_id)  # leaving is always allowed
    services.membership_remove(actor=lead, user_id=carol.user_id)
    assert list(Membership.objects.filter(team=team).values_list("user__username", flat=True)) == [
        "alpha-lead"
    ]


def test_one_of_two_facilitators_may_leave(team_factory, add_member):
    team = team_factory()
    lead = facilitator_of(team)
    add_member(team, "second", Role.FACILITATOR)
    services.membership_remove(actor=lead, user_id=lead.user_id)
    assert role_of(team, lead.user) is None


# --- members_changed --------------------------------------------------------------------------


def test_members_changed_is_sent_after_commit(
    team_factory, add_member, make_user, listen, committed
):
    """Open tables learn of role changes, removals and newcomers once the directory commits."""
    team = team_factory()
    lead = facilitator_of(team)
    bob = add_member(team, "bob")
    channel = listen(team)

    with committed("default"):
        services.membership_set_role(actor=lead, user_id=bob.user_id, role="observer")
        assert channel.events() == []  # not before the commit
    with committed("default"):
        invite = services.invite_create(actor=lead, role=Role.VOTER)
        newcomer = make_user("newcomer")
        services.invite_accept(invite=invite, user=newcomer)
        services.invite_accept(invite=invite, user=newcomer)  # already a member: no event
    with committed("default"):
        services.membership_remove(actor=lead, user_id=bob.user_id)

    events = channel.events()
    assert [(e["type"], e["version"], e["data"]) for e in events] == [
        ("members_changed", 0, {"user_id": bob.user_id, "role": "observer"}),
        ("members_changed", 0, {"user_id": newcomer.pk, "role": "voter"}),
        ("members_changed", 0, {"user_id": bob.user_id, "role": None}),
    ]


def test_members_changed_is_not_sent_for_a_refused_or_rolled_back_change(
    team_factory, add_member, listen, committed
):
    team = team_factory()
    lead = facilitator_of(team)
    bob = add_member(team, "bob")
    channel = listen(team)

    class Abort(Exception):
        pass

    def demote_bob_then_fail() -> None:
        with transaction.atomic(using="default"):
            services.membership_set_role(actor=lead, user_id=bob.user_id, role="observer")
            raise Abort

    with committed("default"):
        with pytest.raises(services.LastFacilitator):
            services.membership_set_role(actor=lead, user_id=lead.user_id, role="voter")
        with pytest.raises(Abort):
            demote_bob_then_fail()
    assert channel.events() == []
    assert role_of(team, bob.user) == "voter"
