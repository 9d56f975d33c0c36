"""Domain events (pokerproject.events): declared names only, subscribers in the change's
transaction or after it commits, a batch handed over in one call per name."""

from datetime import timedelta

import pytest
from django.db import transaction

from accounts.models import User
from pokerproject import events, outbox


@pytest.fixture
def registry_state(monkeypatch):
    """Run each test on empty registries, restored afterwards."""
    monkeypatch.setattr(events, "_declared", set())
    monkeypatch.setattr(events, "_in_transaction", events.defaultdict(list))
    monkeypatch.setattr(events, "_after_commit", events.defaultdict(list))


def test_only_declared_events_can_be_emitted_or_heard(registry_state):
    with pytest.raises(events.UnknownEvent):
        events.subscribe("thing.hapened", lambda batch: None)
    with pytest.raises(events.UnknownEvent):
        events.emit(events.Event("thing.happened", team=None), using="default")
    events.declare("thing.happened")
    events.subscribe("thing.happened", lambda batch: None)
    assert "thing.happened" in events.declared()


@pytest.mark.django_db(transaction=True)
def test_in_transaction_subscribers_run_inside_and_can_undo_the_change(registry_state):
    events.declare("user.made")
    seen = []

    def refuse(batch):
        seen.append([e.data["name"] for e in batch])
        raise RuntimeError("a subscriber refuses")

    events.subscribe("user.made", refuse, in_transaction=True)

    def make_eve():
        with transaction.atomic(using="default"):
            User.objects.create(username="eve")
            events.emit(events.Event("user.made", None, {"name": "eve"}), using="default")

    with pytest.raises(RuntimeError):
        make_eve()
    assert seen == [["eve"]]
    assert not User.objects.filter(username="eve").exists()


@pytest.mark.django_db(transaction=True)
def test_after_commit_subscribers_hear_a_batch_once_it_commits_and_never_a_rollback(
    registry_state,
):
    events.declare("user.made", "user.left")
    heard = []
    events.subscribe("user.made", "user.left", lambda batch: heard.append(batch))
    with transaction.atomic(using="default"):
        events.emit(
            [
                events.Event("user.made", None, {"n": 1}),
                events.Event("user.left", None, {"n": 2}),
                events.Event("user.made", None, {"n": 3}),
            ],
            using="default",
        )
        assert heard == []  # not before the commit
    assert [[(e.name, e.data["n"]) for e in batch] for batch in heard] == [
        [("user.made", 1), ("user.made", 3)],
        [("user.left", 2)],
    ]
    heard.clear()

    def rolled_back():
        with transaction.atomic(using="default"):
            events.emit(events.Event("user.made", None, {"n": 4}), using="default")
            raise LookupError("rolled back")

    with pytest.raises(LookupError):
        rolled_back()
    assert heard == []


def test_backoff_doubles_and_is_capped():
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 9)] == [2, 4, 8, 512]
    assert outbox.backoff(10) == timedelta(minutes=10)
    assert outbox.backoff(500, cap=timedelta(seconds=30)) == timedelta(seconds=30)


def test_every_outbox_is_registered_with_a_task_of_the_project():
    from pokerproject.celery import app

    names = {box.name for box in outbox.outboxes()}
    assert names == {
        "replication",
        "webhooks",
        "jira",
        "notifications-directory",
        "notifications-team",
    }
    for box in outbox.outboxes():
        assert box.task in app.tasks, box.task
