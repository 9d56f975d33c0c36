"""The rules of planning poker without a database: decks, roles, votes, round states, stats."""

import dataclasses
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts import roles
from accounts.roles import Action, Role
from pokerproject.errors import DomainError
from rooms import game
from rooms.game import RoundStatus

SPECIALS = ["?", "☕"]

# --- Decks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "numbers"),
    [
        ("fibonacci", "0 1 2 3 5 8 13 21 34 55 89"),
        ("modified_fibonacci", "0 ½ 1 2 3 5 8 13 20 40 100"),
        ("tshirt", "XS S M L XL XXL"),
        ("powers_of_two", "0 1 2 4 8 16 32 64"),
    ],
)
def test_deck_cards_in_order_then_unsure_and_break(key, numbers):
    """Each deck holds exactly the product's cards, in order, followed by ? and ☕."""
    deck = game.get_deck(key)
    assert list(deck.cards) == [*numbers.split(), *SPECIALS]
    numbers_of = {card: game.card_value(card) for card in numbers.split()}
    assert deck.as_dict() == {
        "key": key,
        "name": deck.name,
        "cards": list(deck.cards),
        "values": {card: n for card, n in numbers_of.items() if n is not None},
        "kind": "ordinal" if key == "tshirt" else "numeric",
    }


def test_the_four_decks_and_the_default():
    """Exactly four decks are offered, Fibonacci first and by default."""
    assert list(game.DECKS) == ["fibonacci", "modified_fibonacci", "tshirt", "powers_of_two"]
    assert game.DEFAULT_DECK == "fibonacci"
    assert len({deck.name for deck in game.DECKS.values()}) == 4


def test_unknown_deck_is_refused_with_its_code():
    """Asking for a deck that does not exist raises UnknownDeck (code unknown_deck)."""
    with pytest.raises(game.UnknownDeck) as excinfo:
        game.get_deck("tarot")
    assert excinfo.value.code == "unknown_deck"


@pytest.mark.parametrize(
    ("card", "value"),
    [("0", 0.0), ("½", 0.5), ("13", 13.0), ("100", 100.0), ("XS", None), ("?", None), ("☕", None)],
)
def test_card_value(card, value):
    """Numeric cards stand for their number, ½ for 0.5; sizes, ? and ☕ for no number."""
    assert game.card_value(card) == value


# --- Roles and permissions --------------------------------------------------------------------

FAC, VOTER = Role.FACILITATOR, Role.VOTER
ALLOWED = {
    Action.START_ROUND: {FAC},
    Action.CAST_VOTE: {FAC, VOTER},
    Action.REVEAL: {FAC},
    Action.RESTART: {FAC},
    Action.ACCEPT: {FAC},
    Action.SET_DECK: {FAC},
    Action.RUN_TABLE: {FAC},
    Action.MANAGE_BACKLOG: {FAC, VOTER},
    Action.MANAGE_MEMBERS: {FAC},
    Action.END_SESSION: {FAC},
    Action.MANAGE_DECKS: {FAC},
    Action.MANAGE_TEAM: {FAC},
}


def test_permission_table_covers_every_action():
    assert set(ALLOWED) == set(Action)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", list(Role))
def test_permissions_per_role(role, action):
    """Facilitators run the table and the team; voters vote and shape the backlog; observers
    only watch."""
    allowed = role in ALLOWED[action]
    assert roles.can(role, action) is allowed
    assert roles.can(role.value, action) is allowed
    if allowed:
        roles.require(role, action)
    else:
        with pytest.raises(roles.Forbidden) as excinfo:
            roles.require(role, action)
        assert excinfo.value.code == "forbidden"


@pytest.mark.parametrize(
    ("role", "action", "message"),
    [
        (Role.OBSERVER, Action.CAST_VOTE, "An observer may not vote."),
        (Role.VOTER, Action.REVEAL, "A voter may not reveal the cards."),
        (Role.OBSERVER, Action.MANAGE_BACKLOG, "An observer may not edit the backlog."),
        (Role.VOTER, Action.SET_DECK, "A voter may not change the deck."),
        ("admin", Action.START_ROUND, "An admin may not start a round."),
    ],
)
def test_refusals_are_sentences_with_the_right_article(role, action, message):
    with pytest.raises(roles.Forbidden) as excinfo:
        roles.require(role, action)
    assert excinfo.value.message == message


def test_every_action_has_a_description():
    assert set(roles.DESCRIPTIONS) == set(Action)


