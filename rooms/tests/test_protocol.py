"""The WebSocket protocol: every client frame is validated before it reaches a service, and every
server event matches its declaration."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts import roles
from pokerproject.errors import DomainError
from rooms import game, protocol, services
from rooms.protocol import Command, ProtocolError, parse_command


def frame(type_: object = "cast_vote", **fields) -> str:
    return json.dumps({"type": type_, **fields})


def code_of(text: str | None) -> str:
    with pytest.raises(ProtocolError) as excinfo:
        parse_command(text)
    return excinfo.value.code


# --- Frames that are not commands -------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "not json", "{", '{"type": "ping",}', "{'type': 'ping'}"])
def test_malformed_json_is_bad_json(text):
    assert code_of(text) == "bad_json"


def test_absurdly_nested_json_is_bad_json_not_a_crash():
    assert code_of("[" * 100_000 + "]" * 100_000) == "bad_json"


@pytest.mark.parametrize("text", ["[]", '["ping"]', '"ping"', "42", "null", "true"])
def test_a_frame_that_is_not_an_object_is_bad_frame(text):
    assert code_of(text) == "bad_frame"


def test_binary_frame_is_bad_frame():
    assert code_of(None) == "bad_frame"


@pytest.mark.parametrize(
    "text",
    ['{"data": {"value": "5"}}', '{"type": null}', '{"type": 5}', '{"type": ["ping"]}'],
)
def test_a_frame_without_a_string_type_is_bad_frame(text):
    assert code_of(text) == "bad_frame"


@pytest.mark.parametrize("name", ["delete_everything", "vote_cast", "CAST_VOTE", "", "x" * 500])
def test_unknown_command(name):
    """Event names and unknown words are not commands; the error names at most 40 characters."""
    with pytest.raises(ProtocolError) as excinfo:
        parse_command(frame(name))
    assert excinfo.value.code == "unknown_command"
    assert len(str(excinfo.value)) < 80


# --- Fields -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cast_vote", {"value": 5}),  # int for str
        ("cast_vote", {"value": True}),
        ("cast_vote", {"value": ["5"]}),
        ("start_round", {"story_id": 3}),  # ids are UUID strings
        ("start_round", {"story_id": True}),  # bool is not an id
        ("start_round", {"story_id": 3.0}),
        ("start_round", {"title": 7}),
        ("accept_estimate", {"value": "5", "next": 1}),  # int is not a bool
        ("accept_estimate", {"value": "5", "next": "yes"}),
        ("set_deck", {"deck": {"key": "tshirt"}}),
    ],
)
def test_field_of_the_wrong_type_is_invalid(name, data):
    assert code_of(frame(name, data=data)) == "invalid"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cast_vote", {}),
        ("cast_vote", {"value": None}),
        ("accept_estimate", {"next": True}),
        ("set_deck", {}),
    ],
)
def test_missing_required_field_is_invalid(name, data):
    with pytest.raises(ProtocolError) as excinfo:
        parse_command(frame(name, data=data))
    assert excinfo.value.code == "invalid"
    assert "required" in str(excinfo.value)


def test_command_without_data_lacks_its_required_field():
    assert code_of(frame("cast_vote")) == "invalid"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cast_vote", {"value": "5", "user_id": 1}),  # no voting on someone else's behalf
        ("get_snapshot", {"all": True}),
        ("reveal_cards", {"force": True}),
    ],
)
def test_unknown_field_is_invalid(name, data):
    with pytest.raises(ProtocolError) as excinfo:
        parse_command(frame(name, data=data))
    assert excinfo.value.code == "invalid"
    assert "Unknown field" in str(excinfo.value)


@pytest.mark.parametrize("data", [[], "x", 5, True])
def test_data_that_is_not_an_object_is_invalid(data):
    assert code_of(frame("ping", data=data)) == "invalid"


def test_over_long_string_field_is_invalid():
    assert parse_command(frame("start_round", data={"title": "x" * 200})).data == {
        "title": "x" * 200
    }
    assert code_of(frame("start_round", data={"title": "x" * 201})) == "invalid"
    assert code_of(frame("cast_vote", data={"value": "5" * 201})) == "invalid"


@pytest.mark.parametrize("text", ["a\x00b", "\ud800", "x\udfff", "\x00"])
@pytest.mark.parametrize("field", ["request_id", "title", "story_id"])
def test_a_nul_or_lone_surrogate_in_a_string_is_invalid(field, text):
    """json.dumps escapes them as \\u0000 and \\ud800, as a client's JSON would."""
    fields = {field: text} if field == "request_id" else {"data": {field: text}}
    assert code_of(frame("start_round", **fields)) == "invalid"


