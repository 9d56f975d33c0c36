"""Backlog, story and history pages with the Django test client; the shard-aware story admin."""

from types import SimpleNamespace

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import User
from accounts.roles import Role
from conftest import facilitator_of
from integrations import services as integrations
from integrations.models import WebhookDelivery
from rooms import services as table_services
from rooms.models import Round
from stories import selectors
from stories import services as story_services
from stories.models import Story

pytestmark = pytest.mark.django_db(databases="__all__")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def team(team_factory, add_member):
    team = team_factory("Alpha")
    lead = facilitator_of(team)
    bob = add_member(team, "bob")
    olga = add_member(team, "olga", Role.OBSERVER)
    return SimpleNamespace(
        team=team,
        slug=team.slug,
        shard=team.shard,
        lead=lead,
        bob=bob,
        olga=olga,
        as_lead=client_for(lead.user),
        as_bob=client_for(bob.user),
        as_olga=client_for(olga.user),
    )


def titles(t) -> list[str]:
    return [s.title for s in selectors.story_list(team=t.team)]


def add(t, *names: str) -> list[Story]:
    return [story_services.story_create(membership=t.lead, title=name) for name in names]


def url(name: str, t, *args) -> str:
    return reverse(name, args=[t.slug, *args])


def play_round(t, story: Story | None, votes: dict, *, estimate: str | None = None) -> Round:
    round_ = table_services.round_start(
        membership=t.lead, story_id=story.pk if story else None, title="Spike"
    ).round
    for membership, value in votes.items():
        table_services.vote_cast(membership=membership, value=value)
    table_services.round_reveal(membership=t.lead)
    if estimate is not None:
        table_services.estimate_accept(membership=t.lead, value=estimate)
    round_.refresh_from_db(using=t.shard)
    return round_


# --- Backlog page -----------------------------------------------------------------------------


def test_backlog_page_lists_stories_in_order_with_estimates(team):
    t = team
    a, b = add(t, "Login page", "Logout")
    story_services.story_move(membership=t.lead, story_id=b.pk, offset=-1)
    Story.objects.using(t.shard).filter(pk=a.pk).update(estimate="13")
    response = t.as_bob.get(url("team_detail", t))
    assert response.status_code == 200
    assert [s.title for s in response.context["stories"]] == ["Logout", "Login page"]
    html = response.content.decode()
    assert html.index("Logout") < html.index("Login page")
    assert '<span class="estimate" title="Accepted estimate">13</span>' in html
    assert url("story_detail", t, a.pk) in html
    assert response.context["can_edit"] is True


def test_observers_see_the_backlog_without_edit_controls(team):
    t = team
    [story] = add(t, "Login page")
    response = t.as_olga.get(url("team_detail", t))
    assert response.status_code == 200
    assert response.context["can_edit"] is False
    html = response.content.decode()
    assert "Login page" in html
    assert f'action="{url("story_create", t)}"' not in html
    assert url("story_delete", t, story.pk) not in html
    assert (
        f'action="{url("story_create", t)}"' in t.as_bob.get(url("team_detail", t)).content.decode()
    )


def test_only_facilitators_see_invites_and_role_controls(team):
    t = team
    lead_page = t.as_lead.get(url("team_detail", t))
    bob_page = t.as_bob.get(url("team_detail", t))
    assert lead_page.context["is_facilitator"] is True
    assert url("invite_create", t) in lead_page.content.decode()
    assert url("member_role", t) in lead_page.content.decode()
    assert bob_page.context["is_facilitator"] is False
    assert list(bob_page.context["invites"]) == []
    assert url("invite_create", t) not in bob_page.content.decode()
    assert url("member_role", t) not in bob_page.content.decode()


# --- Add, edit, delete, reorder ---------------------------------------------------------------


def test_add_a_story(team):
    t = team
    response = t.as_bob.post(
        url("story_create", t),
        {"title": "Login page", "external_key": "PROJ-1", "url": "https://t.example/1"},
    )
    assert response.status_code == 302
    assert response["Location"] == t.team.get_absolute_url()
    story = Story.objects.using(t.shard).get(team_id=t.team.pk)
    assert (story.title, story.external_key, story.url) == (
        "Login page",
        "PROJ-1",
        "https://t.example/1",
    )
    assert story.created_by_id == t.bob.user_id


