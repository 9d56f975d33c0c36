"""The rules of planning poker: decks, the round's states, votes, estimates and statistics.

Pure Python: no ORM, no I/O. Services call these functions before they write anything, so every
door (socket, page, API, admin) enforces the same rules. Who may do what is
``accounts.roles``; the errors' base is ``pokerproject.errors``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from pokerproject.errors import DomainError

UNSURE = "?"
BREAK = "☕"
SPECIAL_CARDS = (UNSURE, BREAK)
MAX_ESTIMATE_LENGTH = 16


class NotInDeck(DomainError):
    code = "not_in_deck"


class UnknownDeck(DomainError):
    code = "unknown_deck"


class InvalidEstimate(DomainError):
    code = "invalid_estimate"


class WrongRoundState(DomainError):
    """The round is not in a state that allows the command (codes differ per case)."""


# --- Decks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deck:
    key: str
    name: str
    cards: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "cards": list(self.cards)}


def _deck(key: str, name: str, values: str) -> Deck:
    return Deck(key=key, name=name, cards=(*values.split(), *SPECIAL_CARDS))


DECKS: dict[str, Deck] = {
    deck.key: deck
    for deck in (
        _deck("fibonacci", "Fibonacci", "0 1 2 3 5 8 13 21 34 55 89"),
        _deck("modified_fibonacci", "Modified Fibonacci", "0 ½ 1 2 3 5 8 13 20 40 100"),
        _deck("tshirt", "T-shirt sizes", "XS S M L XL XXL"),
        _deck("powers_of_two", "Powers of two", "0 1 2 4 8 16 32 64"),
    )
}
DEFAULT_DECK = "fibonacci"


def get_deck(key: str) -> Deck:
    try:
        return DECKS[key]
    except KeyError:
        raise UnknownDeck(f"Unknown deck {key!r}.") from None


def card_value(card: str) -> float | None:
    """The number a card stands for, or None for cards that are not numbers (?, ☕, sizes)."""
    if card == "½":
        return 0.5
    try:
        return float(card)
    except ValueError:
        return None


# --- Rounds -----------------------------------------------------------------------------------


class RoundStatus(StrEnum):
    VOTING = "voting"
    REVEALED = "revealed"
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"


FINISHED_STATUSES = frozenset({RoundStatus.REVEALED, RoundStatus.ACCEPTED})


def require_voting(status: str | None) -> None:
    if status is None:
        raise WrongRoundState("No round is being played.", code="no_active_round")
    if status != RoundStatus.VOTING:
        raise WrongRoundState("Votes are closed: the cards are revealed.", code="round_not_voting")


def require_revealed(status: str | None) -> None:
    if status is None:
        raise WrongRoundState("No round is being played.", code="no_active_round")
    if status not in FINISHED_STATUSES:
        raise WrongRoundState("Reveal the cards first.", code="round_not_revealed")


def require_can_start(status: str | None) -> None:
    if status == RoundStatus.VOTING:
        raise WrongRoundState(
            "A round is being played: reveal or restart it first.", code="round_in_progress"
        )


def validate_vote(deck: Deck, value: object) -> str:
    """Return the card the value names, or raise NotInDeck."""
    if isinstance(value, str):
        card = value.strip()
        if card in deck.cards:
            return card
    raise NotInDeck(f"{value!r} is not a card of the {deck.name} deck.")


def validate_estimate(value: object) -> str:
    """An accepted estimate: a deck card or any short label such as '5', 'L' or '3d'."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEstimate("An estimate must be a non-empty text.")
    estimate = value.strip()
    if len(estimate) > MAX_ESTIMATE_LENGTH:
        raise InvalidEstimate(f"An estimate has at most {MAX_ESTIMATE_LENGTH} characters.")
    return estimate


# --- Statistics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistics:
    """What the table sees after reveal.

    ``mean``/``median``/``min``/``max`` are over numeric cards; for a deck of sizes, min and max
    follow the deck's order. ``mode`` lists the most common cards other than ? and ☕ (ties in deck
    order). ``consensus`` holds when at least one such card was played and all of them are equal.
    ``suggestion`` is the consensus card, else the deck card nearest the median (rounding up), else
    the first mode.
    """

    votes: int
    mean: float | None
    median: float | None
    min: str | None
    max: str | None
    spread: float | None
    mode: list[str]
    consensus: bool
    suggestion: str | None
    distribution: dict[str, int]

    def as_dict(self) -> dict:
        # Spelled out: ``dataclasses.asdict`` recurses into and deep-copies every value, a tenth
        # of a reveal batch's CPU (docs/performance.md, round 8).
        return {
            "votes": self.votes,
            "mean": self.mean,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "spread": self.spread,
            "mode": list(self.mode),
            "consensus": self.consensus,
            "suggestion": self.suggestion,
            "distribution": dict(self.distribution),
        }


