"""Jira Cloud: import a team's stories by JQL and write accepted estimates back.

REST v3 endpoints used (https://developer.atlassian.com/cloud/jira/platform/rest/v3/):
- ``GET  /rest/api/3/field``                  discover the story points field
- ``POST /rest/api/3/search/jql``             search, paginated by ``nextPageToken``
- ``GET  /rest/api/3/issue/{key}/editmeta``   is the field on the issue's edit screen?
- ``PUT  /rest/api/3/issue/{key}``            write the estimate

Imports go through stories.services.stories_upsert (by issue key, so importing twice
updates instead of duplicating). Descriptions come as HTML (``renderedFields``) and are
sanitised with nh3, then kept as text. A write-back is a JiraSync row committed with the accepted
estimate (``on_story_estimated`` subscribes to ``story.estimated`` in its transaction) and
pushed by a Celery task with retries; 401 and "field not on
screen" fail at once with a reason the facilitator sees, 429 waits for Retry-After.
"""

from __future__ import annotations

import html
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import nh3
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts import roles
from accounts.models import Membership
from integrations import crypto, netguard
from integrations.models import JiraConnection, JiraSync, SyncStatus
from pokerproject import events, outbox
from pokerproject.errors import DomainError, gettext_noop
from rooms import game
from stories.models import Story
from stories.services import UpsertResult, stories_upsert

if TYPE_CHECKING:
    from accounts.models import Team

logger = logging.getLogger(__name__)

STORY_POINTS_SCHEMA = "com.pyxis.greenhopper.jira:jsw-story-points"
STORY_POINTS_NAMES = ("story point estimate", "story points")
ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]+-\d+$")
PAGE_SIZE = 50
MAX_IMPORT = 500
MAX_RATE_LIMIT_WAIT = 60.0
MAX_PUSH_ATTEMPTS = 8

OUTBOX = outbox.register(
    outbox.Outbox(
        name="jira",
        task="integrations.jira_push",
        model=JiraSync,
        pending=Q(status=SyncStatus.PENDING),
        due=lambda now, grace: Q(next_attempt_at__lte=now - grace),
        limit=200,
    )
)


class JiraError(DomainError):
    code = "jira_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        params: dict[str, object] | None = None,
    ):
        super().__init__(message, code=code, params=params)
        self.status = status


class JiraUnauthorized(JiraError):
    code = "jira_unauthorized"


class JiraFieldNotOnScreen(JiraError):
    code = "field_not_on_screen"


class JiraRateLimited(JiraError):
    code = "jira_rate_limited"

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message, status=429)
        self.retry_after = retry_after


class RetryLater(Exception):
    """Not a failure: the task should try again after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.delay = delay


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "5")))
    except ValueError:
        return 5.0


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    messages = list(body.get("errorMessages") or []) + [
        f"{k}: {v}" for k, v in (body.get("errors") or {}).items()
    ]
    return "; ".join(messages)[:250] or f"HTTP {response.status_code}"


class JiraClient:
    """A small Jira Cloud REST v3 client (basic auth with an account e-mail and API token)."""

    def __init__(self, site_url: str, email: str, api_token: str) -> None:
        allow = settings.JIRA_ALLOW_PRIVATE_TARGETS
        netguard.check_url(site_url, allow_private=allow)
        self.site_url = site_url.rstrip("/")
        self._http = netguard.client(
            site_url,
            allow_private=allow,
            base_url=self.site_url,
            auth=(email, api_token),
            timeout=settings.JIRA_TIMEOUT_SECONDS,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    @classmethod
    def for_connection(cls, connection: JiraConnection) -> JiraClient:
        return cls(
            connection.site_url,
            crypto.decrypt(connection.email_encrypted),
            crypto.decrypt(connection.api_token_encrypted),
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise JiraError(
                gettext_noop("Jira unreachable: %(error)s"),
                code="jira_unreachable",
                params={"error": type(exc).__name__},
            ) from exc
        except netguard.UnsafeUrl as exc:  # the site's name turned private since it was saved
            raise JiraError(str(exc), code="unsafe_url") from exc
        if response.status_code == 401:
            raise JiraUnauthorized(
                gettext_noop("Jira refused the e-mail and API token (401)."), status=401
            )
        if response.status_code == 429:
            raise JiraRateLimited(
                gettext_noop("Jira rate limit (429)."), retry_after=_retry_after(response)
            )
        if response.status_code == 400 and "not on the appropriate screen" in response.text:
            raise JiraFieldNotOnScreen(_error_text(response), status=400)
        if response.status_code >= 400:
            raise JiraError(_error_text(response), status=response.status_code)
        return response

    def fields(self) -> list[dict[str, Any]]:
        return self._request("GET", "/rest/api/3/field").json()

    def search(self, jql: str, fields: list[str], next_page_token: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "jql": jql,
            "fields": fields,
            "expand": "renderedFields",
            "maxResults": PAGE_SIZE,
        }
        if next_page_token:
            body["nextPageToken"] = next_page_token
        return self._request("POST", "/rest/api/3/search/jql", json=body).json()

    def editmeta(self, key: str) -> dict[str, Any]:
        return self._request("GET", f"/rest/api/3/issue/{key}/editmeta").json()

    def update_issue(self, key: str, fields: dict[str, Any]) -> None:
        self._request("PUT", f"/rest/api/3/issue/{key}", json={"fields": fields})


def discover_story_points_field(fields: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The (id, name) of the site's story points field, by its schema first, then its name."""
    for field in fields:
        if (field.get("schema") or {}).get("custom") == STORY_POINTS_SCHEMA:
            return field["id"], field.get("name", "")
    for field in fields:
        if (field.get("name") or "").strip().lower() in STORY_POINTS_NAMES:
            return field["id"], field["name"]
    return None


