"""Roles of a team's members and what each role may do.

Pure Python: the directory stores a member's role (``Membership.role``); every service asks here
before it writes, so every door (socket, page, API, admin) enforces the same permissions.
"""

from __future__ import annotations

from enum import StrEnum

from pokerproject.errors import DomainError


class Forbidden(DomainError):
    code = "forbidden"


class Role(StrEnum):
    FACILITATOR = "facilitator"
    VOTER = "voter"
    OBSERVER = "observer"


class Action(StrEnum):
    START_ROUND = "start_round"
    CAST_VOTE = "cast_vote"
    REVEAL = "reveal"
    RESTART = "restart"
    ACCEPT = "accept"
    SET_DECK = "set_deck"
    # The table's own settings and tools: the round timer, auto-reveal, who sits out.
    RUN_TABLE = "run_table"
    MANAGE_BACKLOG = "manage_backlog"
    MANAGE_MEMBERS = "manage_members"


_EVERYONE_WHO_PLAYS = frozenset({Role.FACILITATOR, Role.VOTER})
_FACILITATOR = frozenset({Role.FACILITATOR})

PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.START_ROUND: _FACILITATOR,
    Action.CAST_VOTE: _EVERYONE_WHO_PLAYS,
    Action.REVEAL: _FACILITATOR,
    Action.RESTART: _FACILITATOR,
    Action.ACCEPT: _FACILITATOR,
    Action.SET_DECK: _FACILITATOR,
    Action.RUN_TABLE: _FACILITATOR,
    # Any player may shape the backlog; observers only watch.
    Action.MANAGE_BACKLOG: _EVERYONE_WHO_PLAYS,
    Action.MANAGE_MEMBERS: _FACILITATOR,
}


def can(role: str, action: Action) -> bool:
    try:
        return Role(role) in PERMISSIONS[action]
    except ValueError:
        return False


def require(role: str, action: Action) -> None:
    if not can(role, action):
        raise Forbidden(f"A {role} may not {action.value.replace('_', ' ')}.")
