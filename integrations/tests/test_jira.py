"""Jira Cloud against a local server implementing the REST v3 endpoints the app uses: field
discovery, JQL import with nextPageToken pagination and sanitised descriptions, and the
write-back of accepted estimates with its failure modes (401, 400 not on screen, 429)."""

import pytest

from integrations import crypto, jira
from integrations.models import JiraConnection, JiraSync, SyncStatus
from integrations.tests.receivers import STORY_POINTS, FakeJira, JiraState
from rooms import services as table
from stories import selectors

pytestmark = pytest.mark.django_db(databases="__all__")

ISSUES = [
    {
        "key": "PROJ-1",
        "summary": "Log in",
        "html": "<p>As a user <b>I</b> log in.</p><script>alert(1)</script>",
    },
    {
        "key": "PROJ-2",
        "summary": "Log out",
        "html": '<p onclick="x()">Bye &amp; see you</p><ul><li>one</li><li>two</li></ul>',
    },
    {"key": "PROJ-3", "summary": "Reset password"},
    {"key": "PROJ-4", "summary": "Profile"},
    {"key": "PROJ-5", "summary": "Avatar"},
]


@pytest.fixture
def site():
    server = FakeJira(JiraState(issues=[dict(i) for i in ISSUES]))
    yield server
    server.close()


@pytest.fixture
def connected(alpha, site):
    jira.connection_save(
        actor=alpha.lead, site_url=site.base_url, email="bot@example.com", api_token="jira-token"
    )
    alpha.connection = JiraConnection.objects.get(team=alpha.team)
    return alpha


def import_all(t, jql: str = "project = PROJ"):
    return jira.issues_import(membership=t.lead, connection=t.connection, jql=jql)


def estimate(t, key: str, value: str, committed) -> JiraSync:
    story = selectors.story_list(team=t.team).get(external_key=key)
    table.round_start(membership=t.lead, story_id=story.pk)
    table.round_reveal(membership=t.lead)
    with committed(t.shard):
        table.estimate_accept(membership=t.lead, value=value)
    return JiraSync.objects.using(t.shard).get(story_id=story.pk)


def test_the_connection_is_encrypted_and_finds_the_story_points_field(connected):
    c = connected.connection
    assert c.story_points_field == STORY_POINTS
    assert c.story_points_field_name == "Story point estimate"
    assert "jira-token" not in c.api_token_encrypted
    assert "bot@" not in c.email_encrypted
    assert crypto.decrypt(c.api_token_encrypted) == "jira-token"


def test_wrong_credentials_are_refused_on_save(alpha, site):
    with pytest.raises(jira.JiraUnauthorized):
        jira.connection_save(
            actor=alpha.lead, site_url=site.base_url, email="bot@example.com", api_token="nope"
        )
    assert not JiraConnection.objects.filter(team=alpha.team).exists()


def test_import_pages_through_every_issue_and_is_idempotent(connected, site):
    t = connected
    result = import_all(t)
    assert len(result.created) == 5
    searches = [path for method, path in site.state.requests if path == "/rest/api/3/search/jql"]
    assert len(searches) == 3  # pages of 2, 2 and 1 by nextPageToken
    story = selectors.story_list(team=t.team).get(external_key="PROJ-1")
    assert story.title == "Log in"
    assert story.url == f"{site.base_url}/browse/PROJ-1"
    assert story.description == "As a user I log in."
    two = selectors.story_list(team=t.team).get(external_key="PROJ-2")
    assert two.description == "Bye & see you\none\ntwo"
    again = import_all(t)
    assert (len(again.created), len(again.unchanged)) == (0, 5)
    site.state.issues[2]["summary"] = "Reset a forgotten password"
    assert [s.external_key for s in import_all(t).updated] == ["PROJ-3"]


def test_import_waits_out_a_429(connected, site):
    site.state.rate_limit_next = 1
    assert len(import_all(connected).created) == 5
    searches = [path for _, path in site.state.requests if path.endswith("/search/jql")]
    assert len(searches) == 4  # the refused one, then three pages


