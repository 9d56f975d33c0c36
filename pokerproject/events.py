"""Domain events: what happened, recorded by the service that made it happen, heard by the apps
above it. The domain never imports its subscribers; they register here.

A service calls ``emit(Event(...), using=alias)`` inside the transaction that made the change.
An app subscribes in its ``AppConfig.ready()``::

    events.subscribe("story.created", "story.updated", handler, in_transaction=True)

- ``in_transaction=True``: the handler runs at once, inside that transaction. What it writes
  (an outbox row, the table's version) commits or rolls back with the change, and an error it
  raises rolls the change back. Webhooks, the Jira write-back, replication and the live table's
  version use it.
- otherwise the handler runs once the transaction has committed, never if it rolls back.

Handlers take a list of events of one name: a batch (a reveal batch of many teams) emits its
events in one call, so each subscriber pays one query for all of them. Handlers run in the
order they subscribed (the order of INSTALLED_APPS).

Event names are ``<entity>.<past tense>`` (``story.created``, ``round.revealed``); each must be
declared by the app that emits it (``declare``) so a subscription to a misspelled name fails at
start-up rather than never firing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import transaction


@dataclass(frozen=True, slots=True)
class Event:
    """``team`` is the directory's team (``pk``, ``shard``, ``region``); ``data`` holds what the
    subscribers need, as objects (a round, its votes, a story), not yet serialised."""

    name: str
    team: Any
    data: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[list[Event]], None]


class UnknownEvent(LookupError):
    """An event name no app declared."""


_declared: set[str] = set()
_in_transaction: defaultdict[str, list[Handler]] = defaultdict(list)
_after_commit: defaultdict[str, list[Handler]] = defaultdict(list)


def declare(*names: str) -> None:
    """Declare the events an app emits (call at import time of its services)."""
    _declared.update(names)


def declared() -> frozenset[str]:
    return frozenset(_declared)


def subscribe(*args: str | Handler, in_transaction: bool = False) -> None:
    """``subscribe(name, ..., handler)``: call ``handler(events)`` for each emit of the names."""
    *names, handler = args
    if not names or not callable(handler):
        raise TypeError("subscribe(name, ..., handler)")
    for name in names:
        assert isinstance(name, str)  # noqa: S101 - narrowed for the type checker
        if name not in _declared:
            raise UnknownEvent(f"no app declares the event {name!r}")
        handlers = (_in_transaction if in_transaction else _after_commit)[name]
        if handler not in handlers:
            handlers.append(handler)


def emit(events: Event | Iterable[Event], *, using: str) -> None:
    """Record ``events`` as part of the transaction on ``using`` (or at once, outside one)."""
    batch = [events] if isinstance(events, Event) else list(events)
    by_name: dict[str, list[Event]] = {}
    for event in batch:
        if event.name not in _declared:
            raise UnknownEvent(f"no app declares the event {event.name!r}")
        by_name.setdefault(event.name, []).append(event)
    for name, group in by_name.items():
        for handler in _in_transaction.get(name, ()):
            handler(group)
        for handler in _after_commit.get(name, ()):
            transaction.on_commit(partial(handler, group), using=using)
