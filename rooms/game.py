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

from pokerproject.errors import DomainError, gettext_noop

UNSURE = "?"
BREAK = "☕"
INFINITY = "∞"
PASS_CARD = "pass"  # noqa: S105 - a card, not a password
# Appended to every built-in deck.
SPECIAL_CARDS = (UNSURE, BREAK)
# Cards that say something other than a size ("I don't know", "a break", "too big to size",
# "I pass"): they count as votes and in the distribution, never in the statistics.
SPECIAL_LABELS = frozenset({UNSURE, BREAK, INFINITY, PASS_CARD})
MAX_ESTIMATE_LENGTH = 16
# A card is a vote's value (Vote.value holds 16 characters); a deck's name is shown in pickers.
MAX_CARD_LENGTH = 16
MAX_DECK_NAME_LENGTH = 60
MIN_SIZED_CARDS, MAX_CARDS = 2, 30
# A team's own deck is known at the table by this prefix and its row's id (Room.deck, Round.deck).
CUSTOM_DECK_PREFIX = "custom-"
NUMERIC, ORDINAL = "numeric", "ordinal"


class NotInDeck(DomainError):
    code = "not_in_deck"


class UnknownDeck(DomainError):
    code = "unknown_deck"


class InvalidEstimate(DomainError):
    code = "invalid_estimate"


class InvalidDeck(DomainError):
    code = "invalid_deck"


class WrongRoundState(DomainError):
    """The round is not in a state that allows the command (codes differ per case)."""


# --- Decks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deck:
    """A deck: its cards in order and, for each card that stands for a number, that number.

    ``values`` is None for the built-in decks and for rounds played before decks carried their
    values: each card then counts as the number it spells (``card_value``). Cards in
    SPECIAL_LABELS never count. A deck whose every other card has a number is ``numeric`` (mean,
    median and spread are computed); otherwise it is ``ordinal`` (sizes: min, max, median and
    suggestion follow the deck's order, and there is no mean).
    """

    key: str
    name: str
    cards: tuple[str, ...]
    values: tuple[tuple[str, float], ...] | None = None

    def is_special(self, card: str) -> bool:
        return card in SPECIAL_LABELS

    def value_of(self, card: str) -> float | None:
        return _values(self).get(card)

    @property
    def kind(self) -> str:
        sized = [card for card in self.cards if not self.is_special(card)]
        numbers = _values(self)
        return NUMERIC if sized and all(card in numbers for card in sized) else ORDINAL

    def snapshot(self) -> dict:
        """What a round keeps of its deck besides the cards (``Round.deck_spec``)."""
        return {"name": self.name, "values": dict(_values(self))}

    @classmethod
    def from_snapshot(cls, key: str, cards: Iterable[str], spec: dict | None) -> Deck:
        """The deck a round was played with, from ``Round.deck``, ``cards`` and ``deck_spec``
        (empty for rounds from before decks carried their values)."""
        if not spec:
            return cls(key=key, name=key, cards=tuple(cards))
        values = tuple((str(card), float(value)) for card, value in spec.get("values", {}).items())
        return cls(key=key, name=str(spec.get("name") or key), cards=tuple(cards), values=values)

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "name": self.name,
            "cards": list(self.cards),
            "values": dict(_values(self)),
            "kind": self.kind,
        }


@lru_cache(maxsize=256)
def _values(deck: Deck) -> dict[str, float]:
    """The numbers a deck's cards stand for (decks are few and immutable: cached)."""
    if deck.values is not None:
        return {card: value for card, value in deck.values if not deck.is_special(card)}
    return {
        card: value
        for card in deck.cards
        if not deck.is_special(card) and (value := card_value(card)) is not None
    }


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
        raise UnknownDeck(
            gettext_noop("Unknown deck %(key)s."), params={"key": repr(key)}
        ) from None


def card_value(card: str) -> float | None:
    """The number a card spells, or None for cards that are not numbers (?, ☕, sizes)."""
    if card == "½":
        return 0.5
    try:
        number = float(card)
    except ValueError:
        return None
    # "nan", "inf" and "1e400" parse as floats but are no estimate.
    return number if math.isfinite(number) else None


def is_custom_deck_key(key: str) -> bool:
    return key.startswith(CUSTOM_DECK_PREFIX)


def custom_deck_key(deck_id: int) -> str:
    return f"{CUSTOM_DECK_PREFIX}{deck_id}"


def custom_deck_id(key: str) -> int | None:
    """The row id a custom deck's key names, or None for any other key."""
    if not is_custom_deck_key(key):
        return None
    digits = key[len(CUSTOM_DECK_PREFIX) :]
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 19 else None


Card = tuple[str, float | None]