@pytest.mark.parametrize("text", ["café", "😀", "a\\u0000", "☕"])
def test_other_strings_pass_whatever_their_escapes(text):
    assert parse_command(frame("start_round", data={"title": text})).data == {"title": text}
    escaped = json.dumps({"type": "start_round", "data": {"title": text}}, ensure_ascii=True)
    assert parse_command(escaped).data == {"title": text}


@pytest.mark.parametrize(
    "text",
    [
        frame("no_such", request_id="r9"),
        frame(5, request_id="r9"),
        frame("cast_vote", request_id="r9"),
        frame("cast_vote", request_id="r9", data={"value": 5}),
        frame("cast_vote", request_id="r9", data={"value": "5", "x": 1}),
        frame("cast_vote", request_id="r9", data=[]),
        frame("start_round", request_id="r9", data={"title": "\x00"}),
    ],
)
def test_a_refused_command_carries_its_request_id(text):
    with pytest.raises(ProtocolError) as excinfo:
        parse_command(text)
    assert excinfo.value.request_id == "r9"


@pytest.mark.parametrize("request_id", ["x" * 65, True, 1.5, ["r1"], {"id": 1}])
def test_bad_request_id_is_invalid(request_id):
    assert code_of(frame("ping", request_id=request_id)) == "invalid"


@pytest.mark.parametrize("request_id", ["r7", "x" * 64, 0, 12345, None])
def test_request_id_is_a_short_string_or_an_integer(request_id):
    assert parse_command(frame("ping", request_id=request_id)).request_id == request_id


# --- Valid commands ---------------------------------------------------------------------------


def test_cast_vote_parses_to_a_command():
    command = parse_command(frame("cast_vote", request_id="r7", data={"value": "5"}))
    assert command == Command(name="cast_vote", request_id="r7", data={"value": "5"})


def test_optional_fields_may_be_absent_or_null():
    """A null optional field is treated as absent, so services see only real values."""
    assert parse_command(frame("start_round")).data == {}
    assert parse_command(frame("start_round", data=None)).data == {}
    assert parse_command(frame("start_round", data={"story_id": None})).data == {}
    assert parse_command(frame("start_round", data={"story_id": "3", "title": "Login"})).data == {
        "story_id": "3",
        "title": "Login",
    }
    assert parse_command(frame("accept_estimate", data={"value": "8", "next": True})).data == {
        "value": "8",
        "next": True,
    }


MINIMAL_DATA = {
    "cast_vote": {"value": "5"},
    "accept_estimate": {"value": "5"},
    "set_deck": {"deck": "tshirt"},
    "set_auto_reveal": {"enabled": True},
    "set_voting": {"voting": False},
    "remove_member": {"user_id": 7},
    "set_role": {"user_id": 7, "role": "observer"},
}


@pytest.mark.parametrize("name", list(protocol.COMMANDS))
def test_every_declared_command_parses(name):
    data = MINIMAL_DATA.get(name, {})
    command = parse_command(frame(name, request_id=1, data=data))
    assert (command.name, command.request_id, command.data) == (name, 1, data)


def test_every_command_is_imperative_and_no_event_shares_its_name():
    assert not set(protocol.COMMANDS) & set(protocol.EVENTS)


def test_every_command_has_its_handler_on_the_consumer():
    from rooms.realtime.consumers import RoomConsumer

    for name, spec in protocol.COMMANDS.items():
        assert callable(getattr(RoomConsumer, spec.handler, None)), name


def outcome(text: str) -> Command | ProtocolError:
    try:
        return parse_command(text)
    except ProtocolError as exc:
        return exc


@given(st.text(max_size=300))
def test_any_text_is_a_command_or_a_protocol_error(text):
    """Whatever a client sends, the parser answers with a command or an error code: it never
    raises anything else."""
    result = outcome(text)
    if isinstance(result, ProtocolError):
        assert result.code in protocol.ERROR_CODES
    else:
        assert result.name in protocol.COMMANDS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


@given(
    st.sampled_from(list(protocol.COMMANDS)),
    st.dictionaries(
        st.sampled_from(["value", "story_id", "title", "next", "deck", "x"]), json_values
    ),
    json_values,
)
def test_any_json_object_is_a_command_or_a_protocol_error(name, data, request_id):
    text = json.dumps({"type": name, "data": data, "request_id": request_id})
    command = outcome(text)
    if isinstance(command, ProtocolError):
        assert command.code == "invalid"
    else:
        fields = protocol.COMMANDS[name].fields
        assert set(command.data) <= set(fields)
        for field, value in command.data.items():
            kind = fields[field][0]
            assert isinstance(value, kind)
            assert kind is bool or not isinstance(value, bool)


# --- Events -----------------------------------------------------------------------------------