def test_voters_edit_the_backlog_only_when_the_team_lets_them():
    assert roles.can_edit_backlog(VOTER, voters_may_edit=True)
    assert not roles.can_edit_backlog(VOTER, voters_may_edit=False)
    assert roles.can_edit_backlog(FAC, voters_may_edit=False)
    assert not roles.can_edit_backlog(Role.OBSERVER, voters_may_edit=True)
    with pytest.raises(roles.Forbidden, match="only facilitators edit the backlog"):
        roles.require_backlog_edit(VOTER, voters_may_edit=False)
    with pytest.raises(roles.Forbidden, match=r"An observer may not edit the backlog\."):
        roles.require_backlog_edit(Role.OBSERVER, voters_may_edit=True)


@pytest.mark.parametrize("role", ["admin", "", "FACILITATOR"])
def test_unknown_role_may_do_nothing(role):
    """A role the game does not know is allowed nothing."""
    assert not any(roles.can(role, action) for action in Action)
    with pytest.raises(roles.Forbidden):
        roles.require(role, Action.CAST_VOTE)


def test_game_error_code_can_be_overridden_per_instance():
    error = game.WrongRoundState("closed", code="round_not_voting")
    assert (error.code, error.message) == ("round_not_voting", "closed")
    assert DomainError("x").code == "invalid"


# --- Votes and estimates ----------------------------------------------------------------------


@pytest.mark.parametrize("deck", list(game.DECKS.values()), ids=list(game.DECKS))
def test_every_card_of_a_deck_is_a_valid_vote(deck):
    assert [game.validate_vote(deck, card) for card in deck.cards] == list(deck.cards)


def test_vote_is_stripped_of_surrounding_space():
    assert game.validate_vote(game.get_deck("fibonacci"), " 13 ") == "13"


@pytest.mark.parametrize(
    ("deck", "value"),
    [
        ("fibonacci", "4"),
        ("fibonacci", "½"),  # only the modified deck has a half
        ("fibonacci", "XS"),
        ("fibonacci", ""),
        ("fibonacci", 5),  # a number, not a card
        ("fibonacci", 5.0),
        ("fibonacci", None),
        ("fibonacci", True),
        ("fibonacci", ["5"]),
        ("tshirt", "5"),
        ("tshirt", "xs"),  # sizes are case-sensitive cards
        ("powers_of_two", "3"),
        ("modified_fibonacci", "21"),
    ],
)
def test_vote_not_in_the_deck_is_refused(deck, value):
    """Only a card of the round's deck, given as text, is a vote."""
    with pytest.raises(game.NotInDeck) as excinfo:
        game.validate_vote(game.get_deck(deck), value)
    assert excinfo.value.code == "not_in_deck"


@pytest.mark.parametrize(
    ("value", "estimate"),
    [("5", "5"), ("  3d ", "3d"), ("XL", "XL"), ("½", "½"), ("x" * 16, "x" * 16)],
)
def test_estimate_is_any_short_label(value, estimate):
    """An estimate may be a card or a free label such as 3d, trimmed."""
    assert game.validate_estimate(value) == estimate


@pytest.mark.parametrize("value", ["", "   ", "x" * 17, 5, None, True, ["5"]])
def test_estimate_empty_too_long_or_not_text_is_refused(value):
    with pytest.raises(game.InvalidEstimate) as excinfo:
        game.validate_estimate(value)
    assert excinfo.value.code == "invalid_estimate"


# --- Round states -----------------------------------------------------------------------------


def _code(guard, status) -> str | None:
    try:
        guard(status)
    except game.WrongRoundState as exc:
        return exc.code
    return None


@pytest.mark.parametrize(
    ("status", "voting", "revealed", "start"),
    [
        (None, "no_active_round", "no_active_round", None),
        (RoundStatus.VOTING, None, "round_not_revealed", "round_in_progress"),
        (RoundStatus.REVEALED, "round_not_voting", None, None),
        (RoundStatus.ACCEPTED, "round_not_voting", None, None),
        (RoundStatus.CANCELLED, "round_not_voting", "round_not_revealed", None),
    ],
)
def test_round_state_guards(status, voting, revealed, start):
    """Votes only while voting; accept only once revealed; a new round unless one is voting."""
    assert _code(game.require_voting, status) == voting
    assert _code(game.require_revealed, status) == revealed
    assert _code(game.require_can_start, status) == start
    # Statuses are stored as text: the guards accept the plain strings too.
    if status is not None:
        assert _code(game.require_voting, status.value) == voting