@pytest.mark.parametrize(
    "data", [{"title": ""}, {"title": "   "}, {"title": "x", "url": "not a url"}, {}]
)
def test_an_invalid_story_is_not_added(team, data):
    t = team
    response = t.as_lead.post(url("story_create", t), data)
    assert response.status_code == 302
    assert titles(t) == []
    assert messages_of(response) == ["A story needs a title; the link must be a URL."]


def test_a_duplicate_key_is_reported_not_a_crash(team):
    t = team
    t.as_lead.post(url("story_create", t), {"title": "A", "external_key": "PROJ-1"})
    response = t.as_lead.post(url("story_create", t), {"title": "B", "external_key": "PROJ-1"})
    assert response.status_code == 302
    assert titles(t) == ["A"]
    assert "Another story of this team already has that key." in messages_of(response)


def test_observer_cannot_add_edit_delete_or_move(team):
    t = team
    [story] = add(t, "Login page")
    for name, args, data in [
        ("story_create", [], {"title": "Mine"}),
        ("story_edit", [story.pk], {"title": "Mine"}),
        ("story_delete", [story.pk], {}),
        ("story_move", [story.pk], {"direction": "down"}),
    ]:
        response = t.as_olga.post(url(name, t, *args), data)
        assert response.status_code in (200, 302)
        assert any("may not" in m for m in messages_of(response)), name
    assert titles(t) == ["Login page"]


def test_edit_a_story(team):
    t = team
    story = story_services.story_create(
        membership=t.lead, title="Login", external_key="PROJ-1", description="old"
    )
    page = t.as_bob.get(url("story_edit", t, story.pk))
    assert page.status_code == 200
    assert page.context["form"].initial["title"] == "Login"
    assert page.context["form"].initial["external_key"] == "PROJ-1"

    response = t.as_bob.post(
        url("story_edit", t, story.pk),
        {"title": "Login page", "external_key": "PROJ-1", "description": "new"},
    )
    assert response["Location"] == t.team.get_absolute_url()
    story.refresh_from_db(using=t.shard)
    assert (story.title, story.description) == ("Login page", "new")


def test_editing_to_a_taken_key_shows_the_form_again(team):
    t = team
    story_services.story_create(membership=t.lead, title="A", external_key="PROJ-1")
    b = story_services.story_create(membership=t.lead, title="B", external_key="PROJ-2")
    response = t.as_lead.post(url("story_edit", t, b.pk), {"title": "B", "external_key": "PROJ-1"})
    assert response.status_code == 200
    assert "Another story of this team already has that key." in messages_of(response)
    b.refresh_from_db(using=t.shard)
    assert b.external_key == "PROJ-2"


def test_delete_a_story(team):
    t = team
    a, _b = add(t, "A", "B")
    response = t.as_lead.post(url("story_delete", t, a.pk))
    assert response["Location"] == t.team.get_absolute_url()
    assert titles(t) == ["B"]
    assert t.as_lead.get(url("story_detail", t, a.pk)).status_code == 404


@pytest.mark.parametrize(
    ("moved", "direction", "order"),
    [
        ("B", "up", "B A C"),
        ("B", "down", "A C B"),
        ("C", "top", "C A B"),
        ("A", "bottom", "B C A"),
    ],
)
def test_reorder_the_backlog(team, moved, direction, order):
    t = team
    stories = {s.title: s for s in add(t, "A", "B", "C")}
    pk = stories[moved].pk
    response = t.as_bob.post(url("story_move", t, pk), {"direction": direction})
    assert response["Location"] == f"{t.team.get_absolute_url()}#story-{pk}"
    assert titles(t) == order.split()


def test_reorder_with_an_unknown_direction_changes_nothing(team):
    t = team
    _a, b = add(t, "A", "B")
    response = t.as_lead.post(url("story_move", t, b.pk), {"direction": "sideways"})
    assert titles(t) == ["A", "B"]
    assert messages_of(response) == ["Move a story up, down, to the top or to the bottom."]


# --- Moving to a position (drag and drop, the keyboard): one endpoint, JSON for the script ----


