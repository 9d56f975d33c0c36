"""Fixtures for tests that watch what the table broadcasts (see channel_events)."""

from rooms.tests.channel_events import committed, listen  # noqa: F401