def test_import_as_a_task_records_its_outcome(connected, site):
    from integrations.tasks import jira_import

    summary = jira_import.delay(connected.team.pk, connected.lead.user_id, "project = PROJ").get()
    assert summary.startswith("Imported 5 issues")
    site.state.token = "revoked"
    failed = jira_import.delay(connected.team.pk, connected.lead.user_id, "x").get()
    assert "jira_unauthorized" in failed
    connected.connection.refresh_from_db()
    assert connected.connection.last_import_result == failed


def test_an_accepted_estimate_is_written_back(connected, site, committed):
    import_all(connected)
    sync = estimate(connected, "PROJ-1", "8", committed)
    assert sync.status == SyncStatus.DONE, sync.detail
    assert site.state.updates["PROJ-1"] == {STORY_POINTS: 8}
    half = estimate(connected, "PROJ-2", "½", committed)
    assert half.status == SyncStatus.DONE
    assert site.state.updates["PROJ-2"] == {STORY_POINTS: 0.5}


def test_a_field_not_on_the_screen_fails_with_a_reason(connected, site, committed):
    import_all(connected)
    site.state.not_on_screen.add("PROJ-1")
    sync = estimate(connected, "PROJ-1", "5", committed)
    assert sync.status == SyncStatus.FAILED
    assert sync.detail.startswith("field_not_on_screen")
    assert "PROJ-1" not in site.state.updates


def test_a_400_not_on_screen_from_the_update_fails_too(connected, site, committed, monkeypatch):
    """editmeta may say yes while the update still refuses (screens differ per issue type)."""
    import_all(connected)
    site.state.not_on_screen.add("PROJ-1")
    monkeypatch.setattr(
        jira.JiraClient, "editmeta", lambda self, key: {"fields": {STORY_POINTS: {}}}
    )
    sync = estimate(connected, "PROJ-1", "5", committed)
    assert sync.status == SyncStatus.FAILED
    assert "not on the appropriate screen" in sync.detail


def test_revoked_credentials_fail_the_write_back(connected, site, committed):
    import_all(connected)
    site.state.token = "revoked"
    sync = estimate(connected, "PROJ-1", "3", committed)
    assert sync.status == SyncStatus.FAILED
    assert sync.detail.startswith("jira_unauthorized")


def test_a_429_is_retried_after_retry_after(connected, site, committed):
    import_all(connected)
    site.state.rate_limit_next = 1
    site.state.retry_after = "7"
    sync = estimate(connected, "PROJ-1", "3", committed)
    assert sync.status == SyncStatus.PENDING  # eager mode: left for the next attempt
    assert sync.attempts == 1
    assert "jira_rate_limited" in sync.detail
    site.state.rate_limit_next = 1
    with pytest.raises(jira.RetryLater) as retry:
        jira.sync_push(shard=connected.shard, sync_id=sync.pk)
    assert retry.value.delay == 7.0
    assert jira.sync_push(shard=connected.shard, sync_id=sync.pk) == SyncStatus.DONE


def test_non_numeric_estimates_are_skipped(connected, site, committed):
    import_all(connected)
    sync = estimate(connected, "PROJ-1", "XL", committed)
    assert sync.status == SyncStatus.SKIPPED
    assert site.state.updates == {}


def test_stories_without_a_jira_key_are_not_written(connected, committed):
    from stories import services as story_services

    story = story_services.story_create(membership=connected.lead, title="Local")
    table.round_start(membership=connected.lead, story_id=story.pk)
    table.round_reveal(membership=connected.lead)
    with committed(connected.shard):
        table.estimate_accept(membership=connected.lead, value="3")
    assert not JiraSync.objects.using(connected.shard).exists()


def test_the_jira_page_shows_the_connection_and_results(connected, site, committed):
    import_all(connected)
    estimate(connected, "PROJ-1", "8", committed)
    page = connected.as_lead.get(f"/teams/{connected.slug}/integrations/jira/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Story point estimate" in html
    assert "PROJ-1" in html
    assert "Written to Jira" in html
    assert "jira-token" not in html
    assert (
        connected.as_observer.get(f"/teams/{connected.slug}/integrations/jira/").status_code == 403
    )
