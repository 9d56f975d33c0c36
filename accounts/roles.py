"""Roles of a team's members and what each role may do.

Pure Python: the directory stores a member's role (``Membership.role``); every service asks here
before it writes, so every door (socket, page, API, admin) enforces the same permissions.
"""

from __future__ import annotations

from enum import StrEnum

from pokerproject.errors import DomainError, Text, gettext_noop


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
    END_SESSION = "end_session"
    MANAGE_DECKS = "manage_decks"
    MANAGE_TEAM = "manage_team"


# The roles a guest may hold: a facilitator manages members, links and integrations, which
# needs an account (a guest signs up first).
GUEST_ROLES = (Role.VOTER, Role.OBSERVER)

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
    Action.END_SESSION: _FACILITATOR,
    Action.MANAGE_DECKS: _FACILITATOR,
    Action.MANAGE_TEAM: _FACILITATOR,
}

# What each action is, as the end of "An observer may not ...". Text: translated with the refusal.
DESCRIPTIONS: dict[Action, Text] = {
    Action.START_ROUND: Text(gettext_noop("start a round")),
    Action.CAST_VOTE: Text(gettext_noop("vote")),
    Action.REVEAL: Text(gettext_noop("reveal the cards")),
    Action.RESTART: Text(gettext_noop("restart the round")),
    Action.ACCEPT: Text(gettext_noop("accept an estimate")),
    Action.SET_DECK: Text(gettext_noop("change the deck")),
    Action.MANAGE_BACKLOG: Text(gettext_noop("edit the backlog")),
    Action.MANAGE_MEMBERS: Text(gettext_noop("manage the members")),
    Action.MANAGE_DECKS: Text(gettext_noop("manage the decks")),
    Action.MANAGE_TEAM: Text(gettext_noop("change the team's settings")),
    Action.END_SESSION: Text(gettext_noop("end the session")),
    Action.RUN_TABLE: Text(gettext_noop("run the table")),
}

# Each role as the subject of a sentence, whole: the article depends on the language's word.
SUBJECTS: dict[Role, Text] = {
    Role.FACILITATOR: Text(gettext_noop("A facilitator")),
    Role.VOTER: Text(gettext_noop("A voter")),
    Role.OBSERVER: Text(gettext_noop("An observer")),
}


def with_article(word: str) -> str:
    """``a voter``, ``an observer``: the indefinite article by the word's first letter."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _subject(role: str) -> str:
    try:
        return SUBJECTS[Role(role)]
    except ValueError:  # no role of ours: named as it is, in English
        sentence = with_article(role)
        return sentence[0].upper() + sentence[1:]


def refusal(role: str, action: Action) -> Forbidden:
    """The refusal of ``action`` to ``role``: "An observer may not vote." """
    return Forbidden(
        gettext_noop("%(role)s may not %(action)s."),
        params={"role": _subject(role), "action": DESCRIPTIONS[action]},
    )


def can(role: str, action: Action) -> bool:
    try:
        return Role(role) in PERMISSIONS[action]
    except ValueError:
        return False


def require(role: str, action: Action) -> None:
    if not can(role, action):
        raise refusal(role, action)


def can_edit_backlog(role: str, *, voters_may_edit: bool) -> bool:
    """Facilitators always; voters when the team's settings let them (``voters_edit_backlog``)."""
    if role == Role.VOTER and not voters_may_edit:
        return False
    return can(role, Action.MANAGE_BACKLOG)


def require_backlog_edit(role: str, *, voters_may_edit: bool) -> None:
    require(role, Action.MANAGE_BACKLOG)
    if not can_edit_backlog(role, voters_may_edit=voters_may_edit):
        raise Forbidden(gettext_noop("In this team only facilitators edit the backlog."))
