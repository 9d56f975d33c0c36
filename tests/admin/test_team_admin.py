"""The team and membership admin, driven through Django's admin views as a superuser: every write
goes through accounts.services, so a deleted team leaves nothing on any shard, a new team gets
its table, and member changes keep a facilitator and reach open tables."""

from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Membership, Team, User
from accounts.roles import Role
from conftest import facilitator_of
from integrations import services as integrations
from integrations.models import WebhookDelivery
from pokerproject.regions import registry
from replication import services as replication
from replication.models import OutboxEntry
from rooms import services as table
from rooms.models import Room, Round, RoundReplica, Vote
from stories import services as backlog
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")

LAST_FACILITATOR = "A team needs at least one facilitator."


@pytest.fixture
def admin_client_(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-42"))
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- deleting a team --------------------------------------------------------------------------


@pytest.fixture
def played(team_factory, add_member, settings):
    """``played(name)``: a team with stories, a revealed round with votes, its copy delivered
    to the other region, a webhook endpoint and the deliveries the changes recorded."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True

    def make(name: str) -> SimpleNamespace:
        team = team_factory(name, region="eu")
        lead = facilitator_of(team)
        bob = add_member(team, f"{name.lower()}-bob")
        integrations.webhook_endpoint_create(actor=lead, url="http://127.0.0.1:9/hook", events=[])
        story = backlog.story_create(membership=lead, title="Login page")
        backlog.story_create(membership=lead, title="Logout")
        round_ = table.round_start(membership=lead, story_id=story.pk).round
        table.vote_cast(membership=bob, value="5")
        table.vote_cast(membership=lead, value="8")
        table.round_reveal(membership=lead)
        copies = len(registry.regions()) - 1  # one per other region
        assert replication.outbox_deliver(shard=team.shard, round_id=round_.pk) == copies
        return SimpleNamespace(team=team, lead=lead, bob=bob)

    return make


def regional_rows(team: Team) -> dict[str, int]:
    """How many rows the team has on its home shard, and copies in every other region."""
    home = team.shard
    elsewhere = [registry.shard_for_team(team.pk, r) for r in registry.regions() if r != "eu"]
    return {
        "stories": Story.objects.using(home).filter(team_id=team.pk).count(),
        "rounds": Round.objects.using(home).filter(team_id=team.pk).count(),
        "votes": Vote.objects.using(home).filter(team_id=team.pk).count(),
        "table": Room.objects.using(home).filter(team_id=team.pk).count(),
        "outbox": OutboxEntry.objects.using(home).filter(team_id=team.pk).count(),
        "webhook deliveries": WebhookDelivery.objects.using(home).filter(team_id=team.pk).count(),
        "copies": sum(
            RoundReplica.objects.using(alias).filter(team_id=team.pk).count() for alias in elsewhere
        ),
    }


NOTHING = dict.fromkeys(
    ["stories", "rounds", "votes", "table", "outbox", "webhook deliveries", "copies"], 0
)


def test_deleting_a_team_in_the_admin_deletes_its_rows_on_every_shard(admin_client_, played):
    t = played("Alpha")
    before = regional_rows(t.team)
    copies = len(registry.regions()) - 1
    assert before == {
        **before,
        "stories": 2,
        "rounds": 1,
        "votes": 2,
        "table": 1,
        "copies": copies,
    }
    assert before["outbox"]
    assert before["webhook deliveries"]

    url = reverse("admin:accounts_team_delete", args=[t.team.pk])
    assert admin_client_.get(url).status_code == 200  # the confirmation page
    response = admin_client_.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Team.objects.filter(pk=t.team.pk).exists()
    assert regional_rows(t.team) == NOTHING


def test_the_bulk_delete_action_deletes_each_teams_rows_and_no_other(admin_client_, played):
    alpha, beta, gamma = played("Alpha"), played("Beta"), played("Gamma")
    kept = regional_rows(gamma.team)

    response = admin_client_.post(
        reverse("admin:accounts_team_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [alpha.team.pk, beta.team.pk],
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert "Successfully deleted 2 teams." in messages_of(response)
    assert list(Team.objects.values_list("name", flat=True)) == ["Gamma"]
    assert regional_rows(alpha.team) == NOTHING
    assert regional_rows(beta.team) == NOTHING
    assert regional_rows(gamma.team) == kept


# --- creating a team --------------------------------------------------------------------------


def joined(at=None) -> dict:
    """A joined_at as the admin's split date and time inputs post it (pages that show the field
    as read-only ignore it)."""
    at = timezone.localtime(at or timezone.now())
    return {"joined_at_0": at.strftime("%Y-%m-%d"), "joined_at_1": at.strftime("%H:%M:%S")}


def inline_forms(prefix: str, rows: list[dict], *, initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{name}": value for name, value in row.items()})
    return data


def test_a_team_added_in_the_admin_gets_its_shard_table_and_members(admin_client_, make_user):
    """The registry picks the home shard, ``team.created`` makes the table there, and the
    members added on the same page join through the services."""
    lead = make_user("lead")
    response = admin_client_.post(
        reverse("admin:accounts_team_add"),
        {
            "name": "Ops",
            "slug": "ops",
            "region": "us",
            **inline_forms(
                "memberships", [{"user": lead.pk, "role": Role.FACILITATOR, **joined()}]
            ),
            **inline_forms("invites", []),
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    team = Team.objects.get(slug="ops")
    assert (team.region, team.shard) == ("us", registry.shard_for_team(team.pk, "us"))
    assert Room.objects.using(team.shard).filter(team_id=team.pk).exists()
    assert list(team.memberships.values_list("user__username", "role")) == [
        ("lead", Role.FACILITATOR)
    ]


# --- members on the team's page ---------------------------------------------------------------


def team_page_data(team: Team, *, roles=None, delete=(), add=(), name=None) -> dict:
    """The team's change form as the admin posts it: ``roles`` {user_id: role} changes rows,
    ``delete`` user ids ticks their DELETE box, ``add`` [(user, role)] fills new rows."""
    roles = roles or {}
    rows = [
        {
            "id": m.pk,
            "team": team.pk,
            "user": m.user_id,
            "role": roles.get(m.user_id, m.role),
            **joined(m.joined_at),
            **({"DELETE": "on"} if m.user_id in delete else {}),
        }
        for m in Membership.objects.filter(team=team)
    ]
    initial = len(rows)
    rows += [{"team": team.pk, "user": user.pk, "role": role, **joined()} for user, role in add]
    return {
        "name": name or team.name,
        "slug": team.slug,
        "timer_default_seconds": team.timer_default_seconds,
        **({"voters_edit_backlog": "on"} if team.voters_edit_backlog else {}),
        **inline_forms("memberships", rows, initial=initial),
        **inline_forms("invites", []),
    }


def roles_of(team: Team) -> dict[str, str]:
    return dict(team.memberships.values_list("user__username", "role"))


@pytest.fixture
def crew(team_factory, add_member, make_user, listen):
    team = team_factory("Crew")
    return SimpleNamespace(
        team=team,
        lead=facilitator_of(team),
        bob=add_member(team, "bob"),
        newcomer=make_user("newcomer"),
        channel=listen(team),
        url=reverse("admin:accounts_team_change", args=[team.pk]),
    )


def test_a_facilitator_handover_on_the_team_page_reaches_open_tables(
    admin_client_, crew, committed
):
    """Promotions go before demotions, so one save can hand the role over; each change is a
    ``membership.changed`` event, which open tables hear as ``members_changed``."""
    c = crew
    data = team_page_data(
        c.team,
        roles={c.lead.user_id: Role.VOTER, c.bob.user_id: Role.FACILITATOR},
        add=[(c.newcomer, Role.OBSERVER)],
    )
    with committed("default"):
        response = admin_client_.post(c.url, data)

    assert response.status_code == 302, response.context["errors"]
    assert roles_of(c.team) == {
        "crew-lead": Role.VOTER,
        "bob": Role.FACILITATOR,
        "newcomer": Role.OBSERVER,
    }
    assert [e["data"] for e in c.channel.events() if e["type"] == "members_changed"] == [
        {"user_id": c.newcomer.pk, "role": "observer"},
        {"user_id": c.bob.user_id, "role": "facilitator"},
        {"user_id": c.lead.user_id, "role": "voter"},
    ]

    with committed("default"):
        response = admin_client_.post(c.url, team_page_data(c.team, delete=[c.newcomer.pk]))
    assert response.status_code == 302
    assert "newcomer" not in roles_of(c.team)
    assert [e["data"] for e in c.channel.events()] == [{"user_id": c.newcomer.pk, "role": None}]


def test_a_team_renamed_in_the_admin_is_renamed_on_open_tables(admin_client_, crew, committed):
    c = crew
    with committed("default"):
        response = admin_client_.post(c.url, team_page_data(c.team, name="Crew Two"))
    assert response.status_code == 302
    assert [(e["type"], e["data"]) for e in c.channel.events()] == [
        ("team_renamed", {"team": {"id": c.team.pk, "slug": c.team.slug, "name": "Crew Two"}})
    ]
    # Saved again unchanged: nothing to tell.
    with committed("default"):
        admin_client_.post(c.url, team_page_data(c.team, name="Crew Two"))
    assert c.channel.events() == []


@pytest.mark.parametrize("change", ["demote", "delete"])
def test_the_team_page_keeps_the_last_facilitator_and_saves_nothing(
    admin_client_, crew, committed, change
):
    c = crew
    data = team_page_data(
        c.team,
        name="Renamed",
        roles={c.lead.user_id: Role.VOTER} if change == "demote" else {},
        delete=[c.lead.user_id] if change == "delete" else [],
        add=[(c.newcomer, Role.VOTER)],
    )
    with committed("default"):
        response = admin_client_.post(c.url, data)

    assert response.status_code == 302
    assert response.url == c.url
    assert LAST_FACILITATOR in messages_of(response)
    c.team.refresh_from_db()
    assert c.team.name == "Crew"
    assert roles_of(c.team) == {"crew-lead": Role.FACILITATOR, "bob": Role.VOTER}
    assert c.channel.events() == []


# --- the membership admin ---------------------------------------------------------------------


def test_membership_admin_adds_changes_and_removes_through_the_services(
    admin_client_, crew, committed
):
    c = crew
    with committed("default"):
        response = admin_client_.post(
            reverse("admin:accounts_membership_add"),
            {"team": c.team.pk, "user": c.newcomer.pk, "role": Role.OBSERVER, **joined()},
        )
    assert response.status_code == 302, response.context["adminform"].form.errors
    added = Membership.objects.get(team=c.team, user=c.newcomer)

    with committed("default"):
        response = admin_client_.post(
            reverse("admin:accounts_membership_change", args=[added.pk]),
            {"team": c.team.pk, "user": c.newcomer.pk, "role": Role.VOTER, **joined()},
        )
    assert response.status_code == 302
    assert roles_of(c.team)["newcomer"] == Role.VOTER

    with committed("default"):
        response = admin_client_.post(
            reverse("admin:accounts_membership_delete", args=[added.pk]), {"post": "yes"}
        )
    assert response.status_code == 302
    assert "newcomer" not in roles_of(c.team)

    assert [e["data"] for e in c.channel.events()] == [
        {"user_id": c.newcomer.pk, "role": "observer"},
        {"user_id": c.newcomer.pk, "role": "voter"},
        {"user_id": c.newcomer.pk, "role": None},
    ]


def test_membership_admin_keeps_the_last_facilitator(admin_client_, crew, committed):
    c = crew
    change_url = reverse("admin:accounts_membership_change", args=[c.lead.pk])
    delete_url = reverse("admin:accounts_membership_delete", args=[c.lead.pk])
    with committed("default"):
        demoted = admin_client_.post(
            change_url,
            {"team": c.team.pk, "user": c.lead.user_id, "role": Role.VOTER, **joined()},
        )
        deleted = admin_client_.post(delete_url, {"post": "yes"})
        bulk = admin_client_.post(
            reverse("admin:accounts_membership_changelist"),
            {
                "action": "delete_selected",
                "_selected_action": [c.bob.pk, c.lead.pk],
                "post": "yes",
            },
        )

    assert (demoted.status_code, demoted.url) == (302, change_url)
    assert (deleted.status_code, deleted.url) == (302, delete_url)
    assert bulk.status_code == 302
    for response in (demoted, deleted, bulk):
        assert LAST_FACILITATOR in messages_of(response)
    assert roles_of(c.team) == {"crew-lead": Role.FACILITATOR, "bob": Role.VOTER}
    assert c.channel.events() == []


def test_a_memberships_team_and_user_are_fixed_once_it_exists(admin_client_, crew, make_user):
    c = crew
    other = make_user("other")
    response = admin_client_.post(
        reverse("admin:accounts_membership_change", args=[c.bob.pk]),
        {"team": c.team.pk, "user": other.pk, "role": Role.OBSERVER, **joined()},
    )
    assert response.status_code == 302
    assert roles_of(c.team) == {"crew-lead": Role.FACILITATOR, "bob": Role.OBSERVER}


# --- the user admin ---------------------------------------------------------------------------


def test_deleting_a_user_in_the_admin_takes_them_off_every_table(admin_client_, crew, committed):
    """Deleting a user removes their memberships through the service, so open tables hear it
    at once (``members_changed``) instead of keeping a seat for someone who no longer exists."""
    c = crew
    with committed("default"):
        response = admin_client_.post(
            reverse("admin:accounts_user_delete", args=[c.bob.user_id]), {"post": "yes"}
        )
    assert response.status_code == 302
    assert not User.objects.filter(pk=c.bob.user_id).exists()
    assert roles_of(c.team) == {"crew-lead": Role.FACILITATOR}
    assert [e["data"] for e in c.channel.events()] == [{"user_id": c.bob.user_id, "role": None}]


def test_the_user_admin_still_adds_and_changes_users(admin_client_):
    """UserAdmin writes through ServiceAdmin's transaction; Django's own add and change pages
    keep working under it."""
    assert admin_client_.get(reverse("admin:accounts_user_add")).status_code == 200
    password = "Zz-secret-9876"
    response = admin_client_.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "zed",
            "password1": password,
            "password2": password,
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    zed = User.objects.get(username="zed")
    assert zed.check_password(password)
    page = admin_client_.get(reverse("admin:accounts_user_change", args=[zed.pk]))
    assert page.status_code == 200


def test_the_last_facilitator_of_a_team_cannot_be_deleted_in_the_admin(
    admin_client_, crew, committed
):
    c = crew
    delete_url = reverse("admin:accounts_user_delete", args=[c.lead.user_id])
    with committed("default"):
        deleted = admin_client_.post(delete_url, {"post": "yes"})
        bulk = admin_client_.post(
            reverse("admin:accounts_user_changelist"),
            {
                "action": "delete_selected",
                "_selected_action": [c.bob.user_id, c.lead.user_id],
                "post": "yes",
            },
        )
    for response in (deleted, bulk):
        assert response.status_code == 302
        assert LAST_FACILITATOR in messages_of(response)
    # Nothing half-done: the bulk delete refused as a whole, Bob included.
    assert roles_of(c.team) == {"crew-lead": Role.FACILITATOR, "bob": Role.VOTER}
    assert User.objects.filter(pk__in=[c.lead.user_id, c.bob.user_id]).count() == 2
    assert c.channel.events() == []


# --- the replication column -------------------------------------------------------------------


def test_the_team_list_shows_replication_from_the_replication_app(admin_client_, played):
    """replication extends the directory's team admin; accounts does not know replication."""
    t = played("Alpha")
    model_admin = admin.site.get_model_admin(Team)
    assert type(model_admin).__module__ == "replication.admin"
    response = admin_client_.get(reverse("admin:accounts_team_changelist"))
    html = response.content.decode()
    assert "column-replication" in html
    assert "in sync" in html
    assert model_admin.replication(t.team) == "in sync"