# --- Statistics -------------------------------------------------------------------------------


def stats(deck: str, votes: str) -> game.Statistics:
    return game.compute_statistics(game.get_deck(deck), votes.split())


def test_statistics_over_numeric_cards_without_unsure_and_break():
    """? and ☕ count as votes and in the distribution, but not in mean, median, mode or range."""
    result = stats("fibonacci", "8 ? 5 3 ☕ 5")
    assert result.votes == 6
    assert result.mean == 5.25
    assert result.median == 5
    assert (result.min, result.max, result.spread) == ("3", "8", 5)
    assert result.mode == ["5"]
    assert result.consensus is False
    assert result.suggestion == "5"
    assert result.distribution == {"3": 1, "5": 2, "8": 1, "?": 1, "☕": 1}


def test_distribution_follows_deck_order_not_vote_order():
    result = stats("fibonacci", "☕ 89 ? 13 0 13")
    assert list(result.distribution) == ["0", "13", "89", "?", "☕"]
    # Deck order, not text order ("13" < "89" < "0" would be wrong either way).
    assert list(stats("powers_of_two", "64 16 8").distribution) == ["8", "16", "64"]


def test_half_counts_as_one_half():
    """½ is 0.5 in mean, median and range, and is shown as the card ½."""
    result = stats("modified_fibonacci", "½ 1 ½")
    assert result.mean == 0.67
    assert result.median == 0.5
    assert (result.min, result.max, result.spread) == ("½", "1", 0.5)
    assert result.mode == ["½"]
    assert result.suggestion == "½"
    assert list(result.distribution) == ["½", "1"]


def test_mean_is_rounded_to_two_places():
    assert stats("fibonacci", "1 1 2").mean == 1.33


def test_median_of_an_even_count_is_the_middle_of_the_two():
    assert stats("fibonacci", "1 2 3 8").median == 2.5


def test_only_unsure_and_break_give_no_numbers_and_no_suggestion():
    result = stats("fibonacci", "? ☕ ?")
    assert result.votes == 3
    assert (result.mean, result.median, result.min, result.max, result.spread) == (None,) * 5
    assert result.mode == []
    assert result.consensus is False
    assert result.suggestion is None
    assert result.distribution == {"?": 2, "☕": 1}


def test_empty_round():
    """A round revealed with no vote has statistics that say so."""
    result = stats("fibonacci", "")
    assert result == game.Statistics(
        votes=0,
        mean=None,
        median=None,
        min=None,
        max=None,
        spread=None,
        mode=[],
        consensus=False,
        suggestion=None,
        distribution={},
    )


def test_tshirt_min_and_max_follow_the_deck_order():
    """Sizes have no number: min, max and the median card are by deck order (XS < M < XXL),
    not alphabetical; there is no mean, numeric median or spread."""
    result = stats("tshirt", "XXL M XS ?")
    assert result.kind == "ordinal"
    assert (result.min, result.max) == ("XS", "XXL")
    assert (result.mean, result.median, result.spread) == (None, None, None)
    assert result.mode == ["XS", "M", "XXL"]
    assert result.median_card == "M"
    assert result.suggestion == "M"  # the median by the deck's order


def test_tshirt_median_of_an_even_count_is_the_larger_middle_size():
    """Sizes in deck order S S L XL: the middle two are S and L; estimates round up to L."""
    result = stats("tshirt", "L S XL S")
    assert (result.min, result.max) == ("S", "XL")
    assert result.mode == ["S"]
    assert result.median_card == "L"
    assert result.suggestion == "L"


def test_numeric_deck_has_a_median_card_too():
    result = stats("fibonacci", "8 1 3 ?")
    assert result.kind == "numeric"
    assert result.median == 3
    assert result.median_card == "3"


def test_mode_ties_are_listed_in_deck_order():
    result = stats("fibonacci", "8 3 8 3 5")
    assert result.mode == ["3", "8"]
    assert result.suggestion == "5"  # the median is a card


def test_consensus_when_every_numeric_card_is_the_same():
    """Consensus ignores ? and ☕; the agreed card is the suggestion."""
    result = stats("fibonacci", "5 ? 5 ☕")
    assert result.consensus is True
    assert result.suggestion == "5"
    assert stats("fibonacci", "13").consensus is True
    assert stats("fibonacci", "5 8").consensus is False
    assert stats("tshirt", "M M").consensus is True
    assert stats("tshirt", "M M").suggestion == "M"