@lru_cache(maxsize=64)
def _numeric_cards(cards: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """A deck's number cards with their values, in deck order (decks are few and fixed)."""
    return tuple((card, value) for card in cards if (value := card_value(card)) is not None)


def compute_statistics(deck: Deck, values: Iterable[str]) -> Statistics:
    # Every reveal of a batch runs this on the database thread: each distinct card is looked up
    # once, and the deck's numbers come from a cache (docs/performance.md, round 9).
    cards = list(values)
    order = {card: index for index, card in enumerate(deck.cards)}
    counts = Counter(cards)
    distribution = {
        card: counts[card] for card in sorted(counts, key=lambda c: (order.get(c, len(order)), c))
    }
    scored = [card for card in cards if card not in SPECIAL_CARDS]
    number_of = {card: card_value(card) for card in counts}
    numbers = sorted(n for card in scored if (n := number_of[card]) is not None)

    mean = median = spread = None
    low: str | None
    high: str | None
    if numbers:
        mean = round(math.fsum(numbers) / len(numbers), 2)
        middle = len(numbers) // 2
        median = (
            numbers[middle] if len(numbers) % 2 else (numbers[middle - 1] + numbers[middle]) / 2
        )
        # The first card played with the lowest (highest) value, as it was written.
        low = next(c for c in scored if number_of[c] == numbers[0])
        high = next(c for c in scored if number_of[c] == numbers[-1])
        spread = numbers[-1] - numbers[0]
    elif scored:
        ranked = sorted(scored, key=lambda c: order.get(c, len(order)))
        low, high = ranked[0], ranked[-1]
    else:
        low = high = None

    scored_counts = Counter(scored)
    top = max(scored_counts.values(), default=0)
    mode = [card for card in distribution if scored_counts.get(card) == top and top > 0]
    consensus = bool(scored) and len(scored_counts) == 1

    suggestion: str | None = None
    if consensus:
        suggestion = scored[0]
    elif median is not None:
        # Nearest card to the median; on a tie the larger one (estimates round up).
        suggestion = min(
            _numeric_cards(deck.cards), key=lambda pair: (abs(pair[1] - median), -pair[1])
        )[0]
    elif mode:
        suggestion = mode[0]

    return Statistics(
        votes=len(cards),
        mean=mean,
        median=median,
        min=low,
        max=high,
        spread=spread,
        mode=mode,
        consensus=consensus,
        suggestion=suggestion,
        distribution=distribution,
    )


# --- Presence-aware rounds: who counts, auto-reveal, the timer ---------------------------------

DEFAULT_TIMER_SECONDS = 60
DEFAULT_TIMER_EXTENSION_SECONDS = 30
MIN_TIMER_SECONDS = 5
MAX_TIMER_SECONDS = 3600


class InvalidTimer(DomainError):
    code = "invalid_timer"


class NotVoting(DomainError):
    code = "not_voting"


def validate_timer_seconds(value: object, *, default: int) -> int:
    """A timer length in whole seconds, MIN..MAX; ``None`` means ``default``."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTimer("The timer's length must be a whole number of seconds.")
    if not MIN_TIMER_SECONDS <= value <= MAX_TIMER_SECONDS:
        raise InvalidTimer(
            f"The timer runs between {MIN_TIMER_SECONDS} and {MAX_TIMER_SECONDS} seconds."
        )
    return value


def present_voters(
    members: Iterable[tuple[int, bool]], online: set[int], not_voting: Iterable[int]
) -> set[int]:
    """The members a round waits for: those whose role plays cards (``members`` holds
    ``(user_id, may_vote)``), who have a socket open, and who have not chosen to sit out."""
    sitting_out = set(not_voting)
    return {
        user_id
        for user_id, may_vote in members
        if may_vote and user_id in online and user_id not in sitting_out
    }


def everyone_present_voted(waiting_for: set[int], voted: set[int]) -> bool:
    """Whether a round may reveal itself: someone is there to vote, and all of them have."""
    return bool(waiting_for) and waiting_for <= voted
