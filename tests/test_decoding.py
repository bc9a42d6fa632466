"""Framing around a provider's interpreter: SSE streams, whole bodies, and held-back errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trio_llm
from trio_llm import Event, Finish, FinishReason, TextDelta
from trio_llm._decoding import BodyDecoder, SSEStreamDecoder, loads


class ScriptedInterpreter:
    """Each payload becomes a TextDelta, except ``fail...`` payloads, which raise ProtocolError.

    ``on_end`` finishes the stream, or raises ``end_error`` when one is given.
    """

    def __init__(self, *, end_error: trio_llm.TrioLLMError | None = None) -> None:
        self.payloads: list[str] = []
        self.ended = 0
        self.end_error = end_error

    def on_data(self, data: str) -> list[Event]:
        self.payloads.append(data)
        if data.startswith("fail"):
            raise trio_llm.ProtocolError(f"bad payload {data!r}")
        return [TextDelta(data)]

    def on_end(self) -> list[Event]:
        self.ended += 1
        if self.end_error is not None:
            raise self.end_error
        return [Finish(FinishReason.STOP)]


FINISH = Finish(FinishReason.STOP)


# -- SSEStreamDecoder ----------------------------------------------------------------------------


def test_each_data_field_is_one_payload() -> None:
    interpreter = ScriptedInterpreter()
    decoder = SSEStreamDecoder(interpreter)

    assert decoder.feed(b"data: a\n\ndata: b\ndata: c\n\n") == [TextDelta("a"), TextDelta("b\nc")]
    assert interpreter.payloads == ["a", "b\nc"]


def test_close_decodes_the_unterminated_last_event_then_ends_the_stream() -> None:
    interpreter = ScriptedInterpreter()
    decoder = SSEStreamDecoder(interpreter)

    assert decoder.feed(b"data: last") == []
    assert decoder.close() == [TextDelta("last"), FINISH]
    assert interpreter.ended == 1


def test_closing_twice_ends_the_stream_once() -> None:
    interpreter = ScriptedInterpreter()
    decoder = SSEStreamDecoder(interpreter)

    assert decoder.close() == [FINISH]
    assert decoder.close() == []
    assert interpreter.ended == 1


def test_error_with_no_events_before_it_is_raised_at_once() -> None:
    decoder = SSEStreamDecoder(ScriptedInterpreter())

    with pytest.raises(trio_llm.ProtocolError, match="fail"):
        decoder.feed(b"data: fail\n\n")
    assert decoder.pending_error is None


def test_events_before_an_error_in_the_same_chunk_are_returned_first() -> None:
    decoder = SSEStreamDecoder(ScriptedInterpreter())

    events = decoder.feed(b"data: one\n\ndata: two\n\ndata: fail\n\ndata: never\n\n")

    assert events == [TextDelta("one"), TextDelta("two")]
    assert isinstance(decoder.pending_error, trio_llm.ProtocolError)
    assert "fail" in str(decoder.pending_error)


def test_a_held_back_error_is_raised_by_the_next_feed() -> None:
    interpreter = ScriptedInterpreter()
    decoder = SSEStreamDecoder(interpreter)
    decoder.feed(b"data: one\n\ndata: fail\n\n")
    held = decoder.pending_error

    with pytest.raises(trio_llm.ProtocolError) as caught:
        decoder.feed(b"data: more\n\n")

    assert caught.value is held
    assert interpreter.payloads == ["one", "fail"]  # nothing after the error is interpreted


def test_a_held_back_error_is_raised_by_close() -> None:
    interpreter = ScriptedInterpreter()
    decoder = SSEStreamDecoder(interpreter)
    decoder.feed(b"data: one\n\ndata: fail\n\n")
    held = decoder.pending_error

    with pytest.raises(trio_llm.ProtocolError) as caught:
        decoder.close()

    assert caught.value is held
    assert interpreter.ended == 0


def test_an_end_error_after_final_events_is_held_back() -> None:
    truncated = trio_llm.StreamTruncatedError("no end marker")
    decoder = SSEStreamDecoder(ScriptedInterpreter(end_error=truncated))

    assert decoder.feed(b"data: partial") == []
    assert decoder.close() == [TextDelta("partial")]
    assert decoder.pending_error is truncated

    with pytest.raises(trio_llm.StreamTruncatedError) as caught:
        decoder.close()
    assert caught.value is truncated


def test_an_end_error_with_nothing_before_it_is_raised_by_close() -> None:
    truncated = trio_llm.StreamTruncatedError("no end marker")
    decoder = SSEStreamDecoder(ScriptedInterpreter(end_error=truncated))

    assert decoder.feed(b"data: complete\n\n") == [TextDelta("complete")]
    with pytest.raises(trio_llm.StreamTruncatedError) as caught:
        decoder.close()
    assert caught.value is truncated


def test_an_error_in_the_unterminated_last_event_after_others_is_held_back_by_close() -> None:
    decoder = SSEStreamDecoder(ScriptedInterpreter())
    decoder.feed(b"data: a\n\n")

    assert decoder.feed(b"data: b\n\ndata: fail") == [TextDelta("b")]
    assert decoder.pending_error is None
    with pytest.raises(trio_llm.ProtocolError, match="fail"):
        decoder.close()


@pytest.mark.parametrize(
    "bad_event",
    [b"data: caf\xe9\n\n", b"data: " + b"x" * 200 + b"\n\n"],
    ids=["invalid-utf8", "oversized"],
)
def test_events_before_a_framing_error_in_the_same_chunk_are_returned_first(bad_event: bytes) -> None:
    decoder = SSEStreamDecoder(ScriptedInterpreter(), max_event_size=100)

    events = decoder.feed(b"data: kept\n\n" + bad_event)

    assert events == [TextDelta("kept")]
    assert isinstance(decoder.pending_error, trio_llm.ProtocolError)


@pytest.mark.parametrize(
    "bad_event",
    [b"data: caf\xe9\n\n", b"data: " + b"x" * 200 + b"\n\n"],
    ids=["invalid-utf8", "oversized"],
)
def test_a_framing_error_alone_is_raised_at_once(bad_event: bytes) -> None:
    decoder = SSEStreamDecoder(ScriptedInterpreter(), max_event_size=100)

    with pytest.raises(trio_llm.ProtocolError):
        decoder.feed(bad_event)


# -- BodyDecoder ---------------------------------------------------------------------------------


def test_body_is_interpreted_once_at_close() -> None:
    interpreter = ScriptedInterpreter()
    decoder = BodyDecoder(interpreter)

    for chunk in [b'{"text": ', b'"hel', b'lo"}']:
        assert decoder.feed(chunk) == []
    assert interpreter.payloads == []

    assert decoder.close() == [TextDelta('{"text": "hello"}'), FINISH]
    assert interpreter.payloads == ['{"text": "hello"}']
    assert interpreter.ended == 1


def test_body_with_a_utf8_character_split_across_chunks_decodes() -> None:
    interpreter = ScriptedInterpreter()
    decoder = BodyDecoder(interpreter)
    body = "привет".encode()

    for i in range(len(body)):
        decoder.feed(body[i : i + 1])

    assert decoder.close() == [TextDelta("привет"), FINISH]


def test_body_closed_twice_is_interpreted_once() -> None:
    interpreter = ScriptedInterpreter()
    decoder = BodyDecoder(interpreter)
    decoder.feed(b"x")

    assert decoder.close() == [TextDelta("x"), FINISH]
    assert decoder.close() == []
    assert interpreter.payloads == ["x"]


def test_body_that_is_not_utf8_is_a_protocol_error() -> None:
    interpreter = ScriptedInterpreter()
    decoder = BodyDecoder(interpreter)
    decoder.feed(b'{"text": "caf\xe9"}')

    with pytest.raises(trio_llm.ProtocolError, match="UTF-8"):
        decoder.close()
    assert interpreter.payloads == []


def test_body_over_the_size_limit_is_a_protocol_error_as_soon_as_it_is_fed() -> None:
    decoder = BodyDecoder(ScriptedInterpreter(), max_body_size=10)
    decoder.feed(b"123456")

    with pytest.raises(trio_llm.ProtocolError, match="exceeds 10 bytes"):
        decoder.feed(b"78901")


def test_body_of_exactly_the_size_limit_is_accepted() -> None:
    decoder = BodyDecoder(ScriptedInterpreter(), max_body_size=10)
    decoder.feed(b"12345")
    decoder.feed(b"67890")

    assert decoder.close() == [TextDelta("1234567890"), FINISH]


def test_body_interpreter_error_is_raised_by_close() -> None:
    decoder = BodyDecoder(ScriptedInterpreter())
    decoder.feed(b"fail: the whole body")

    with pytest.raises(trio_llm.ProtocolError, match="fail"):
        decoder.close()


def test_body_end_error_after_its_events_is_held_back() -> None:
    truncated = trio_llm.StreamTruncatedError("no end marker")
    decoder = BodyDecoder(ScriptedInterpreter(end_error=truncated))
    decoder.feed(b"partial")

    assert decoder.close() == [TextDelta("partial")]
    assert decoder.pending_error is truncated
    with pytest.raises(trio_llm.StreamTruncatedError):
        decoder.close()


# -- loads ---------------------------------------------------------------------------------------


def test_loads_parses_json_text_and_bytes() -> None:
    assert loads('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert loads('{"ж": true}'.encode()) == {"ж": True}


def test_loads_raises_protocol_error_quoting_a_short_payload_whole() -> None:
    with pytest.raises(trio_llm.ProtocolError) as caught:
        loads("{not json}", "gemini")

    assert caught.value.provider == "gemini"
    assert "'{not json}'" in str(caught.value)
    assert "..." not in str(caught.value)


def test_loads_quotes_only_the_start_of_a_long_payload() -> None:
    payload = '{"text": "' + "a" * 100 + "b" * 500 + "Z" * 100

    with pytest.raises(trio_llm.ProtocolError) as caught:
        loads(payload)

    message = str(caught.value)
    assert payload[:120] + "..." in message
    assert "b" * 200 not in message
    assert "Z" not in message


def test_loads_of_invalid_utf8_bytes_is_a_protocol_error() -> None:
    with pytest.raises(trio_llm.ProtocolError, match="malformed JSON"):
        loads(b'{"a": "\xff"}')


def test_loads_keeps_the_json_error_as_the_cause() -> None:
    with pytest.raises(trio_llm.ProtocolError) as caught:
        loads("[1,")

    assert isinstance(caught.value.__cause__, ValueError)


def _json_outcome(text: str) -> tuple[str, Any]:
    try:
        return "ok", json.loads(text)
    except ValueError as exc:
        return "error", str(exc)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        ' {"a": 1}',  # leading whitespace
        '{"a": 1}\r\n ',  # trailing whitespace
        '\ufeff{"a": 1}',  # a byte-order mark: json.loads refuses it
        '{"a": 1} {"b": 2}',  # extra data
        '{"a": 1}x',
        "",
        "   ",
        "[DONE]",
        "NaN",
        '"\\ud800"',  # a lone surrogate escape: json.loads accepts it
        '{"a": "line\nbreak"}',  # a raw control character: strict json.loads refuses it
        "1e400",
        '{"a": {"b": [true, false, null, -0.0, 12345678901234567890]}}',
    ],
)
def test_loads_agrees_with_json_loads(text: str) -> None:
    # loads parses most payloads with the scanner directly (the fast path of every stream):
    # whatever json.loads makes of a text, loads makes the same, or fails as it fails.
    kind, value = _json_outcome(text)
    if kind == "ok":
        result = loads(text)
        assert json.dumps(result) == json.dumps(value)  # NaN is not equal to itself
        assert type(result) is type(value)
    else:
        with pytest.raises(trio_llm.ProtocolError) as caught:
            loads(text)
        assert str(caught.value.__cause__) == value


@settings(max_examples=300, deadline=None)
@given(
    text=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
        max_leaves=8,
    ).map(json.dumps)
    | st.text(alphabet=' \t\r\n{}[]":,0123456789.eE+-truefalsnNaI\\u', max_size=30)
)
def test_loads_agrees_with_json_loads_on_any_text(text: str) -> None:
    kind, value = _json_outcome(text)
    if kind == "ok":
        assert json.dumps(loads(text)) == json.dumps(value)  # NaN is not equal to itself
    else:
        with pytest.raises(trio_llm.ProtocolError):
            loads(text)