@pytest.mark.parametrize(
    ("deck", "votes", "median", "suggestion"),
    [
        ("fibonacci", "3 5", 4, "5"),  # halfway between two cards: round up
        ("fibonacci", "2 3", 2.5, "3"),
        ("fibonacci", "1 2 13", 2, "2"),  # the median is a card
        ("powers_of_two", "0 64", 32, "32"),
        ("modified_fibonacci", "0 1", 0.5, "½"),
        ("fibonacci", "5 13", 9, "8"),  # nearest card, not the next one up
        ("fibonacci", "3 8", 5.5, "5"),
    ],
)
def test_suggestion_is_the_card_nearest_the_median_rounding_up(deck, votes, median, suggestion):
    """The suggestion is the deck card nearest the median; a tie goes to the larger card."""
    result = stats(deck, votes)
    assert result.median == median
    assert result.suggestion == suggestion


def test_zero_is_a_number_not_a_missing_value():
    result = stats("powers_of_two", "0 0")
    assert (result.min, result.max, result.mean, result.spread) == ("0", "0", 0, 0)
    assert result.consensus is True
    assert result.suggestion == "0"


def test_statistics_are_plain_json():
    """Statistics are stored in a JSON column and sent to sockets as they are."""
    result = stats("modified_fibonacci", "½ 3 ? 3")
    data = result.as_dict()
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    # Every field, copied: as_dict is spelled out for speed and must not fall behind the class.
    assert data == dataclasses.asdict(result)
    data["mode"].append("8")
    data["distribution"]["8"] = 1
    assert result.mode == ["3"]
    assert "8" not in result.distribution
    assert set(data) == {
        "votes",
        "kind",
        "median_card",
        "mean",
        "median",
        "min",
        "max",
        "spread",
        "mode",
        "consensus",
        "suggestion",
        "distribution",
    }


# --- Properties -------------------------------------------------------------------------------


@st.composite
def deck_and_votes(draw):
    deck = draw(st.sampled_from(list(game.DECKS.values())))
    votes = draw(st.lists(st.sampled_from(deck.cards), max_size=30))
    return deck, votes


@given(deck_and_votes())
def test_distribution_accounts_for_every_vote(case):
    """Every vote lands in the distribution exactly once, in deck order."""
    deck, votes = case
    result = game.compute_statistics(deck, votes)
    assert result.votes == len(votes)
    assert sum(result.distribution.values()) == len(votes)
    assert all(count > 0 for count in result.distribution.values())
    order = [deck.cards.index(card) for card in result.distribution]
    assert order == sorted(order)


@given(deck_and_votes())
def test_mean_and_median_lie_between_min_and_max(case):
    deck, votes = case
    result = game.compute_statistics(deck, votes)
    if result.mean is None:
        assert result.median is None
        assert all(game.card_value(v) is None for v in votes)
        return
    low, high = game.card_value(result.min), game.card_value(result.max)
    # The mean is rounded to two places, so allow that much slack.
    assert low - 0.005 <= result.mean <= high + 0.005
    assert low <= result.median <= high
    assert math.isclose(result.spread, high - low)


@given(deck_and_votes())
def test_mode_consensus_and_suggestion_are_consistent(case):
    deck, votes = case
    result = game.compute_statistics(deck, votes)
    scored = [v for v in votes if v not in SPECIALS]
    assert set(result.mode) <= set(scored)
    if scored:
        top = max(scored.count(card) for card in scored)
        assert {card for card in scored if scored.count(card) == top} == set(result.mode)
    assert result.consensus is (len(set(scored)) == 1)
    assert (result.suggestion is None) is (not scored)
    if result.suggestion is not None:
        assert result.suggestion in deck.cards
        assert result.suggestion not in SPECIALS
    if result.consensus:
        assert result.suggestion == scored[0]


# --- Team decks: labels with optional numbers, special cards --------------------------------


def team_deck(text: str, name: str = "Ours") -> game.Deck:
    return game.validate_deck("custom-1", name, game.parse_cards(text))


def test_parse_cards_reads_labels_and_values():
    """Cards are separated by spaces, commas or lines; ``label=number`` gives a card a value."""
    assert game.parse_cards("XS=1, S=2\nM=3.5 ? ½") == [
        ("XS", 1.0),
        ("S", 2.0),
        ("M", 3.5),
        ("?", None),
        ("½", None),
    ]
    with pytest.raises(game.InvalidDeck) as excinfo:
        game.parse_cards("XS=small")
    assert excinfo.value.code == "invalid_deck"
    assert "XS" in excinfo.value.message