def description_from_html(rendered: str | None) -> str:
    """Jira's rendered HTML as safe text: sanitised by nh3 (scripts, styles, attributes gone),
    block ends kept as line breaks, then the remaining tags dropped and entities decoded."""
    if not rendered:
        return ""
    safe = nh3.clean(rendered, tags={"p", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "pre"})
    with_breaks = re.sub(r"(?i)<br\s*/?>|</(p|li|h[1-4]|pre)>", "\n", safe)
    text = html.unescape(nh3.clean(with_breaks, tags=set()))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- connection -------------------------------------------------------------------------------


def connection_save(
    *, actor: Membership, site_url: str, email: str, api_token: str, write_back: bool = True
) -> JiraConnection:
    """Check the credentials against the site, discover its story points field and store the
    connection (e-mail and token encrypted)."""
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    client = JiraClient(site_url, email, api_token)
    try:
        found = discover_story_points_field(client.fields())
    finally:
        client.close()
    field_id, field_name = found or ("", "")
    connection, _ = JiraConnection.objects.update_or_create(
        team=actor.team,
        defaults={
            "site_url": site_url.rstrip("/"),
            "email_encrypted": crypto.encrypt(email.strip()),
            "api_token_encrypted": crypto.encrypt(api_token.strip()),
            "story_points_field": field_id,
            "story_points_field_name": field_name,
            "write_back": write_back,
            "created_by_id": actor.user_id,
        },
    )
    return connection


def connection_update(
    *,
    connection: JiraConnection,
    site_url: str,
    story_points_field: str,
    story_points_field_name: str,
    write_back: bool,
) -> JiraConnection:
    """Correct a connection's site or story points field, or switch the write-back (the admin's
    edit; the credentials are checked when a facilitator connects)."""
    connection.site_url = site_url.rstrip("/")
    connection.story_points_field = story_points_field.strip()
    connection.story_points_field_name = story_points_field_name.strip()
    connection.write_back = write_back
    connection.save(
        update_fields=["site_url", "story_points_field", "story_points_field_name", "write_back"]
    )
    return connection


def connection_delete_for_team(*, team: Team) -> None:
    """Forget the team's Jira site. No acting member: the callers check who may
    (connection_delete, or the admin's permissions)."""
    JiraConnection.objects.filter(team=team).delete()


def connection_delete(*, actor: Membership) -> None:
    roles.require(actor.role, roles.Action.MANAGE_MEMBERS)
    connection_delete_for_team(team=actor.team)


# --- import -----------------------------------------------------------------------------------


def _with_rate_limit(call, *, attempts: int = 3):
    for attempt in range(attempts):
        try:
            return call()
        except JiraRateLimited as exc:
            if attempt == attempts - 1 or exc.retry_after > MAX_RATE_LIMIT_WAIT:
                raise
            time.sleep(exc.retry_after)
    raise AssertionError("unreachable")  # pragma: no cover


def issues_import(
    *, membership: Membership, connection: JiraConnection, jql: str, limit: int = MAX_IMPORT
) -> UpsertResult:
    """Upsert the issues ``jql`` finds (up to ``limit``) as stories keyed by the issue key."""
    client = JiraClient.for_connection(connection)
    fields = ["summary", "description"]
    items: list[dict[str, Any]] = []
    token: str | None = None
    try:
        while len(items) < limit:
            page = _with_rate_limit(lambda t=token: client.search(jql, fields, t))
            for issue in page.get("issues", []):
                key = issue["key"]
                rendered = (issue.get("renderedFields") or {}).get("description")
                items.append(
                    {
                        "external_key": key,
                        "title": (issue.get("fields", {}).get("summary") or key)[:200],
                        "description": description_from_html(rendered),
                        "url": f"{connection.site_url}/browse/{key}",
                    }
                )
            token = page.get("nextPageToken")
            if page.get("isLast", token is None) or not token:
                break
    finally:
        client.close()
    result = UpsertResult()
    for start in range(0, min(len(items), limit), 100):
        batch = stories_upsert(membership=membership, items=items[start : start + 100])
        result.created += batch.created
        result.updated += batch.updated
        result.unchanged += batch.unchanged
    return result