def move(client: Client, t, story_id, data: dict, **headers):
    return client.post(url("story_move", t, story_id), data, headers=headers)


def move_json(client: Client, t, story_id, data: dict):
    return move(client, t, story_id, data, accept="application/json")


def test_a_plain_form_moves_a_story_to_a_position_and_goes_back_to_the_backlog(team):
    t = team
    _a, _b, c = add(t, "A", "B", "C")
    response = move(t.as_bob, t, c.pk, {"position": "1"}, accept="text/html,*/*;q=0.8")
    assert response.status_code == 302
    assert response["Location"] == f"{t.team.get_absolute_url()}#story-{c.pk}"
    assert titles(t) == ["C", "A", "B"]


def test_the_backlog_script_gets_the_new_order_as_json(team):
    t = team
    a, b, c = add(t, "A", "B", "C")
    response = move_json(t.as_bob, t, a.pk, {"position": "3"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"order": [str(b.pk), str(c.pk), str(a.pk)]}
    assert titles(t) == ["B", "C", "A"]
    # The up/down buttons answer JSON as well when asked.
    assert move_json(t.as_bob, t, a.pk, {"direction": "up"}).json()["order"][1] == str(a.pk)


def test_a_move_checks_the_csrf_token_the_script_sends_in_a_header(team):
    t = team
    a, _b = add(t, "A", "B")
    client = Client(enforce_csrf_checks=True)
    client.force_login(t.bob.user)
    client.get(url("team_detail", t))
    token = client.cookies["csrftoken"].value
    assert move_json(client, t, a.pk, {"position": "2"}).status_code == 403
    assert titles(t) == ["A", "B"]
    response = move(
        client, t, a.pk, {"position": "2"}, accept="application/json", x_csrftoken=token
    )
    assert response.status_code == 200
    assert titles(t) == ["B", "A"]


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ({"position": "0"}, "A position in the backlog counts from 1."),
        ({"position": "-1"}, "A position in the backlog counts from 1."),
        ({"position": "two"}, "A position in the backlog is a whole number."),
        ({"position": ""}, "A position in the backlog is a whole number."),
        ({"direction": "sideways"}, "Move a story up, down, to the top or to the bottom."),
    ],
)
def test_a_move_to_no_valid_place_is_a_clear_400_and_changes_nothing(team, data, detail):
    t = team
    _a, b = add(t, "A", "B")
    response = move_json(t.as_lead, t, b.pk, data)
    assert response.status_code == 400
    assert response.json() == {"code": "invalid", "detail": detail}
    assert titles(t) == ["A", "B"]
    # A plain form gets the same sentence as a message on the backlog page.
    response = move(t.as_lead, t, b.pk, data)
    assert response.status_code == 302
    assert messages_of(response) == [detail]
    assert titles(t) == ["A", "B"]