def parse_cards(text: str) -> list[Card]:
    """Cards as a person types them: separated by spaces, commas or new lines, each a label
    with an optional number, ``XS=1 S=2 M=3 ?``. A label that is a number counts as it."""
    cards: list[Card] = []
    for token in text.replace(",", " ").split():
        label, sep, number = token.partition("=")
        value: float | None = None
        if sep:
            value = card_value(number.strip())
            if value is None:
                raise InvalidDeck(
                    gettext_noop("The value of %(label)s must be a number, not %(number)s."),
                    params={"label": repr(label), "number": repr(number)},
                )
        cards.append((label, value))
    return cards


def validate_deck(key: str, name: object, cards: Iterable[tuple[object, object]]) -> Deck:
    """A team's deck from a name and ``(label, value or None)`` pairs, or InvalidDeck.

    Labels are unique, at most MAX_CARD_LENGTH characters; a label without a value counts as the
    number it spells (``8``, ``½``), if it spells one; special cards (?, ☕, ∞, pass) have no
    value. At least MIN_SIZED_CARDS cards are not special, and there are at most MAX_CARDS.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidDeck(gettext_noop("A deck needs a name."))
    name = name.strip()
    if len(name) > MAX_DECK_NAME_LENGTH or not name.isprintable():
        raise InvalidDeck(
            gettext_noop("A deck's name has at most %(max)s printable characters."),
            params={"max": MAX_DECK_NAME_LENGTH},
        )
    labels: list[str] = []
    values: list[tuple[str, float]] = []
    for label, value in cards:
        if not isinstance(label, str) or not label.strip():
            raise InvalidDeck(gettext_noop("Every card needs a label."))
        label = label.strip()
        if len(label) > MAX_CARD_LENGTH or not label.isprintable():
            raise InvalidDeck(
                gettext_noop("A card's label is at most %(max)s printable characters: %(label)s."),
                params={"max": MAX_CARD_LENGTH, "label": repr(label[:20])},
            )
        if label in labels:
            raise InvalidDeck(
                gettext_noop("The card %(label)s is in the deck twice."),
                params={"label": repr(label)},
            )
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidDeck(
                    gettext_noop("The value of %(label)s must be a number."),
                    params={"label": repr(label)},
                )
            if not math.isfinite(value):
                raise InvalidDeck(
                    gettext_noop("The value of %(label)s must be a finite number."),
                    params={"label": repr(label)},
                )
            if label in SPECIAL_LABELS:
                raise InvalidDeck(
                    gettext_noop("%(label)s is a special card: it has no value."),
                    params={"label": repr(label)},
                )
        elif label not in SPECIAL_LABELS:
            value = card_value(label)
        labels.append(label)
        if value is not None:
            values.append((label, float(value)))
    if len(labels) > MAX_CARDS:
        raise InvalidDeck(
            gettext_noop("A deck has at most %(max)s cards."), params={"max": MAX_CARDS}
        )
    if sum(label not in SPECIAL_LABELS for label in labels) < MIN_SIZED_CARDS:
        raise InvalidDeck(
            gettext_noop("A deck needs at least %(min)s cards besides ?, ☕, ∞ and pass."),
            params={"min": MIN_SIZED_CARDS},
        )
    return Deck(key=key, name=name, cards=tuple(labels), values=tuple(values))


# --- Rounds -----------------------------------------------------------------------------------


class RoundStatus(StrEnum):
    VOTING = "voting"
    REVEALED = "revealed"
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"


FINISHED_STATUSES = frozenset({RoundStatus.REVEALED, RoundStatus.ACCEPTED})


def require_voting(status: str | None) -> None:
    if status is None:
        raise WrongRoundState(gettext_noop("No round is being played."), code="no_active_round")
    if status != RoundStatus.VOTING:
        raise WrongRoundState(
            gettext_noop("Votes are closed: the cards are revealed."), code="round_not_voting"
        )


def require_revealed(status: str | None) -> None:
    if status is None:
        raise WrongRoundState(gettext_noop("No round is being played."), code="no_active_round")
    if status not in FINISHED_STATUSES:
        raise WrongRoundState(gettext_noop("Reveal the cards first."), code="round_not_revealed")


def require_can_start(status: str | None) -> None:
    if status == RoundStatus.VOTING:
        raise WrongRoundState(
            gettext_noop("A round is being played: reveal or restart it first."),
            code="round_in_progress",
        )


def validate_vote(deck: Deck, value: object) -> str:
    """Return the card the value names, or raise NotInDeck."""
    if isinstance(value, str):
        card = value.strip()
        if card in deck.cards:
            return card
    raise NotInDeck(
        gettext_noop("%(value)s is not a card of the %(deck)s deck."),
        params={"value": repr(value), "deck": deck.name},
    )


def validate_estimate(value: object) -> str:
    """An accepted estimate: a deck card or any short label such as '5', 'L' or '3d'."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEstimate(gettext_noop("An estimate must be a non-empty text."))
    estimate = value.strip()
    if len(estimate) > MAX_ESTIMATE_LENGTH:
        raise InvalidEstimate(
            gettext_noop("An estimate has at most %(max)s characters."),
            params={"max": MAX_ESTIMATE_LENGTH},
        )
    return estimate


