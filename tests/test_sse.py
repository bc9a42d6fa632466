"""The sans-IO SSE decoder, byte by byte: line endings, fields, fragmentation, limits, fuzzing."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trio_llm
from trio_llm._sse import DEFAULT_MAX_EVENT_SIZE, SSEDecoder, SSEEvent


def decode_chunks(chunks: Iterable[bytes], *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> list[SSEEvent]:
    """Every event the decoder yields for ``chunks``, the ones dispatched by ``close()`` included."""
    decoder = SSEDecoder(max_event_size)
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    return events


def decode(raw: bytes, **kwargs: int) -> list[SSEEvent]:
    return decode_chunks([raw], **kwargs)


def split_at(raw: bytes, points: Iterable[int]) -> list[bytes]:
    cuts = [0, *sorted(points), len(raw)]
    return [raw[start:end] for start, end in pairwise(cuts)]


# A stream that exercises every rule at once: all three line endings (mixed), "\r\n" pairs
# that a split can separate, comments, multi-line data, named events, ids, retry, a field
# without the optional space, unknown fields, and multi-byte UTF-8 that a split can cut in two.
FIXTURE = (
    b": welcome\r\n"
    b"retry: 1500\n"
    b"data: first\r\n"
    b"\r\n"
    b"event: update\r"
    b"id: 42\r"
    b"data:line one\r"
    b"data: line two\r"
    b"\r"
    b"data: \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xe2\x9c\x93\n"
    b": comment between data lines\n"
    b'data: {"k": "v"}\n'
    b"bogus: ignored\n"
    b"\n"
    b"\r\n\n\r"
    b"event: done\r\n"
    b"data: [DONE]\r\n"
    b"\r\n"
)

FIXTURE_EVENTS = [
    SSEEvent(data="first", retry=1500),
    SSEEvent(data="line one\nline two", event="update", id="42", retry=1500),
    SSEEvent(data='привет ✓\n{"k": "v"}', id="42", retry=1500),
    SSEEvent(data="[DONE]", event="done", id="42", retry=1500),
]


# -- line endings --------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["lf", "cr", "crlf"])
def test_each_line_ending_is_accepted(eol: bytes) -> None:
    raw = eol.join([b"event: greeting", b"id: 1", b"data: hello", b"", b"data: world", b"", b""])

    assert decode(raw) == [
        SSEEvent(data="hello", event="greeting", id="1"),
        SSEEvent(data="world", id="1"),
    ]


def test_line_endings_may_be_mixed_within_one_stream() -> None:
    raw = b"data: a\r\n\r\ndata: b\n\ndata: c\r\rdata: d\r\n\ndata: e\n\r\n"

    assert [event.data for event in decode(raw)] == ["a", "b", "c", "d", "e"]


def test_crlf_is_one_line_ending_not_two() -> None:
    # Were "\r\n" two endings, the blank line between them would split the event in two.
    raw = b"data: a\r\ndata: b\r\n\r\n"

    assert decode(raw) == [SSEEvent(data="a\nb")]


def test_cr_ending_one_chunk_and_lf_opening_the_next_are_one_line_ending() -> None:
    assert decode_chunks([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [SSEEvent(data="a\nb")]


def test_cr_then_lf_alone_in_the_next_chunk_is_one_line_ending() -> None:
    assert decode_chunks([b"data: a\r", b"\n", b"data: b\r", b"\n", b"\r", b"\n"]) == [SSEEvent(data="a\nb")]


def test_lf_after_a_cr_in_a_later_chunk_is_not_swallowed_when_something_came_between() -> None:
    # The "\r" pairing only applies to the very next byte.
    assert decode_chunks([b"data: a\r", b"\r", b"\ndata: b\n\n"]) == [SSEEvent(data="a"), SSEEvent(data="b")]


# -- fields --------------------------------------------------------------------------------------


def test_comments_are_ignored() -> None:
    raw = b": keep-alive\n\n:\n\ndata: x\n: a comment inside an event\ndata: y\n\n"

    assert decode(raw) == [SSEEvent(data="x\ny")]


def test_a_stream_of_only_comments_dispatches_nothing() -> None:
    assert decode(b": ping\n\n: ping\n\n: unterminated") == []


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode(b"data: one\ndata: two\ndata: three\n\n") == [SSEEvent(data="one\ntwo\nthree")]


def test_empty_data_lines_are_kept_as_empty_lines() -> None:
    assert decode(b"data: a\ndata:\ndata: b\n\n") == [SSEEvent(data="a\n\nb")]


def test_data_without_the_optional_space() -> None:
    assert decode(b"data:x\n\n") == [SSEEvent(data="x")]


def test_only_one_leading_space_is_stripped() -> None:
    assert decode(b"data:  indented\n\n") == [SSEEvent(data=" indented")]


def test_a_field_name_without_colon_has_an_empty_value() -> None:
    assert decode(b"data\n\n") == [SSEEvent(data="")]


def test_colons_after_the_first_belong_to_the_value() -> None:
    assert decode(b'data: {"a": "b:c"}\n\n') == [SSEEvent(data='{"a": "b:c"}')]


def test_event_field_names_the_event_and_resets_after_dispatch() -> None:
    raw = b"event: delta\ndata: 1\n\ndata: 2\n\n"

    assert decode(raw) == [SSEEvent(data="1", event="delta"), SSEEvent(data="2", event="message")]


def test_id_is_kept_for_later_events_as_the_last_event_id() -> None:
    raw = b"id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\n"

    assert [event.id for event in decode(raw)] == ["7", "7", "8"]


def test_id_containing_nul_is_ignored() -> None:
    assert decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
        SSEEvent(data="a", id="1"),
        SSEEvent(data="b", id="1"),
    ]


def test_retry_with_digits_sets_retry() -> None:
    assert decode(b"retry: 3000\ndata: a\n\n") == [SSEEvent(data="a", retry=3000)]


@pytest.mark.parametrize("value", [b"soon", b"-1", b"1.5", b"", b"\xd9\xa3"])
def test_retry_that_is_not_ascii_digits_is_ignored(value: bytes) -> None:
    assert decode(b"retry: " + value + b"\ndata: a\n\n") == [SSEEvent(data="a")]


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\nData: nope\ndata: yes\n\n") == [SSEEvent(data="yes")]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert decode(b"\n\n\r\n\r\r\n\n") == []


def test_blank_lines_between_events_do_not_produce_empty_events() -> None:
    assert decode(b"\n\ndata: a\n\n\n\n\ndata: b\n\n\n") == [SSEEvent(data="a"), SSEEvent(data="b")]


# -- close() -------------------------------------------------------------------------------------


def test_close_dispatches_an_event_whose_last_line_is_unterminated() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"data: tail") == []
    assert decoder.close() == [SSEEvent(data="tail")]


def test_close_dispatches_an_event_not_ended_by_a_blank_line() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"data: one\ndata: two\n") == []
    assert decoder.close() == [SSEEvent(data="one\ntwo")]


def test_close_after_complete_events_dispatches_nothing() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"data: a\n\n") == [SSEEvent(data="a")]
    assert decoder.close() == []


def test_close_ignores_an_unterminated_comment() -> None:
    decoder = SSEDecoder()
    decoder.feed(b": half a comm")

    assert decoder.close() == []


def test_has_partial_event_tracks_buffered_bytes() -> None:
    decoder = SSEDecoder()
    assert not decoder.has_partial_event

    decoder.feed(b"da")
    assert decoder.has_partial_event

    decoder.feed(b"ta: x\n")
    assert decoder.has_partial_event

    decoder.feed(b"\n")
    assert not decoder.has_partial_event


def test_empty_chunks_change_nothing() -> None:
    assert decode_chunks([b"", b"data: a", b"", b"\r", b"", b"\n\n", b""]) == [SSEEvent(data="a")]


# -- fragmentation -------------------------------------------------------------------------------


def test_fixture_in_one_chunk() -> None:
    assert decode(FIXTURE) == FIXTURE_EVENTS


def test_split_at_every_byte_boundary_gives_the_same_events() -> None:
    for point in range(len(FIXTURE) + 1):
        assert decode_chunks(split_at(FIXTURE, [point])) == FIXTURE_EVENTS, f"split at {point}"


def test_split_at_every_pair_of_boundaries_gives_the_same_events() -> None:
    for first in range(len(FIXTURE) + 1):
        for second in range(first, len(FIXTURE) + 1):
            chunks = split_at(FIXTURE, [first, second])
            assert decode_chunks(chunks) == FIXTURE_EVENTS, f"split at {first} and {second}"


def test_one_byte_at_a_time_gives_the_same_events() -> None:
    assert decode_chunks(FIXTURE[i : i + 1] for i in range(len(FIXTURE))) == FIXTURE_EVENTS


def test_events_come_out_as_soon_as_their_blank_line_arrives() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(data="a")]
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"\r") == [SSEEvent(data="b")]


# -- errors --------------------------------------------------------------------------------------


def test_invalid_utf8_in_data_is_a_protocol_error() -> None:
    with pytest.raises(trio_llm.ProtocolError, match="UTF-8"):
        decode(b"data: caf\xe9\n\n")


def test_invalid_utf8_in_an_event_name_is_a_protocol_error() -> None:
    with pytest.raises(trio_llm.ProtocolError, match="UTF-8"):
        decode(b"event: \xff\ndata: x\n\n")


def test_utf8_truncated_at_close_is_a_protocol_error() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: \xd0")

    with pytest.raises(trio_llm.ProtocolError, match="UTF-8"):
        decoder.close()


def test_oversized_event_in_one_chunk_is_a_protocol_error() -> None:
    with pytest.raises(trio_llm.ProtocolError, match="exceeds 64 bytes"):
        decode(b"data: " + b"x" * 100 + b"\n\n", max_event_size=64)


def test_oversized_event_made_of_several_data_lines_is_a_protocol_error() -> None:
    with pytest.raises(trio_llm.ProtocolError, match="exceeds 64 bytes"):
        decode(b"data: " + b"x" * 40 + b"\ndata: " + b"y" * 40 + b"\n\n", max_event_size=64)


def test_oversized_line_arriving_in_pieces_is_refused_before_it_ends() -> None:
    decoder = SSEDecoder(max_event_size=64)
    decoder.feed(b"data: ")
    buffered = 0

    def feed_piece() -> None:
        nonlocal buffered
        decoder.feed(b"x" * 10)  # never a line end: only the buffered size can stop it
        buffered += 10

    with pytest.raises(trio_llm.ProtocolError, match="exceeds 64 bytes"):
        for _ in range(100):
            feed_piece()
    assert buffered < 2 * 64


def split_points_refused(raw: bytes, max_event_size: int, expected: list[SSEEvent]) -> list[int]:
    """The single split points at which decoding ``raw`` raises; elsewhere it must give ``expected``."""
    refused: list[int] = []
    for point in range(len(raw) + 1):
        try:
            events = decode_chunks(split_at(raw, [point]), max_event_size=max_event_size)
        except trio_llm.ProtocolError:
            refused.append(point)
        else:
            assert events == expected, f"split at {point}"
    return refused


def test_an_event_of_exactly_max_event_size_is_accepted() -> None:
    limit = 32
    raw = b"data: " + b"x" * limit + b"\n\n"

    assert decode(raw, max_event_size=limit) == [SSEEvent(data="x" * limit)]


def test_an_event_of_exactly_max_event_size_is_accepted_however_it_is_split() -> None:
    limit = 32
    raw = b"data: " + b"x" * limit + b"\n\n"

    assert split_points_refused(raw, limit, [SSEEvent(data="x" * limit)]) == []


def test_an_event_one_byte_over_max_event_size_is_refused_however_it_is_split() -> None:
    limit = 32
    raw = b"data: " + b"x" * (limit + 1) + b"\n\n"

    assert split_points_refused(raw, limit, []) == list(range(len(raw) + 1))


def test_the_size_limit_verdict_does_not_depend_on_chunking() -> None:
    # Comfortably under the limit: 8 bytes of data, a limit of 10, accepted in one chunk.
    raw = b"data: 01234567\n\n"
    expected = [SSEEvent(data="01234567")]
    assert decode(raw, max_event_size=10) == expected

    assert split_points_refused(raw, 10, expected) == []


# -- linear work ---------------------------------------------------------------------------------


def test_a_long_line_fed_in_pieces_is_buffered_as_pieces_and_joined_once() -> None:
    piece = b"x" * 1024
    count = 4 * 1024  # 4 MiB in all
    decoder = SSEDecoder()

    assert decoder.feed(b"data: ") == []
    for fed in range(1, count + 1):
        assert decoder.feed(piece) == []
        # Each piece is appended as it is, never concatenated onto a growing buffer
        # (which would copy O(n) bytes per feed, O(n^2) in all).
        assert len(decoder._pieces) == fed + 1
    assert all(len(p) == 1024 for p in decoder._pieces[1:])

    (event,) = decoder.feed(b"\n\n")
    assert len(event.data) == count * 1024
    assert decoder._pieces == []
    assert decoder.close() == []


def test_a_200_kb_event_fed_one_byte_at_a_time_decodes() -> None:
    payload = bytes(b"abcdefghij"[i % 10] for i in range(200_000))
    raw = b"data: " + payload + b"\n\n"
    decoder = SSEDecoder()
    events: list[SSEEvent] = []

    for i in range(len(raw)):
        events += decoder.feed(raw[i : i + 1])

    assert events == [SSEEvent(data=payload.decode())]


# -- properties ----------------------------------------------------------------------------------

_line_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=20)
_name_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\x00"), min_size=1, max_size=10)

_events = st.lists(
    st.fixed_dictionaries(
        {
            "lines": st.lists(_line_text, min_size=1, max_size=4),
            "event": st.none() | _name_text,
            "id": st.none() | _name_text,
            "comment": st.booleans(),
        }
    ),
    max_size=6,
)


def _expected_events(specs: list[dict[str, Any]]) -> list[SSEEvent]:
    expected: list[SSEEvent] = []
    last_id: str | None = None
    for spec in specs:
        last_id = spec["id"] if spec["id"] is not None else last_id
        expected.append(SSEEvent(data="\n".join(spec["lines"]), event=spec["event"] or "message", id=last_id))
    return expected


@settings(max_examples=300, deadline=None)
@given(specs=_events, data=st.data())
def test_encoded_events_decode_to_themselves_however_chunked(specs: list[dict[str, Any]], data: st.DataObject) -> None:
    eol = st.sampled_from(["\n", "\r", "\r\n"])
    lines: list[str] = []
    for spec in specs:
        if spec["comment"]:
            lines.append(": a comment")
        if spec["event"] is not None:
            lines.append(f"event: {spec['event']}")
        if spec["id"] is not None:
            lines.append(f"id: {spec['id']}")
        lines += [f"data: {line}" for line in spec["lines"]]
        lines.append("")
    encoded: list[str] = []
    for line in lines:
        encoded.append(line)
        # A "\r" ending followed at once by "\n" would be one "\r\n" ending, not two.
        previous_was_cr = len(encoded) > 1 and encoded[-2].endswith("\r")
        encoded.append(data.draw(st.sampled_from(["\r", "\r\n"]) if previous_was_cr and not line else eol))
    raw = "".join(encoded).encode()
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))

    assert decode_chunks(split_at(raw, points)) == _expected_events(specs)


_sse_ish = st.lists(
    st.sampled_from(
        [
            *[b"data:", b"data: ", b"event:", b"id:", b"retry:", b":", b" ", b"\n", b"\r", b"\r\n", b"x", b"42"],
            *[b"\x00", b"\xff", b"\xc3", b"\xa9", b"\xe2\x9c", b"\x93", "é".encode()],
        ]
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(max_size=200) | _sse_ish,
    max_event_size=st.sampled_from([4, 16, DEFAULT_MAX_EVENT_SIZE]),
    data=st.data(),
)
def test_arbitrary_bytes_raise_nothing_but_protocol_error(raw: bytes, max_event_size: int, data: st.DataObject) -> None:
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=6))
    decoder = SSEDecoder(max_event_size)
    try:
        for chunk in split_at(raw, points):
            for event in decoder.feed(chunk):
                assert isinstance(event.data, str)
        decoder.close()
    except trio_llm.ProtocolError:
        pass  # The one error malformed input may raise; anything else fails the test.


def test_an_event_with_no_data_lines_is_not_dispatched() -> None:
    # WHATWG: a blank line with an empty data buffer dispatches nothing, and forgets the type.
    decoder = SSEDecoder()
    assert decoder.feed(b"event: ping\n\n") == []
    assert decoder.feed(b"data: x\n\n") == [SSEEvent(data="x")]
    assert decoder.feed(b"event: ping\ndata:\n\n") == [SSEEvent(data="", event="ping")]


def _outcome(decoder: SSEDecoder, chunks: list[bytes], *, data_only: bool) -> tuple[list[str], str | None]:
    """The data of every event, and the error that ended the input (if one did)."""
    out: list[str] = []
    try:
        for chunk in chunks:
            out += decoder.feed_data(chunk) if data_only else [event.data for event in decoder.feed(chunk)]
        out += [event.data for event in decoder.close()]
    except trio_llm.ProtocolError as error:
        return out, str(error)
    return out, None


@settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(max_size=200) | _sse_ish,
    max_event_size=st.sampled_from([4, 16, DEFAULT_MAX_EVENT_SIZE]),
    data=st.data(),
)
def test_feed_data_gives_the_data_of_what_feed_gives(raw: bytes, max_event_size: int, data: st.DataObject) -> None:
    # feed_data is the hot path of every stream: the same events and the same errors as feed.
    chunks = split_at(raw, data.draw(st.lists(st.integers(0, len(raw)), max_size=6)))
    events = _outcome(SSEDecoder(max_event_size), chunks, data_only=False)
    assert _outcome(SSEDecoder(max_event_size), chunks, data_only=True) == events


def test_feed_data_of_the_fixture_split_at_every_byte() -> None:
    expected = [event.data for event in FIXTURE_EVENTS]
    for point in range(len(FIXTURE) + 1):
        decoder = SSEDecoder()
        assert decoder.feed_data(FIXTURE[:point]) + decoder.feed_data(FIXTURE[point:]) == expected
