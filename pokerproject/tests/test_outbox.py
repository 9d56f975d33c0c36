"""Where the tasks an outbox queues at commit run in the embedded mode (no broker): inline for
work that stays in this deployment, on a background thread for work that waits on others."""

import threading

import pytest
from django.db import transaction
from django.db.models import Q

from integrations.models import WebhookDelivery
from pokerproject import outbox
from pokerproject.celery import app as celery_app


@pytest.fixture
def ran_in(monkeypatch) -> list[str]:
    """The names of the threads the outbox's tasks were queued from."""
    threads: list[str] = []
    monkeypatch.setattr(
        outbox.Outbox,
        "enqueue",
        lambda self, shard, key, **kw: threads.append(threading.current_thread().name),
    )
    return threads


def an_outbox(*, inline_when_eager: bool) -> outbox.Outbox:
    return outbox.Outbox(
        name="test",
        task="integrations.deliver_webhook",
        model=WebhookDelivery,
        pending=Q(),
        due=lambda now, grace: Q(),
        inline_when_eager=inline_when_eager,
    )


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize(("inline", "background"), [(True, False), (False, True)])
def test_eager_tasks_queued_at_commit_run_inline_or_in_the_background(
    settings, ran_in, inline, background
):
    assert celery_app.conf.task_always_eager
    settings.OUTBOX_EAGER_IN_BACKGROUND = True
    with transaction.atomic(using="default"):
        an_outbox(inline_when_eager=inline).enqueue_on_commit("default", ["a", "b"])
        assert ran_in == []  # nothing before the commit
    assert outbox.wait_background(timeout=10)
    assert len(ran_in) == 2
    on_thread = {name != threading.current_thread().name for name in ran_in}
    assert on_thread == {background}
    assert all(name.startswith("outbox") for name in ran_in) is background


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_the_tests_switch_keeps_every_task_inline(settings, ran_in):
    settings.OUTBOX_EAGER_IN_BACKGROUND = False
    with transaction.atomic(using="default"):
        an_outbox(inline_when_eager=False).enqueue_on_commit("default", ["a"])
    assert ran_in == [threading.current_thread().name]


def test_only_replication_runs_inline_when_eager():
    """Copies for other regions stay in the deployment; webhooks, Jira, mail servers and Slack
    are others to wait on."""
    flags = {box.name: box.inline_when_eager for box in outbox.outboxes()}
    assert flags == {
        "replication": True,
        "webhooks": False,
        "jira": False,
        "notifications-directory": False,
        "notifications-team": False,
    }


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_an_outbox_with_a_batch_task_queues_a_commits_keys_in_few_messages(settings, monkeypatch):
    """One message per ``many_limit`` keys at commit; a lone key goes to the one-key task."""
    settings.OUTBOX_EAGER_IN_BACKGROUND = False
    box = an_outbox(inline_when_eager=True)
    box.many_task, box.many_limit = "replication.replicate_rounds", 100
    single, many = [], []
    monkeypatch.setattr(box, "enqueue", lambda shard, key, **kw: single.append(key))
    monkeypatch.setattr(box, "enqueue_many", lambda shard, keys: many.append(len(keys)))
    with transaction.atomic(using="default"):
        box.enqueue_on_commit("default", [*range(250), 0, 1])  # repeats are queued once
        assert many == []
    assert many == [100, 100, 50]
    with transaction.atomic(using="default"):
        box.enqueue_on_commit("default", ["a"])
    assert single == ["a"]
    assert many == [100, 100, 50]


def test_a_batch_message_names_every_key(monkeypatch):
    """``enqueue_many`` sends the shard and the keys as text, in one message."""
    sent = []

    class Task:
        def apply_async(self, *, args, retry):
            sent.append((args, retry))

    monkeypatch.setitem(celery_app.tasks, "replication.replicate_rounds", Task())
    box = an_outbox(inline_when_eager=True)
    box.many_task = "replication.replicate_rounds"
    box.enqueue_many("eu-1", [1, "b"])
    assert sent == [(["eu-1", ["1", "b"]], False)]