# --- Statistics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistics:
    """What the table sees after reveal.

    Special cards (?, ☕, ∞, pass) count in ``votes`` and the distribution, nowhere else.
    ``kind`` is the deck's (``Deck.kind``). On a numeric deck ``mean``, ``median`` and ``spread``
    are over the cards' numbers and ``min``/``max`` are the lowest and highest cards played; on
    an ordinal deck (sizes) they are None and ``min``/``max`` follow the deck's order.
    ``median_card`` is the card in the middle of the played cards put in the deck's order (of
    two, the larger). ``mode`` lists the most common cards (ties in deck order). ``consensus``
    holds when at least one card was played and all of them are equal. ``suggestion`` is the
    consensus card, else on a numeric deck the deck card nearest the median (rounding up), on
    an ordinal deck the median card.
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
    kind: str = NUMERIC
    median_card: str | None = None

    def as_dict(self) -> dict:
        # Spelled out: ``dataclasses.asdict`` recurses into and deep-copies every value, a tenth
        # of a reveal batch's CPU (docs/performance.md, round 8).
        return {
            "votes": self.votes,
            "kind": self.kind,
            "mean": self.mean,
            "median": self.median,
            "median_card": self.median_card,
            "min": self.min,
            "max": self.max,
            "spread": self.spread,
            "mode": list(self.mode),
            "consensus": self.consensus,
            "suggestion": self.suggestion,
            "distribution": dict(self.distribution),
        }


@lru_cache(maxsize=256)
def _numeric_cards(deck: Deck) -> tuple[tuple[str, float], ...]:
    """A deck's number cards with their values, in deck order (decks are few and immutable)."""
    values = _values(deck)
    return tuple((card, values[card]) for card in deck.cards if card in values)


@lru_cache(maxsize=256)
def _order(deck: Deck) -> dict[str, int]:
    return {card: index for index, card in enumerate(deck.cards)}


def compute_statistics(deck: Deck, values: Iterable[str]) -> Statistics:
    # Every reveal of a batch runs this on the database thread: each distinct card is looked up
    # once, and the deck's numbers and order come from caches (docs/performance.md, round 9).
    cards = list(values)
    order = _order(deck)
    last = len(order)
    counts = Counter(cards)
    distribution = {
        card: counts[card] for card in sorted(counts, key=lambda c: (order.get(c, last), c))
    }
    scored = [card for card in cards if not deck.is_special(card)]
    kind = deck.kind
    ranked = sorted(scored, key=lambda c: order.get(c, last))
    median_card = ranked[len(ranked) // 2] if ranked else None

    mean = median = spread = None
    low = ranked[0] if ranked else None
    high = ranked[-1] if ranked else None
    number_of = _values(deck)
    numbers = sorted(number_of[card] for card in scored if card in number_of)
    if kind == NUMERIC and numbers:
        mean = round(math.fsum(numbers) / len(numbers), 2)
        middle = len(numbers) // 2
        median = (
            numbers[middle] if len(numbers) % 2 else (numbers[middle - 1] + numbers[middle]) / 2
        )
        # The first card played with the lowest (highest) value, as it was written.
        low = next(c for c in scored if number_of.get(c) == numbers[0])
        high = next(c for c in scored if number_of.get(c) == numbers[-1])
        spread = numbers[-1] - numbers[0]

    scored_counts = Counter(scored)
    top = max(scored_counts.values(), default=0)
    mode = [card for card in distribution if scored_counts.get(card) == top and top > 0]
    consensus = bool(scored) and len(scored_counts) == 1

    suggestion: str | None = None
    if consensus:
        suggestion = scored[0]
    elif median is not None:
        # Nearest card to the median; on a tie the larger one (estimates round up).
        suggestion = min(_numeric_cards(deck), key=lambda pair: (abs(pair[1] - median), -pair[1]))[
            0
        ]
    elif median_card is not None:
        suggestion = median_card

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
        kind=kind,
        median_card=median_card,
    )


# --- Presence-aware rounds: who counts, auto-reveal, the timer ---------------------------------

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
        raise InvalidTimer(gettext_noop("The timer's length must be a whole number of seconds."))
    if not MIN_TIMER_SECONDS <= value <= MAX_TIMER_SECONDS:
        raise InvalidTimer(
            gettext_noop("The timer runs between %(min)s and %(max)s seconds."),
            params={"min": MIN_TIMER_SECONDS, "max": MAX_TIMER_SECONDS},
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