def test_members_who_may_not_edit_the_backlog_are_refused_a_move(team):
    """An observer never; a voter once the team keeps the backlog to facilitators."""
    t = team
    _a, b = add(t, "A", "B")
    refused = move_json(t.as_olga, t, b.pk, {"position": "1"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert "may not" in refused.json()["detail"]
    t.team.voters_edit_backlog = False
    t.team.save(update_fields=["voters_edit_backlog"])
    refused = move_json(t.as_bob, t, b.pk, {"position": "1"})
    assert refused.status_code == 403
    assert refused.json() == {
        "code": "forbidden",
        "detail": "In this team only facilitators edit the backlog.",
    }
    assert titles(t) == ["A", "B"]
    assert move_json(t.as_lead, t, b.pk, {"position": "1"}).status_code == 200
    assert titles(t) == ["B", "A"]


def test_moving_a_deleted_or_another_teams_story_is_a_404(team, team_factory):
    t = team
    _a, b = add(t, "A", "B")
    story_services.story_delete(membership=t.lead, story_id=b.pk)
    gone = move_json(t.as_lead, t, b.pk, {"position": "1"})
    assert gone.status_code == 404
    assert gone.json() == {
        "code": "unknown_story",
        "detail": "No such story in this team's backlog.",
    }
    other = team_factory("Beta")
    theirs, second = (
        story_services.story_create(membership=facilitator_of(other), title=title)
        for title in ("Theirs", "Second")
    )
    # Through this team's URL: no such story in this backlog.
    assert move_json(t.as_lead, t, second.pk, {"position": "1"}).status_code == 404
    assert [s.title for s in selectors.story_list(team=other)] == ["Theirs", "Second"]
    assert titles(t) == ["A"]
    # Not a member of that team: its URL does not exist for them.
    assert (
        move_json(
            t.as_lead, SimpleNamespace(slug=other.slug), theirs.pk, {"position": "2"}
        ).status_code
        == 404
    )
    assert [s.title for s in selectors.story_list(team=other)] == ["Theirs", "Second"]


def test_only_members_who_may_edit_the_backlog_get_the_reorder_handles(team):
    t = team
    [story] = add(t, "A")
    lead_page = t.as_lead.get(url("team_detail", t)).content.decode()
    assert 'class="icon drag-handle"' in lead_page
    assert f'data-move-url="{url("story_move", t, story.pk)}"' in lead_page
    assert "js/backlog.js" in lead_page
    assert 'id="announcer" aria-live="polite"' in lead_page
    page = t.as_olga.get(url("team_detail", t)).content.decode()
    assert "drag-handle" not in page
    assert "data-move-url" not in page
    assert "js/backlog.js" not in page
    t.team.voters_edit_backlog = False
    t.team.save(update_fields=["voters_edit_backlog"])
    page = t.as_bob.get(url("team_detail", t)).content.decode()
    assert "drag-handle" not in page
    assert "js/backlog.js" not in page


def test_backlog_actions_only_accept_post(team):
    t = team
    [story] = add(t, "A")
    for name, args in [
        ("story_create", []),
        ("story_delete", [story.pk]),
        ("story_move", [story.pk]),
    ]:
        assert t.as_lead.get(url(name, t, *args)).status_code == 405
    assert titles(t) == ["A"]


def test_story_pages_of_another_team_are_404(team, team_factory):
    t = team
    other = team_factory("Beta")
    theirs = story_services.story_create(membership=facilitator_of(other), title="Theirs")
    for name in ("story_detail", "story_edit"):
        assert t.as_lead.get(url(name, t, theirs.pk)).status_code == 404
    for name in ("story_edit", "story_delete"):
        response = t.as_lead.post(url(name, t, theirs.pk), {"title": "Mine"})
        assert response.status_code in (302, 404)
    theirs.refresh_from_db(using=other.shard)
    assert theirs.title == "Theirs"


# --- Story page and history -------------------------------------------------------------------


def test_story_page_shows_finished_rounds_with_votes_and_statistics(team):
    """Finished rounds show every card and the statistics; a round still voting shows none."""
    t = team
    story = story_services.story_create(
        membership=t.lead, title="Login page", external_key="PROJ-7", url="https://t.example/7"
    )
    play_round(t, story, {t.bob: "8", t.lead: "3"}, estimate="5")
    table_services.round_start(membership=t.lead, story_id=story.pk)
    table_services.vote_cast(membership=t.bob, value="55")  # secret until revealed

    response = t.as_olga.get(url("story_detail", t, story.pk))
    assert response.status_code == 200
    assert [r.status for r in response.context["rounds"]] == ["accepted"]
    html = response.content.decode()
    assert "PROJ-7" in html
    assert "https://t.example/7" in html
    assert '<span class="mini-card">8</span> bob' in html
    assert '<span class="mini-card">3</span> alpha-lead' in html
    assert '<span class="mini-card">55</span>' not in html
    assert "<dt>Mean</dt><dd>5.5</dd>" in html
    assert "<dt>Median</dt><dd>5.5</dd>" in html
    assert "<dt>Min\N{EN DASH}max</dt><dd>3\N{EN DASH}8</dd>" in html
    assert "<dt>Consensus</dt><dd>no</dd>" in html
    assert '<span class="estimate">5</span>' in html


def test_history_lists_every_finished_round_of_the_team(team, team_factory):
    t = team
    a, b = add(t, "Login page", "Logout")
    play_round(t, a, {t.bob: "5", t.lead: "5"}, estimate="5")
    play_round(t, b, {t.bob: "?"})
    play_round(t, None, {t.lead: "1"})
    table_services.round_start(membership=t.lead, story_id=b.pk)  # still voting
    # A member who left is still credited, by a neutral name.
    account_services.membership_remove(actor=t.bob, user_id=t.bob.user_id)
    other = team_factory("Beta")
    play_round(
        SimpleNamespace(lead=facilitator_of(other), shard=other.shard), None, {}
    )  # another team's round

    response = t.as_olga.get(url("team_history", t))
    assert response.status_code == 200
    rounds = response.context["rounds"]
    assert [(r.title, r.status) for r in rounds] == [
        ("Spike", "revealed"),
        ("Logout", "revealed"),
        ("Login page", "accepted"),
    ]
    html = response.content.decode()
    assert f"former member #{t.bob.user_id}" not in html
    assert '<span class="mini-card">5</span> bob' in html
    assert "<dt>Consensus</dt><dd>yes</dd>" in html
    # The deleted story's round stays in the history.
    story_services.story_delete(membership=t.lead, story_id=a.pk)
    rounds = t.as_olga.get(url("team_history", t)).context["rounds"]
    assert [(r.title, r.story_id) for r in rounds][-1] == ("Login page", None)


def test_history_names_votes_of_deleted_users_neutrally(team):
    t = team
    play_round(t, None, {t.bob: "13"})
    User.objects.filter(pk=t.bob.user_id).delete()
    html = t.as_lead.get(url("team_history", t)).content.decode()
    assert f'<span class="mini-card">13</span> former member #{t.bob.user_id}' in html


def test_empty_history(team):
    response = team.as_lead.get(url("team_history", team))
    assert response.status_code == 200
    assert "No finished round yet." in response.content.decode()


# --- Admin ------------------------------------------------------------------------------------


@pytest.fixture
def admin_client_(db) -> Client:
    return client_for(User.objects.create_superuser("root", "root@example.com", "pw-for-root-42"))


def test_admin_story_and_round_lists_read_the_shard(admin_client_, team):
    t = team
    story = story_services.story_create(membership=t.lead, title="Login page", external_key="K-1")
    round_ = play_round(t, story, {t.bob: "21", t.lead: "34"})

    shard = f"?shard={t.shard}"
    response = admin_client_.get(reverse("admin:stories_story_changelist") + shard)
    assert response.status_code == 200
    assert [s.pk for s in response.context["cl"].result_list] == [story.pk]
    assert "Login page" in response.content.decode()
    response = admin_client_.get(
        reverse("admin:stories_story_changelist") + f"?shard={t.shard}&team_id={t.team.pk}"
    )
    assert [s.pk for s in response.context["cl"].result_list] == [story.pk]

    response = admin_client_.get(reverse("admin:rooms_round_changelist") + shard)
    assert response.status_code == 200
    assert [r.pk for r in response.context["cl"].result_list] == [round_.pk]

    response = admin_client_.get(reverse("admin:stories_story_change", args=[story.pk]) + shard)
    assert response.status_code == 200
    assert response.context["original"].title == "Login page"


def test_admin_round_page_shows_its_votes(admin_client_, team):
    t = team
    round_ = play_round(t, None, {t.bob: "21", t.lead: "34"})
    response = admin_client_.get(
        reverse("admin:rooms_round_change", args=[round_.pk]) + f"?shard={t.shard}"
    )
    assert response.status_code == 200
    assert response.context["original"].pk == round_.pk
    [inline] = response.context["inline_admin_formsets"]
    assert sorted(form.original.value for form in inline) == ["21", "34"]
    html = response.content.decode()
    assert "21" in html
    assert "34" in html
    # Rounds are records: the admin shows them but does not edit or add them.
    assert response.context["has_change_permission"] is False
    assert admin_client_.get(reverse("admin:rooms_round_add")).status_code == 403


def test_admin_unknown_shard_falls_back_to_the_first(admin_client_, team, shard_aliases):
    t = team
    [story] = add(t, "Login page")
    response = admin_client_.get(reverse("admin:stories_story_changelist") + "?shard=nowhere")
    assert response.status_code == 200
    assert [s.pk for s in response.context["cl"].result_list] == (
        [story.pk] if t.shard == shard_aliases[0] else []
    )


@pytest.fixture
def hooked(team, settings):
    """The team with a webhook endpoint (never called here: deliveries wait for a commit)."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    integrations.webhook_endpoint_create(
        actor=team.lead, url="http://127.0.0.1:9/hook", events=["story.created"]
    )
    integrations.webhook_endpoint_create(actor=team.lead, url="http://127.0.0.1:9/all", events=[])
    return team


def deliveries(t) -> list[str]:
    rows = WebhookDelivery.objects.using(t.shard).filter(team_id=t.team.pk)
    return sorted(rows.values_list("event", flat=True))


def story_form(t, **fields) -> dict:
    return {"team_id": t.team.pk, "description": "", "external_key": "", "url": "", **fields}


def test_admin_adds_a_story_through_the_services(admin_client_, hooked, listen, committed):
    """The admin's story joins the end of the backlog; open tables and webhooks hear of it."""
    t = hooked
    add(t, "Login page")
    channel = listen(t.team)
    with committed(t.shard):
        response = admin_client_.post(
            reverse("admin:stories_story_add") + f"?shard={t.shard}",
            story_form(t, title=" Logout ", external_key="K-2"),
        )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert titles(t) == ["Login page", "Logout"]
    story = Story.objects.using(t.shard).get(team_id=t.team.pk, external_key="K-2")
    assert story.position == 2
    assert story.created_by_id == User.objects.get(username="root").pk
    assert [e["type"] for e in channel.events()] == ["backlog_changed"]
    assert deliveries(t) == ["story.created"] * 4  # two stories, each for two endpoints


def test_admin_adds_stories_only_for_teams_on_the_chosen_shard(admin_client_, team, shard_aliases):
    t = team
    elsewhere = next(alias for alias in shard_aliases if alias != t.shard)
    response = admin_client_.post(
        reverse("admin:stories_story_add") + f"?shard={elsewhere}", story_form(t, title="Lost")
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["team_id"] == [
        f"Alpha lives on shard {t.shard}: add its stories there."
    ]
    response = admin_client_.post(
        reverse("admin:stories_story_add") + f"?shard={t.shard}",
        story_form(t, team_id=t.team.pk + 100, title="Lost"),
    )
    assert response.context["adminform"].form.errors["team_id"] == ["No team has this id."]
    assert titles(t) == []


def test_admin_edits_and_deletes_stories_through_the_services(
    admin_client_, hooked, listen, committed
):
    t = hooked
    login, logout, signup = add(t, "Login page", "Logout", "Signup")
    shard = f"?shard={t.shard}"
    channel = listen(t.team)
    with committed(t.shard):
        response = admin_client_.post(
            reverse("admin:stories_story_change", args=[login.pk]) + shard,
            story_form(t, title="Log in", position=9, estimate="13"),
        )
    assert response.status_code == 302, response.context["adminform"].form.errors
    login.refresh_from_db(using=t.shard)
    # Order and estimates change at the table; the admin edits what a story says.
    assert (login.title, login.position, login.estimate) == ("Log in", 1, "")

    with committed(t.shard):
        response = admin_client_.post(
            reverse("admin:stories_story_delete", args=[logout.pk]) + shard, {"post": "yes"}
        )
    assert response.status_code == 302
    assert titles(t) == ["Log in", "Signup"]

    with committed(t.shard):
        response = admin_client_.post(
            reverse("admin:stories_story_changelist") + shard,
            {"action": "delete_selected", "_selected_action": [login.pk, signup.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert titles(t) == []

    assert [e["type"] for e in channel.events()] == ["backlog_changed"] * 4
    # Three stories for two endpoints; edits and deletions for the one that hears every event.
    assert deliveries(t) == ["story.created"] * 6 + ["story.deleted"] * 3 + ["story.updated"]


def test_admin_story_delete_page_lists_the_story(admin_client_, team):
    t = team
    [story] = add(t, "Login page")
    response = admin_client_.get(
        reverse("admin:stories_story_delete", args=[story.pk]) + f"?shard={t.shard}"
    )
    assert response.status_code == 200
    assert dict(response.context["model_count"]) == {"stories": 1}
    assert "Story: Login page" in response.content.decode()