def test_event_builds_a_versioned_frame():
    assert protocol.event("vote_cast", version=12, data={"user_id": 4}) == {
        "type": "vote_cast",
        "version": 12,
        "data": {"user_id": 4},
    }
    assert protocol.event("table_resumed", version=3, data={})["type"] == "table_resumed"


def test_event_may_carry_more_than_its_required_keys():
    data = {"round_id": 1, "story_id": None, "estimate": "5", "backlog": []}
    assert protocol.event("estimate_accepted", version=1, data=data)["data"] == data


@pytest.mark.parametrize("name", ["vote_revealed", "cast_vote", "ack", "error", ""])
def test_undeclared_event_is_refused(name):
    with pytest.raises(ValueError, match="undeclared event"):
        protocol.event(name, version=1, data={})


@pytest.mark.parametrize(
    ("name", "data", "missing"),
    [
        ("vote_cast", {}, "user_id"),
        ("cards_revealed", {"votes": []}, "round"),
        ("estimate_accepted", {"round_id": 1, "estimate": "5"}, "story_id"),
        ("members_changed", {"user_id": 1}, "role"),
    ],
)
def test_event_missing_a_key_is_refused(name, data, missing):
    with pytest.raises(ValueError, match=missing):
        protocol.event(name, version=1, data=data)


@pytest.mark.parametrize("version", [None, "3", 2.0])
def test_event_without_an_integer_version_is_refused(version):
    with pytest.raises(ValueError, match="version"):
        protocol.check_event({"type": "vote_cast", "version": version, "data": {"user_id": 1}})
    with pytest.raises(ValueError, match="version"):
        protocol.check_event({"type": "vote_cast", "data": {"user_id": 1}})


def test_unversioned_events_are_declared_events():
    assert protocol.UNVERSIONED_EVENTS.issubset(protocol.EVENTS)


def test_the_page_knows_the_same_unversioned_events():
    """The table's script applies a versioned event only in version order: one it took for
    versioned (version 0) would be dropped as already seen."""
    script = (Path(__file__).resolve().parents[2] / "static" / "rooms" / "table.js").read_text()
    listed = re.search(r"const UNVERSIONED = new Set\(\[(.*?)\]\);", script, re.S)
    assert listed, "table.js declares no UNVERSIONED set"
    assert set(re.findall(r'"([a-z_]+)"', listed.group(1))) == protocol.UNVERSIONED_EVENTS


# --- Acks and errors --------------------------------------------------------------------------


def test_ack_echoes_the_request_id_and_version():
    assert protocol.ack("r7", version=12, data={"value": "5"}) == {
        "type": "ack",
        "request_id": "r7",
        "version": 12,
        "data": {"value": "5"},
    }
    assert protocol.ack(None, version=0)["data"] == {}


def test_error_echoes_the_request_id_with_a_stable_code_and_default_message():
    assert protocol.error("r7", "not_in_deck") == {
        "type": "error",
        "request_id": "r7",
        "code": "not_in_deck",
        "message": protocol.ERROR_CODES["not_in_deck"],
    }
    assert protocol.error(3, "forbidden", "A voter may not reveal.")["message"] == (
        "A voter may not reveal."
    )


def test_error_with_an_unknown_code_falls_back_to_internal():
    """A code the protocol does not define never reaches a client: it becomes internal."""
    answer = protocol.error("r1", "KeyError")
    assert answer["code"] == "internal"
    assert answer["message"] == protocol.ERROR_CODES["internal"]
    assert answer["request_id"] == "r1"


def test_protocol_error_defaults_to_the_codes_message():
    assert str(ProtocolError("rate_limited")) == protocol.ERROR_CODES["rate_limited"]
    assert str(ProtocolError("invalid", "value is required.")) == "value is required."


@pytest.mark.parametrize(
    "error",
    [
        DomainError,
        roles.Forbidden,
        game.NotInDeck,
        game.UnknownDeck,
        game.InvalidEstimate,
        services.UnknownStory,
        services.BacklogDone,
    ],
)
def test_every_table_error_code_is_a_protocol_code(error):
    """A refused table command reaches the client with its own code, not "internal"."""
    assert error.code in protocol.ERROR_CODES
    assert protocol.error(None, error.code)["code"] == error.code


@pytest.mark.parametrize(
    ("guard", "status"),
    [
        (game.require_voting, None),
        (game.require_voting, "revealed"),
        (game.require_revealed, "voting"),
        (game.require_can_start, "voting"),
    ],
)
def test_every_round_state_code_is_a_protocol_code(guard, status):
    with pytest.raises(game.WrongRoundState) as excinfo:
        guard(status)
    assert excinfo.value.code in protocol.ERROR_CODES