def test_a_label_that_spells_a_number_counts_as_it():
    deck = team_deck("1 2 3 5 8 ∞ pass ?")
    assert deck.kind == "numeric"
    assert deck.value_of("5") == 5
    assert deck.value_of("∞") is None
    assert deck.as_dict()["values"] == {"1": 1, "2": 2, "3": 3, "5": 5, "8": 8}


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("1 2 3", "", "needs a name"),
        ("1 2 3", "x" * 61, "at most 60"),
        ("1 2 2", "Ours", "twice"),
        ("1 ? ☕ ∞ pass", "Ours", "at least 2 cards"),
        (" ".join(str(n) for n in range(31)), "Ours", "at most 30 cards"),
        ("1 2 " + "x" * 17, "Ours", "printable"),
        ("1 2 ?=3", "Ours", "special card"),
    ],
)
def test_bad_decks_are_refused_with_a_reason(text, name, message):
    with pytest.raises(game.InvalidDeck) as excinfo:
        team_deck(text, name)
    assert message in excinfo.value.message


def test_values_must_be_finite_numbers():
    for value in (float("nan"), float("inf"), True, "3"):
        with pytest.raises(game.InvalidDeck):
            game.validate_deck("custom-1", "Ours", [("a", value), ("b", None)])
    assert game.card_value("inf") is None
    assert game.card_value("1e400") is None


def test_custom_deck_keys():
    assert game.custom_deck_key(42) == "custom-42"
    assert game.custom_deck_id("custom-42") == 42
    assert game.custom_deck_id("custom-x") is None
    assert game.custom_deck_id("fibonacci") is None
    assert game.custom_deck_id("custom-" + "9" * 30) is None


def test_sizes_with_values_are_a_numeric_deck():
    """T-shirt sizes given numbers: mean and median over the numbers, the suggestion is the
    size nearest the median, special cards (?, ∞, pass) are left out."""
    deck = team_deck("XS=1 S=2 M=3 L=5 XL=8 ? ∞ pass")
    assert deck.kind == "numeric"
    result = game.compute_statistics(deck, ["S", "L", "L", "?", "∞", "pass"])
    assert result.kind == "numeric"
    assert result.votes == 6
    assert result.mean == 4
    assert result.median == 5
    assert (result.min, result.max, result.spread) == ("S", "L", 3)
    assert result.mode == ["L"]
    assert result.suggestion == "L"
    assert result.distribution == {"S": 1, "L": 2, "?": 1, "∞": 1, "pass": 1}


def test_suggestion_of_a_valued_deck_is_the_card_nearest_the_median():
    deck = team_deck("XS=1 S=2 M=3 L=5 XL=8")
    result = game.compute_statistics(deck, ["XS", "XL"])  # median 4.5: M (3) or L (5)
    assert result.median == 4.5
    assert result.suggestion == "L"


def test_a_deck_with_an_unvalued_card_is_ordinal():
    """One card without a number makes the deck ordinal: no mean, order decides."""
    deck = team_deck("tiny=1 small medium=5 huge=20 ☕")
    assert deck.kind == "ordinal"
    result = game.compute_statistics(deck, ["huge", "tiny", "medium", "☕"])
    assert result.kind == "ordinal"
    assert (result.mean, result.median, result.spread) == (None, None, None)
    assert (result.min, result.max) == ("tiny", "huge")
    assert result.median_card == "medium"
    assert result.suggestion == "medium"


def test_only_special_cards_on_a_team_deck_give_no_statistics():
    deck = team_deck("a b pass ∞")
    result = game.compute_statistics(deck, ["pass", "∞"])
    assert (result.min, result.max, result.median_card, result.suggestion) == (None,) * 4
    assert result.mode == []
    assert result.consensus is False


def test_a_round_keeps_its_deck_as_it_was():
    """A round's snapshot (cards and deck_spec) rebuilds the deck it was played with; rounds
    without a spec (from before) count their cards as the numbers they spell."""
    deck = team_deck("XS=1 S=2 M=3 ?", name="Sizes")
    again = game.Deck.from_snapshot(deck.key, list(deck.cards), deck.snapshot())
    assert again == deck
    assert again.name == "Sizes"
    assert game.compute_statistics(again, ["XS", "M"]).mean == 2
    old = game.Deck.from_snapshot("fibonacci", ["1", "2", "?"], {})
    assert old.kind == "numeric"
    assert game.compute_statistics(old, ["1", "2"]).mean == 1.5
