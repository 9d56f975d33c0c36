"""Fixtures for tests that watch what the table broadcasts (see channel_events)."""

from rooms.tests.channel_events import committed, isolated_channel_layer, listen  # noqa: F401
