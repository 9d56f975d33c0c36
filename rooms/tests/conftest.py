"""Fixtures for tests that watch what the table broadcasts (see channel_events), and teams of
the one-shard region "us" for the batch tests."""

from types import SimpleNamespace

import pytest

from conftest import facilitator_of
from rooms.tests.channel_events import committed, listen  # noqa: F401

US_SHARD = "us-1"  # the only shard of region "us": every team us_team makes lives there


@pytest.fixture
def us_team(team_factory, add_member, listen):  # noqa: F811
    """``us_team("Ant", voter=Role.VOTER, ...)``: a team of region "us" with its facilitator
    (``lead``), the named members, and a listener on its broadcasts (``channel``)."""

    def make(name: str, **members):
        team = team_factory(name, region="us")
        assert team.shard == US_SHARD
        t = SimpleNamespace(team=team, lead=facilitator_of(team), channel=listen(team))
        for attr, role in members.items():
            setattr(t, attr, add_member(team, f"{name.lower()}-{attr}", role))
        return t

    return make
