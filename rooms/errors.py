"""Refusals of a table that is not (or not yet) where its team lives: a team being moved
between shards (operations.moves), or a caller that still knows the shard it moved from."""

from pokerproject.errors import DomainError


class TablePaused(DomainError):
    code = "paused"


class TeamMoved(DomainError):
    """The team's rows are no longer on the shard this caller knows; reload the team."""

    code = "moved"
