"""Webhooks: recorded with the change (same shard transaction), signed per Standard Webhooks,
sent to a real local receiver that verifies with the ``standardwebhooks`` library, logged per
attempt, retried, and disabled with a notice when an endpoint keeps failing. Tasks run eagerly
here; test_webhooks_worker.py runs them in a real Celery worker."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from integrations import selectors, services, webhooks
from integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from integrations.netguard import UnsafeUrl
from integrations.tests.fixtures import make_team
from integrations.tests.receivers import WebhookReceiver, _WebhookHandler
from pokerproject import outbox
from rooms import services as table
from stories import services as story_services

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def hooked(alpha, receiver):
    endpoint, secret = services.webhook_endpoint_create(
        actor=alpha.lead, url=receiver.url, events=[]
    )
    receiver.secret = secret
    alpha.endpoint = endpoint
    alpha.secret = secret
    return alpha


def deliveries(t, **filters):
    return list(
        WebhookDelivery.objects.using(t.shard)
        .filter(team_id=t.team.pk, **filters)
        .order_by("created_at")
    )


def test_teams_with_active_endpoints(hooked, beta, team_factory, add_member, receiver):
    """The reveal batch's one question for all its teams: which have an endpoint that is on."""
    off, _ = services.webhook_endpoint_create(actor=beta.lead, url=receiver.url, events=[])
    services.webhook_endpoint_set_active(actor=beta.lead, endpoint_id=off.pk, active=False)
    gamma = make_team(team_factory, add_member, "Gamma")
    teams = [hooked.team.pk, beta.team.pk, gamma.team.pk]
    assert selectors.teams_with_active_endpoints(teams) == {hooked.team.pk}
    assert selectors.teams_with_active_endpoints([]) == set()
    services.webhook_endpoint_set_active(actor=beta.lead, endpoint_id=off.pk, active=True)
    assert selectors.teams_with_active_endpoints(teams) == {hooked.team.pk, beta.team.pk}


def test_signature_is_the_standard_webhooks_one():
    secret = services.new_webhook_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"story.created","data":{}}'
    ours = webhooks.sign(secret, "msg_1", 1_700_000_000, body)
    theirs = Webhook(secret).sign(
        "msg_1", datetime.fromtimestamp(1_700_000_000, UTC), body.decode()
    )
    assert ours == theirs


def test_a_change_and_its_deliveries_commit_together(hooked):
    t = hooked
    story_services.story_create(membership=t.lead, title="Kept")
    assert [d.event for d in deliveries(t)] == ["story.created"]

    def create_then_fail():
        with transaction.atomic(using=t.shard):
            story_services.story_create(membership=t.lead, title="Rolled back")
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        create_then_fail()
    assert [d.event for d in deliveries(t)] == ["story.created"]


def test_each_service_records_its_event_for_subscribed_endpoints(hooked, receiver):
    t = hooked
    only_reveals, _ = services.webhook_endpoint_create(
        actor=t.lead, url=receiver.url, events=["round.revealed"]
    )
    story = story_services.story_create(membership=t.lead, title="S", external_key="ALP-7")
    story_services.story_update(membership=t.lead, story_id=story.pk, title="S2")
    table.round_start(membership=t.lead, story_id=story.pk)
    table.vote_cast(membership=t.voter, value="3")
    table.round_reveal(membership=t.lead)
    table.estimate_accept(membership=t.lead, value="3")
    story_services.story_delete(membership=t.lead, story_id=story.pk)
    events = [d.event for d in deliveries(t, endpoint_id=t.endpoint.pk)]
    assert events == [
        "story.created",
        "story.updated",
        "round.revealed",
        "story.estimated",
        "story.deleted",
    ]
    assert [d.event for d in deliveries(t, endpoint_id=only_reveals.pk)] == ["round.revealed"]
    revealed = deliveries(t, event="round.revealed")[0].payload
    assert revealed["data"]["round"]["votes"] == [{"user_id": t.voter.user_id, "value": "3"}]
    estimated = deliveries(t, event="story.estimated")[0].payload["data"]
    assert estimated["estimate"] == "3"
    assert estimated["story"]["external_key"] == "ALP-7"


def test_a_quick_round_estimate_is_no_story_event(hooked):
    t = hooked
    table.round_start(membership=t.lead, title="Quick")
    table.round_reveal(membership=t.lead)
    table.estimate_accept(membership=t.lead, value="5")
    assert [d.event for d in deliveries(t)] == ["round.revealed"]


def test_delivered_after_commit_signed_and_logged(hooked, receiver, committed):
    t = hooked
    with committed(t.shard):
        story_services.story_create(membership=t.lead, title="Hello", external_key="ALP-5")
    [got] = receiver.received
    assert got.verified
    assert got.status == 200
    assert got.payload["type"] == "story.created"
    assert got.payload["data"]["story"]["title"] == "Hello"
    [delivery] = deliveries(t)
    assert got.headers["webhook-id"] == delivery.message_id
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 1
    [attempt] = WebhookAttempt.objects.using(t.shard).filter(delivery=delivery)
    assert attempt.succeeded
    assert attempt.status_code == 200
    assert '"ok": true' in attempt.response_excerpt


