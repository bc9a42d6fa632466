"""Hypothesis against the decoders not fuzzed elsewhere: nothing but trio_llm's errors escapes.

Also the decoder a streamed request gets when its answer is not labelled as a stream.

Fuzzed elsewhere already: SSE framing (test_sse.py), Gemini's SSE stream (test_gemini_wire.py),
the OpenAI dialect of chat completions streamed (test_chat_completions.py), Dynaspark
(test_dynaspark.py) and AmigoChat's images (test_amigochat.py). Here: each provider's decoder
as its own ``_decoder()`` builds it, for the ones not covered there (GigaChat streamed and
whole, Gemini, OpenAI and AmigoChat whole or streamed), the GigaChat token reply, every
provider's error-body mapping, the ``Retry-After`` parser, the HTML-page error, and the
emulator's own unknown-fields rewriting (a fault injector that broke the JSON would prove
nothing).

Bytes and framing: only :class:`~trio_llm.ProtocolError`. Arbitrary JSON payloads: only
:class:`~trio_llm.TrioLLMError` subclasses (an ``error`` key is rightly an APIStatusError, a
blocked prompt a ContentBlockedError).
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import trio_llm
from trio_llm._config import parse_retry_after
from trio_llm._decoding import Decoder, SniffingDecoder
from trio_llm._http import html_reply_error
from trio_llm._provider import ChatRequest
from trio_llm.providers._gigachat import oauth_error, token_from_reply
from trio_llm.testing._emulator import with_unknown_fields

CREDENTIALS = "Y2xpZW50OnNlY3JldA=="  # client:secret

PROVIDERS: dict[str, Callable[[], trio_llm.Provider]] = {
    "gemini": lambda: trio_llm.Gemini(api_key="k"),
    "gigachat": lambda: trio_llm.GigaChat(credentials=CREDENTIALS),
    "openai": lambda: trio_llm.OpenAICompatible("http://127.0.0.1:9/v1"),
    "amigochat": trio_llm.AmigoChat,
    "dynaspark": trio_llm.Dynaspark,
}
#: ``(provider, streamed)``: the decoders no other test fuzzes.
GAPS = [("gigachat", True), ("gigachat", False), ("gemini", False), ("openai", False), ("amigochat", True)]

#: Keys the decoders look for, so that fuzzed objects reach past the first check.
KEYS = [
    "choices", "delta", "message", "content", "role", "tool_calls", "function_call", "functions_state_id", "index",
    "id", "function", "name", "arguments", "args", "finish_reason", "usage", "prompt_tokens", "completion_tokens",
    "total_tokens", "precached_prompt_tokens", "error", "status", "code", "statusCode", "text", "candidates",
    "finishReason", "parts", "thought", "usageMetadata", "promptTokenCount", "promptFeedback", "blockReason",
    "inlineData", "data", "mimeType", "functionCall", "details", "retryDelay", "@type", "access_token", "expires_at",
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(
        ["stop", "STOP", "function_call", "[DONE]", "22s", "aGk=", "type.googleapis.com/google.rpc.RetryInfo"]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=16,
)


def decoder_for(name: str, streamed: bool) -> Decoder:
    provider = PROVIDERS[name]()
    request = ChatRequest(messages=(trio_llm.user("hi"),), model=provider.resolve_model(None))
    return provider._decoder(request, streaming=streamed)


def feed_all(decoder: Decoder, data: bytes, cuts: list[int]) -> list[trio_llm.Event]:
    events: list[trio_llm.Event] = []
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts})
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        events += decoder.feed(data[start:end])
    return events + decoder.close()


@pytest.mark.parametrize(("name", "streamed"), GAPS, ids=[f"{n}-{'stream' if s else 'whole'}" for n, s in GAPS])
@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=4))
def test_arbitrary_bytes_raise_nothing_but_protocol_errors(
    name: str, streamed: bool, raw: bytes, cuts: list[int]
) -> None:
    try:
        feed_all(decoder_for(name, streamed), raw, cuts)
    except trio_llm.ProtocolError:
        pass


@pytest.mark.parametrize(("name", "streamed"), GAPS, ids=[f"{n}-{'stream' if s else 'whole'}" for n, s in GAPS])
@settings(max_examples=150, deadline=None)
@given(
    payloads=st.lists(JSON, min_size=1, max_size=3), done=st.booleans(), cuts=st.lists(st.integers(0, 400), max_size=3)
)
def test_arbitrary_json_payloads_raise_nothing_but_trio_llm_errors(
    name: str, streamed: bool, payloads: list[Any], done: bool, cuts: list[int]
) -> None:
    if streamed:
        frames = [json.dumps(p) for p in payloads] + (["[DONE]"] if done else [])
        raw = b"".join(b"data: " + frame.encode() + b"\n\n" for frame in frames)
    else:
        raw = json.dumps(payloads[0]).encode()
    try:
        events = feed_all(decoder_for(name, streamed), raw, cuts)
    except trio_llm.TrioLLMError:
        return
    assert all(isinstance(event, trio_llm.Event) for event in events)
    assert isinstance(events[-1], trio_llm.Finish)  # a reply that did not fail is a whole reply


@pytest.mark.parametrize("name", ["gemini", "gigachat", "openai", "amigochat"])
@settings(max_examples=100, deadline=None)
@given(
    raw=st.binary(max_size=200) | JSON.map(lambda obj: json.dumps(obj).encode()),
    cuts=st.lists(st.integers(0, 200), max_size=3),
)
def test_a_stream_without_its_label_raises_nothing_but_trio_llm_errors(name: str, raw: bytes, cuts: list[int]) -> None:
    # What a streamed request gets when the answer is not labelled text/event-stream.
    decoder = SniffingDecoder(decoder_for(name, streamed=True), decoder_for(name, streamed=False))
    try:
        feed_all(decoder, raw, cuts)
    except trio_llm.ProtocolError:
        pass
    except trio_llm.TrioLLMError:
        assert raw.lstrip()[:1] in (b"{", b"["), "only a JSON reply can be an error object"


@settings(max_examples=300, deadline=None)
@given(
    payload=JSON
    | st.fixed_dictionaries(
        {"access_token": st.text(min_size=1, max_size=8) | SCALARS, "expires_at": st.floats() | st.integers() | SCALARS}
    )
)
@example(payload={"access_token": "t", "expires_at": math.nan})
@example(payload={"access_token": "t", "expires_at": -math.inf})
def test_the_gigachat_token_reply_is_a_token_or_a_protocol_error(payload: Any) -> None:
    try:
        token = token_from_reply(payload, now=100.0, wall_now=1_700_000_000.0)
    except trio_llm.ProtocolError:
        return
    assert token.value and not math.isnan(token.expires_at)
    assert token.refresh_at <= token.expires_at


STATUS = st.integers(300, 599)
BODY = st.binary(max_size=200) | JSON.map(lambda obj: json.dumps(obj).encode())
HEADERS = st.dictionaries(
    st.sampled_from(["content-type", "retry-after", "retry-after-ms", "x-request-id"]), st.text(max_size=30), max_size=4
)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@settings(max_examples=150, deadline=None)
@given(status=STATUS, headers=HEADERS, body=BODY)
def test_any_error_body_maps_to_an_api_status_error(
    name: str, status: int, headers: dict[str, str], body: bytes
) -> None:
    error = PROVIDERS[name]()._status_error(status, headers, body)
    assert isinstance(error, trio_llm.APIStatusError)
    assert error.status_code == status
    assert str(error).startswith(f"{name}: {status} ")
    assert error.retry_after is None or error.retry_after >= 0


@settings(max_examples=150, deadline=None)
@given(status=STATUS, headers=HEADERS, body=BODY)
def test_any_oauth_error_body_maps_to_an_api_status_error(status: int, headers: dict[str, str], body: bytes) -> None:
    error = oauth_error(status, headers, body, scope="GIGACHAT_API_PERS")
    assert isinstance(error, trio_llm.APIStatusError)
    assert error.status_code == status


HTTP_DATES = st.datetimes(
    min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30), timezones=st.just(datetime.UTC)
).map(lambda when: email.utils.format_datetime(when, usegmt=True))


@settings(max_examples=300, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["retry-after", "retry-after-ms"]),
        st.text(max_size=40)
        | HTTP_DATES
        | st.from_regex(r"[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} \d{1,5} \d\d:\d\d:\d\d [A-Z+\-0-9]{1,5}", fullmatch=True),
    )
)
def test_retry_after_is_a_non_negative_number_or_nothing(headers: dict[str, str]) -> None:
    seconds = parse_retry_after(headers, now=1_700_000_000.0)
    assert seconds is None or seconds >= 0  # never raises, never negative, never NaN


@settings(max_examples=150, deadline=None)
@given(status=st.integers(200, 299), body=st.binary(max_size=300))
def test_any_html_page_is_named_in_a_protocol_error(status: int, body: bytes) -> None:
    error = html_reply_error(status, b"<html><title>" + body + b"</title></html>", provider="gemini")
    assert isinstance(error, trio_llm.ProtocolError)
    assert str(error).startswith(f"gemini: HTTP {status} with an HTML page")


def _without_unknown(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_unknown(v) for k, v in obj.items() if k != "x_trio_llm_unknown"}
    if isinstance(obj, list):
        return [_without_unknown(item) for item in obj]
    return obj


@settings(max_examples=300, deadline=None)
@given(obj=JSON, indent=st.sampled_from([None, 0, 2]))
def test_the_emulators_unknown_fields_keep_the_json_valid_and_its_values_unchanged(
    obj: Any, indent: int | None
) -> None:
    data = json.dumps(obj, indent=indent).encode()
    rewritten = json.loads(with_unknown_fields(data))
    assert json.dumps(_without_unknown(rewritten)) == json.dumps(json.loads(data))  # (NaN != NaN)
    assert _has_object(rewritten) == ("x_trio_llm_unknown" in json.dumps(rewritten))


def _has_object(obj: Any) -> bool:
    if isinstance(obj, dict):
        return True
    return isinstance(obj, list) and any(_has_object(item) for item in obj)
