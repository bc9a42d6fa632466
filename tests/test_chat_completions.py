"""The shared chat-completions core: request building and decoding, at the byte level."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import trio_llm
from trio_llm import Finish, FinishReason, TextDelta, ToolCall, Usage
from trio_llm._chat_completions import ChatCompletionsInterpreter, openai_messages, openai_tools
from trio_llm._decoding import BodyDecoder, SSEStreamDecoder

GIGACHAT_REASONS = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "function_call": FinishReason.TOOL_CALLS,
    "blacklist": FinishReason.CONTENT_FILTER,
    "error": FinishReason.ERROR,
}


def sse(*payloads: Any) -> bytes:
    return b"".join(
        b"data: " + (p.encode() if isinstance(p, str) else json.dumps(p).encode()) + b"\n\n" for p in payloads
    )


def delta(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = dict(extra)
    if content is not None:
        d["content"] = content
    return {"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


TOOL_STREAM = sse(
    delta("Let me check.", role="assistant"),
    delta(tool_calls=[{"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"ci'}}]),
    delta(tool_calls=[{"index": 1, "id": "call_b", "type": "function", "function": {"name": "time", "arguments": ""}}]),
    delta(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]),
    delta(tool_calls=[{"index": 1, "function": {"arguments": "{}"}}]),
    delta(finish="tool_calls"),
    {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}},
    "[DONE]",
)  # fmt: skip
TOOL_EVENTS = [
    TextDelta("Let me check."),
    ToolCall("call_a", "weather", {"city": "Oslo"}),
    ToolCall("call_b", "time", {}),
    Usage(9, 4, 13),
    Finish(FinishReason.TOOL_CALLS, "tool_calls"),
]


def decode(data: bytes, *, split: int | None = None, **options: Any) -> list[trio_llm.Event]:
    decoder = SSEStreamDecoder(ChatCompletionsInterpreter("openai", streaming=True, **options))
    step = split or len(data) or 1
    events: list[trio_llm.Event] = []
    for start in range(0, len(data), step):
        events += decoder.feed(data[start : start + step])
    return events + decoder.close()


def test_tool_call_deltas_are_assembled_across_chunks() -> None:
    assert decode(TOOL_STREAM) == TOOL_EVENTS


@pytest.mark.parametrize("split", [1, 2, 3, 7, 64])
def test_assembly_does_not_depend_on_how_the_bytes_were_split(split: int) -> None:
    assert decode(TOOL_STREAM, split=split) == TOOL_EVENTS


def test_usage_then_finish_come_at_done_even_when_usage_arrives_after_the_finish_chunk() -> None:
    events = decode(sse(delta("Hi"), delta(finish="stop"), {"choices": [], "usage": {"total_tokens": 3}}, "[DONE]"))
    assert events == [TextDelta("Hi"), Usage(None, None, 3), Finish(FinishReason.STOP, "stop")]


def test_a_stream_without_done_is_truncated() -> None:
    with pytest.raises(trio_llm.StreamTruncatedError, match=r"\[DONE\]"):
        decode(sse(delta("Hi"), delta(finish="stop")))


def test_stopping_at_the_first_finish_reason_would_lose_usage() -> None:
    # The seeds stopped at the first chunk with a finish_reason key and dropped the usage.
    events = decode(sse(delta("a", finish=None), delta("", finish="stop"), {"choices": [], "usage": {"total_tokens": 1}}, "[DONE]"))  # fmt: skip
    assert any(isinstance(e, Usage) for e in events)


def test_gigachat_function_call_is_one_tool_call() -> None:
    payload = {
        "choices": [
            {
                "index": 0,
                "delta": {"content": "", "role": "assistant", "function_call": {"name": "weather", "arguments": {"city": "Москва"}}, "functions_state_id": "st-1"},
                "finish_reason": "function_call",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "precached_prompt_tokens": 3},
    }  # fmt: skip
    events = decode(sse(payload, "[DONE]"), finish_reasons=GIGACHAT_REASONS)
    assert events == [
        ToolCall("st-1", "weather", {"city": "Москва"}),
        Usage(5, 2, 7, cached_tokens=3),
        Finish(FinishReason.TOOL_CALLS, "function_call"),
    ]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("stop", FinishReason.STOP), ("length", FinishReason.LENGTH), ("blacklist", FinishReason.CONTENT_FILTER),
     ("error", FinishReason.ERROR), ("something_new", FinishReason.OTHER)],
)  # fmt: skip
def test_dialect_finish_reasons(raw: str, reason: FinishReason) -> None:
    events = decode(sse(delta("x", finish=raw), "[DONE]"), finish_reasons=GIGACHAT_REASONS)
    assert events[-1] == Finish(reason, raw)


def test_error_object_inside_the_stream_is_typed() -> None:
    with pytest.raises(trio_llm.RateLimitError, match="slow down"):
        decode(sse({"error": {"message": "slow down", "type": "rate_limit", "code": 429}}))


def test_gigachat_status_object_inside_the_stream_is_typed() -> None:
    # GigaChat's errors are {"status", "message"}, also when they come as an event of a 200 stream.
    with pytest.raises(trio_llm.ServerError, match="503 overloaded"):
        decode(sse(delta("a"), {"status": 503, "message": "overloaded"}), finish_reasons=GIGACHAT_REASONS)


@pytest.mark.parametrize(
    "bad",
    [
        delta(tool_calls=[{"index": 0, "function": {"arguments": "{not json"}}]),
        delta(tool_calls=[{"index": 0, "id": "x", "function": {"name": "f", "arguments": "[1, 2]"}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": "{}"}}]),  # no name
        {"choices": [{"index": 0, "delta": {"content": 5}}]},
        {"choices": "nope"},
    ],
)
def test_malformed_chunks_are_protocol_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(trio_llm.ProtocolError):
        decode(sse(bad, delta(finish="stop"), "[DONE]"))


def test_data_after_done_is_a_protocol_error() -> None:
    with pytest.raises(trio_llm.ProtocolError, match="after"):
        decode(sse(delta("x", finish="stop"), "[DONE]", delta("late")))


def test_whole_completion_body_gives_the_same_events() -> None:
    body = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }  # fmt: skip
    decoder = BodyDecoder(ChatCompletionsInterpreter("openai", streaming=False))
    decoder.feed(json.dumps(body).encode())
    assert decoder.close() == [
        TextDelta("Hi!"),
        ToolCall("c1", "f", {"a": 1}),
        Usage(1, 2, 3),
        Finish(FinishReason.TOOL_CALLS, "tool_calls"),
    ]


def test_legacy_text_choices_are_read() -> None:
    events = decode(sse({"choices": [{"index": 0, "text": "old style"}]}, delta(finish="stop"), "[DONE]"))
    assert events[0] == TextDelta("old style")


def test_requests_use_openai_shapes(png: bytes) -> None:
    call = ToolCall("call_1", "weather", {"city": "Oslo"})
    messages = [
        trio_llm.system("Be brief"),
        trio_llm.user("What is this?", png),
        trio_llm.assistant("", tool_calls=[call]),
        trio_llm.tool_result("call_1", {"t": 3}),
    ]
    out = openai_messages(messages)
    assert out[0] == {"role": "system", "content": "Be brief"}
    assert out[1]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    assert out[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}],
    }  # fmt: skip
    assert out[3] == {"role": "tool", "content": '{"t": 3}', "tool_call_id": "call_1"}
    schema = {"type": "object", "properties": {"q": {"type": "string", "enum": ["a"]}}, "required": ["q"]}
    assert openai_tools([trio_llm.Tool("search", "Find", schema)]) == [
        {"type": "function", "function": {"name": "search", "description": "Find", "parameters": schema}}
    ]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_fuzzed_bytes_raise_nothing_but_protocol_errors(data: bytes, split: int) -> None:
    try:
        decode(data, split=split)
    except trio_llm.ProtocolError:
        pass


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["choices", "delta", "content", "tool_calls", "index", "function", "arguments", "name", "usage",
         "finish_reason", "message", "error", "id", "text", "total_tokens", "function_call"]), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(JSON, max_size=4))
def test_fuzzed_json_raises_nothing_but_trio_llm_errors(payloads: list[Any]) -> None:
    try:
        decode(sse(*[json.dumps(p) for p in payloads], "[DONE]"))
    except trio_llm.TrioLLMError:
        pass


def _outcome_of(interpreter: ChatCompletionsInterpreter, payloads: list[Any]) -> list[Any]:
    """Every payload's events, then [DONE]'s (the finish and usage), or the error that ended it."""
    out: list[Any] = []
    for data in [*map(json.dumps, payloads), "[DONE]"]:
        try:
            out.append(interpreter.on_data(data))
        except trio_llm.TrioLLMError as error:
            out.append((type(error), str(error)))
            break
    return out


_TEXT = st.text(max_size=3)
_ROLE_OR_NOT = st.none() | st.just("assistant") | st.integers(0, 1)
_DELTAS = st.fixed_dictionaries(
    {},
    optional={"content": _TEXT | st.none() | st.integers(0, 1), "role": _ROLE_OR_NOT, "reasoning_content": _TEXT},
)
_CHUNKS = st.fixed_dictionaries(
    {
        "choices": st.lists(
            st.fixed_dictionaries(
                {"delta": _DELTAS | st.none() | st.just([])},
                optional={
                    "index": st.sampled_from([0, 1, "0", 0.0, False]),
                    "finish_reason": st.none() | st.just("stop"),
                    "message": st.none() | st.integers(0, 1) | st.just({"content": "m"}),
                    "text": st.none() | _TEXT | st.integers(0, 1),
                    "logprobs": st.none(),
                },
            ),
            max_size=2,
        )
    },
    optional={"usage": st.none() | st.just({"total_tokens": 3}), "error": st.just({"message": "x"}), "id": _TEXT},
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_CHUNKS, min_size=1, max_size=3) | st.lists(JSON, min_size=1, max_size=3))
@example([{"choices": [{"delta": {"content": 0}}]}])
@example([{"choices": [{"delta": {"content": "x", "role": 1}}]}])
@example([{"choices": [{"delta": {"content": "x", "reasoning_content": "y"}}]}])
@example([{"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}]}])
@example([{"choices": [{"delta": {"content": "x"}, "index": 1}]}])
@example([{"choices": [{"delta": {"content": "x"}}], "usage": {"total_tokens": 3}}])
@example([{"choices": [{"delta": {"content": "x"}}], "error": {"message": "x"}}])
@example([{"choices": [{"delta": {"content": "x"}, "message": 5}]}])
@example([{"choices": [{"delta": {"content": "x"}, "text": 5}]}])
@example([{"choices": [{"delta": {"content": "x"}, "index": 0.0}]}])
def test_the_plain_chunk_fast_path_agrees_with_the_converter(payloads: list[Any]) -> None:
    # Streamed text chunks skip cattrs when they are plainly text; the converter must have
    # made the same events of them, and failed on the same ones.
    fast = _outcome_of(ChatCompletionsInterpreter("gigachat", streaming=True), payloads)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("trio_llm._chat_completions._plain_delta", lambda obj: None)
        slow = _outcome_of(ChatCompletionsInterpreter("gigachat", streaming=True), payloads)
    assert fast == slow