def test_a_failed_attempt_is_retried_later_with_the_same_id(hooked, receiver, committed):
    t = hooked
    receiver.fail_next = 1
    with committed(t.shard):
        story_services.story_create(membership=t.lead, title="Retry me")
    [delivery] = deliveries(t)
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code == 503
    assert delivery.next_attempt_at > timezone.now()
    assert webhooks.delivery_send(shard=t.shard, delivery_id=delivery.pk) == "delivered"
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert [
        a.status_code for a in WebhookAttempt.objects.using(t.shard).order_by("attempted_at")
    ] == [503, 200]
    assert WebhookEndpoint.objects.get(pk=t.endpoint.pk).consecutive_failures == 0


def test_the_sweep_sends_what_is_due(hooked, receiver):
    t = hooked
    story_services.story_create(membership=t.lead, title="Never queued")  # no commit: no task
    WebhookDelivery.objects.using(t.shard).update(
        next_attempt_at=timezone.now() - timedelta(minutes=1)
    )
    assert webhooks.sweep() == 1
    assert [r.payload["data"]["story"]["title"] for r in receiver.accepted()] == ["Never queued"]
    assert webhooks.sweep() == 0


def test_an_endpoint_that_keeps_failing_is_disabled_and_facilitators_told(
    hooked, receiver, settings, mailoutbox, committed
):
    t = hooked
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 0
    t.lead.user.email = "lead@example.com"
    t.lead.user.save()
    receiver.fail_next = 100
    story_services.story_create(membership=t.lead, title="Doomed")
    [delivery] = deliveries(t)
    for _ in range(3):
        WebhookDelivery.objects.using(t.shard).update(next_attempt_at=timezone.now())
        with committed("default"):  # the notice is mailed once the disabling commits
            webhooks.delivery_send(shard=t.shard, delivery_id=delivery.pk)
    endpoint = WebhookEndpoint.objects.get(pk=t.endpoint.pk)
    assert not endpoint.is_active
    assert "3 failed deliveries in a row" in endpoint.disabled_reason
    [mail] = mailoutbox
    assert mail.to == ["lead@example.com"]
    assert receiver.url in mail.subject
    assert webhooks.delivery_send(shard=t.shard, delivery_id=delivery.pk) == "cancelled"
    story_services.story_create(membership=t.lead, title="Not for a disabled endpoint")
    assert len(deliveries(t)) == 1
    page = t.as_lead.get(f"/teams/{t.slug}/")
    assert "3 failed deliveries in a row" in page.content.decode()


def test_after_the_retry_schedule_a_delivery_fails(hooked, receiver, settings):
    t = hooked
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    receiver.fail_next = 5
    story_services.story_create(membership=t.lead, title="Give up")
    [delivery] = deliveries(t)
    assert webhooks.delivery_send(shard=t.shard, delivery_id=delivery.pk) == "pending"
    assert webhooks.delivery_send(shard=t.shard, delivery_id=delivery.pk) == "failed"