def import_for_team(*, team_id: int, user_id: int, jql: str) -> str:
    """The import task's body: run it as the member who asked, record the outcome."""
    membership = (
        Membership.objects.select_related("team", "user")
        .filter(team_id=team_id, user_id=user_id)
        .first()
    )
    connection = JiraConnection.objects.filter(team_id=team_id).first()
    if membership is None or connection is None:
        return "gone"
    try:
        result = issues_import(membership=membership, connection=connection, jql=jql)
        summary = (
            f"Imported {len(result.stories)} issues: {len(result.created)} new, "
            f"{len(result.updated)} updated, {len(result.unchanged)} unchanged."
        )
    except DomainError as exc:
        summary = f"Import failed ({exc.code}): {exc.message}"
    JiraConnection.objects.filter(pk=connection.pk).update(
        last_import_at=timezone.now(), last_import_result=summary[:300]
    )
    return summary


# --- write-back -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    status: str
    detail: str


def on_story_estimated(estimated: list[events.Event]) -> None:
    """Queue the write-back of each accepted estimate, in the transaction that accepts it."""
    for event in estimated:
        sync_record(team=event.team, story=event.data["story"], estimate=event.data["estimate"])


def sync_record(*, team: Team, story: Story, estimate: str) -> JiraSync | None:
    """Queue the write-back of an accepted estimate; call inside its shard transaction."""
    key = story.external_key
    if not ISSUE_KEY.match(key or ""):
        return None
    connection = JiraConnection.objects.filter(team_id=team.pk, write_back=True).first()
    if connection is None:
        return None
    sync = JiraSync.objects.using(team.shard).create(
        team_id=team.pk, story_id=story.pk, issue_key=key, estimate=estimate
    )
    OUTBOX.enqueue_on_commit(team.shard, [sync.pk])
    return sync


def points_of(estimate: str) -> float | int | None:
    value = game.card_value(estimate)
    if value is None:
        return None
    return int(value) if value.is_integer() else value


def _push(connection: JiraConnection, sync: JiraSync) -> _Outcome:
    points = points_of(sync.estimate)
    if points is None:
        return _Outcome(SyncStatus.SKIPPED, f"{sync.estimate!r} is not a number of points.")
    if not connection.story_points_field:
        return _Outcome(SyncStatus.FAILED, "No story points field was found on the site.")
    field = connection.story_points_field
    client = JiraClient.for_connection(connection)
    try:
        editable = client.editmeta(sync.issue_key).get("fields", {})
        if field not in editable:
            raise JiraFieldNotOnScreen(
                gettext_noop("%(field)s is not on the issue's edit screen."),
                params={"field": connection.story_points_field_name or field},
            )
        client.update_issue(sync.issue_key, {field: points})
    finally:
        client.close()
    return _Outcome(SyncStatus.DONE, f"{connection.story_points_field_name or field} = {points}")


def sync_push(*, shard: str, sync_id: uuid.UUID) -> str:
    """Write one estimate to Jira. Returns the row's status; raises RetryLater for a 429 or a
    transient failure (after recording it), so the task retries with the given delay."""
    rows = JiraSync.objects.using(shard).filter(pk=sync_id)
    sync = rows.first()
    if sync is None or sync.status != SyncStatus.PENDING:
        return sync.status if sync else "gone"
    connection = JiraConnection.objects.filter(team_id=sync.team_id).first()
    attempts = sync.attempts + 1
    if connection is None:
        outcome = _Outcome(SyncStatus.FAILED, "The team has no Jira connection any more.")
    else:
        try:
            outcome = _push(connection, sync)
        except (JiraUnauthorized, JiraFieldNotOnScreen) as exc:
            outcome = _Outcome(SyncStatus.FAILED, f"{exc.code}: {exc.message}")
        except JiraRateLimited as exc:
            _reschedule(rows, attempts, exc.retry_after, f"{exc.code}: {exc.message}")
            raise RetryLater(exc.retry_after) from exc
        except JiraError as exc:
            transient = exc.status is None or exc.status >= 500
            if transient and attempts < MAX_PUSH_ATTEMPTS:
                delay = outbox.backoff(attempts).total_seconds()
                _reschedule(rows, attempts, delay, f"{exc.code}: {exc.message}")
                raise RetryLater(delay) from exc
            outcome = _Outcome(SyncStatus.FAILED, f"{exc.code}: {exc.message}")
    rows.update(
        status=outcome.status,
        attempts=attempts,
        detail=outcome.detail[:300],
        finished_at=timezone.now(),
    )
    return outcome.status


def _reschedule(rows, attempts: int, delay: float, detail: str) -> None:
    rows.update(
        attempts=attempts,
        detail=detail[:300],
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )


def sweep() -> int:
    """Queue every pending write-back whose attempt is due. Returns how many were queued."""
    return OUTBOX.sweep()