def test_invites_on_the_team_page_are_added_changed_and_deleted(admin_client_, crew):
    c = crew
    kept, gone = (services.invite_create(actor=c.lead, role=role) for role in ("voter", "observer"))
    at = timezone.localtime(kept.expires_at)
    expires = {"expires_at_0": at.strftime("%Y-%m-%d"), "expires_at_1": at.strftime("%H:%M:%S")}
    invites = [
        {"id": kept.pk, "team": c.team.pk, "role": "voter", "revoked": "on", **expires},
        {"id": gone.pk, "team": c.team.pk, "role": "observer", "DELETE": "on", **expires},
        {"team": c.team.pk, "role": "facilitator", **expires},
    ]
    data = {**team_page_data(c.team), **inline_forms("invites", invites, initial=2)}
    response = admin_client_.post(c.url, data)

    assert response.status_code == 302, response.context["errors"]
    assert sorted(c.team.invites.values_list("role", "revoked")) == [
        ("facilitator", False),
        ("voter", True),
    ]


def test_the_team_page_changes_the_settings_through_the_service(admin_client_, crew):
    """The settings on the admin's team page are checked as on the team's own page."""
    c = crew
    data = {**team_page_data(c.team), "allow_guests": "on", "timer_default_seconds": "300"}
    data.pop("voters_edit_backlog")
    response = admin_client_.post(c.url, data)
    assert response.status_code == 302
    c.team.refresh_from_db()
    assert (c.team.allow_guests, c.team.voters_edit_backlog) == (True, False)
    assert c.team.timer_default_seconds == 300
    response = admin_client_.post(c.url, {**data, "timer_default_seconds": "5"}, follow=True)
    assert "The timer&#x27;s default is 10 to 3600 seconds." in response.content.decode()
    c.team.refresh_from_db()
    assert c.team.timer_default_seconds == 300