def test_rotation_signs_with_both_secrets_during_the_overlap(hooked, receiver, settings):
    t = hooked
    old = t.secret
    new = services.webhook_endpoint_rotate_secret(actor=t.lead, endpoint_id=t.endpoint.pk)
    story_services.story_create(membership=t.lead, title="Rotated")
    [delivery] = deliveries(t)
    for secret in (old, new):
        receiver.secret = secret
        webhooks.delivery_send(shard=t.shard, delivery_id=delivery.pk)
        WebhookDelivery.objects.using(t.shard).update(status="pending")
    assert [r.verified for r in receiver.received] == [True, True]
    assert len(receiver.received[0].headers["webhook-signature"].split(" ")) == 2
    WebhookEndpoint.objects.filter(pk=t.endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    receiver.secret = old
    webhooks.delivery_send(shard=t.shard, delivery_id=delivery.pk)
    assert receiver.received[-1].verified is False


def test_urls_must_be_http_and_public_unless_allowed(alpha, settings):
    with pytest.raises(UnsafeUrl):
        services.webhook_endpoint_create(actor=alpha.lead, url="ftp://example.com/x", events=[])
    with pytest.raises(UnsafeUrl):
        services.webhook_endpoint_create(actor=alpha.lead, url="file:///etc/passwd", events=[])
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    for url in (
        "http://127.0.0.1:8000/x",
        "http://localhost/x",
        "http://10.1.2.3/",
        "http://[::1]/",
    ):
        with pytest.raises(UnsafeUrl):
            services.webhook_endpoint_create(actor=alpha.lead, url=url, events=[])


def test_a_private_target_is_refused_at_send_time_too(hooked, receiver, settings):
    t = hooked
    story_services.story_create(membership=t.lead, title="Blocked")
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    [delivery] = deliveries(t)
    webhooks.delivery_send(shard=t.shard, delivery_id=delivery.pk)
    assert receiver.received == []
    [attempt] = WebhookAttempt.objects.using(t.shard).all()
    assert attempt.error.startswith("refused:")


def test_only_facilitators_manage_webhooks(alpha):
    from accounts.roles import Forbidden

    with pytest.raises(Forbidden):
        services.webhook_endpoint_create(actor=alpha.voter, url="https://example.com", events=[])


def test_the_api_creates_lists_rotates_and_logs(hooked, receiver, committed):
    t = hooked
    base = f"/api/v1/teams/{t.slug}/webhooks/"
    created = t.wh.post(
        base, {"url": "https://example.com/h", "events": ["story.created"]}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["secret"].startswith("whsec_")
    listed = t.wh.get(base).json()
    assert [e["url"] for e in listed["results"]] == [receiver.url, "https://example.com/h"]
    assert "secret" not in listed["results"][0]
    rotated = t.wh.post(f"{base}{t.endpoint.pk}/rotate-secret/")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != t.secret
    receiver.secret = rotated.json()["secret"]
    with committed(t.shard):
        story_services.story_create(membership=t.lead, title="Logged")
    log = t.wh.get(f"{base}{t.endpoint.pk}/deliveries/").json()["results"]
    assert [(d["event"], d["status"]) for d in log] == [("story.created", "delivered")]
    bad = t.wh.post(base, {"url": "https://example.com/h", "events": ["nope"]}, format="json")
    assert bad.status_code == 400
    assert t.wh.delete(f"{base}{t.endpoint.pk}/").status_code == 204
    assert t.as_observer.get(base).status_code == 403


def test_a_team_has_at_most_the_configured_number_of_endpoints(alpha, settings):
    """Past WEBHOOK_MAX_ENDPOINTS_PER_TEAM the service, the API (409) and the page refuse."""
    settings.WEBHOOK_MAX_ENDPOINTS_PER_TEAM = 2
    for n in range(2):
        services.webhook_endpoint_create(
            actor=alpha.lead, url=f"https://example.com/{n}", events=[]
        )
    with pytest.raises(services.IntegrationError) as refused:
        services.webhook_endpoint_create(actor=alpha.lead, url="https://example.com/3", events=[])
    assert refused.value.code == "too_many_webhooks"

    api = alpha.wh.post(
        f"/api/v1/teams/{alpha.slug}/webhooks/", {"url": "https://example.com/4"}, format="json"
    )
    assert api.status_code == 409
    assert api["Content-Type"] == "application/problem+json"
    assert api.json()["code"] == "too_many_webhooks"

    page = alpha.as_lead.post(
        f"/teams/{alpha.slug}/integrations/webhooks/", {"url": "https://example.com/5"}, follow=True
    )
    assert "at most 2 webhooks" in page.content.decode()
    assert WebhookEndpoint.objects.filter(team=alpha.team).count() == 2

    # Deleting one makes room again.
    first = WebhookEndpoint.objects.filter(team=alpha.team).first()
    services.webhook_endpoint_delete(actor=alpha.lead, endpoint_id=first.pk)
    services.webhook_endpoint_create(actor=alpha.lead, url="https://example.com/6", events=[])


class SlowReceiver(WebhookReceiver):
    """A receiver that takes ``delay`` seconds to answer each request."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.httpd.RequestHandlerClass = _slow_handler(delay)


def _slow_handler(delay: float):
    class Slow(_WebhookHandler):
        def do_POST(self) -> None:
            time.sleep(delay)
            super().do_POST()

    return Slow


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_in_the_embedded_mode_a_request_never_waits_for_a_delivery(alpha, settings):
    """Without a broker, the deliveries of a change run on a background thread: the story is
    created at once, and the slow receiver still gets its signed event."""
    settings.OUTBOX_EAGER_IN_BACKGROUND = True
    slow = SlowReceiver(delay=2.0)
    try:
        _, slow.secret = services.webhook_endpoint_create(
            actor=alpha.lead, url=slow.url, events=["story.created"]
        )
        started = time.monotonic()
        created = alpha.rw.post(
            f"/api/v1/teams/{alpha.slug}/stories/", {"title": "Fast"}, format="json"
        )
        answered = time.monotonic() - started
        assert created.status_code == 201
        assert answered < 1.5, answered
        assert slow.accepted() == []
        assert outbox.wait_background(timeout=15)
        [event] = slow.unique_events().values()
        assert event["data"]["story"]["title"] == "Fast"
        [delivery] = deliveries(alpha)
        assert delivery.status == DeliveryStatus.DELIVERED
    finally:
        slow.close()
        outbox.wait_background(timeout=15)
