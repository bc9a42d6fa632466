"""OpenAICompatible against the emulator's OpenAI API, over real loopback sockets."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import trio
import trio.testing

import trio_llm
from trio_llm import Finish, FinishReason, TextDelta, ToolCall, Usage
from trio_llm.testing import Emulator, Fault

NO_RETRY = trio_llm.RetryPolicy(max_attempts=1)
WEATHER = trio_llm.Tool(
    "get_weather",
    "Current weather for a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
)
CLOCK = trio_llm.Tool("get_time", "The local time", {"type": "object", "properties": {"zone": {"type": "string"}}})


async def collect(stream: trio_llm.EventStream) -> list[trio_llm.Event]:
    async with stream as events:
        return [event async for event in events]


def sse(*payloads: object) -> str:
    return "".join(f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads)


# -- construction ------------------------------------------------------------------------------


def test_base_url_is_required_and_the_key_is_optional_and_hidden() -> None:
    llm = trio_llm.OpenAICompatible("http://localhost:11434/v1/", "sk-secret-value")
    assert llm.base_url == "http://localhost:11434/v1"
    assert "sk-secret-value" not in repr(llm)
    assert trio_llm.OpenAICompatible("http://localhost:8080/v1").api_key is None
    with pytest.raises(TypeError):
        trio_llm.OpenAICompatible()  # type: ignore[call-arg]


def test_the_key_is_never_taken_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A key meant for OpenAI must not travel to whatever base_url this instance was given.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    assert trio_llm.OpenAICompatible("http://localhost:8080/v1").api_key is None


def test_class_level_flags() -> None:
    cls = trio_llm.OpenAICompatible
    assert cls.name == "openai" and not cls.needs_auth
    assert cls.supports_stream and cls.supports_tools and cls.supports_vision
    assert cls.supports_system_message and cls.supports_message_history and not cls.supports_images_output
    assert cls.default_model == "gpt-4o-mini" and not cls.closed_model_list


# -- streaming and complete --------------------------------------------------------------------


async def test_stream_asks_for_usage_and_yields_text_usage_finish(emu: Emulator) -> None:
    events = await collect(emu.openai().stream("Tell me a story"))
    assert all(isinstance(e, TextDelta) for e in events[:-2])
    assert events[-2] == Usage(4, emu.words, 4 + emu.words)  # tokens are words here
    assert events[-1] == Finish(FinishReason.STOP, "stop")
    (request,) = emu.requests_for("openai", "chat")
    assert request.path == "/openai/v1/chat/completions"
    body = request.json()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "Tell me a story"}]
    assert request.headers["authorization"] == f"Bearer {emu.api_key}"


async def test_complete_is_not_streamed_and_gives_the_same_reply(emu: Emulator) -> None:
    llm = emu.openai()
    streamed = trio_llm.Reply.from_events(await collect(llm.stream("Same prompt")))
    reply = await llm.complete("Same prompt")
    body = emu.requests_for("openai", "chat")[1].json()
    assert "stream" not in body and "stream_options" not in body
    assert (reply.text, reply.usage, reply.finish) == (streamed.text, streamed.usage, streamed.finish)
    assert (reply.provider, reply.model) == ("openai", "gpt-4o-mini")


async def test_only_the_options_set_are_sent(emu: Emulator) -> None:
    await emu.openai().complete([trio_llm.system("Be brief"), "Hi"], temperature=0.2, top_p=0.9, stop="END")
    body = emu.requests_for("openai", "chat")[0].json()
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
    }


async def test_top_k_is_sent_when_asked_and_openai_refuses_it(emu: Emulator) -> None:
    with pytest.raises(trio_llm.BadRequestError, match=r"Unrecognized request argument supplied: top_k"):
        await emu.openai().complete("Hi", top_k=5)
    assert emu.requests_for("openai", "chat")[0].json()["top_k"] == 5


async def test_max_tokens_finishes_with_length(emu: Emulator) -> None:
    events = await collect(emu.openai().stream("Long story", max_tokens=6))
    assert len(trio_llm.Reply.from_events(events).text.split()) == 6
    assert events[-1] == Finish(FinishReason.LENGTH, "length")


async def test_images_go_as_data_uris(emu: Emulator, png: bytes) -> None:
    reply = await emu.openai().complete([trio_llm.user("What is this?", png)])
    assert reply.text.startswith(f"I see a image/png image of {len(png)} bytes.")
    part = emu.requests_for("openai", "chat")[0].json()["messages"][0]["content"][1]
    assert part["image_url"]["url"].startswith("data:image/png;base64,")


async def test_other_models_and_the_default_model(emu: Emulator) -> None:
    await emu.openai(default_model="gpt-4.1").complete("Hi")
    await emu.openai().complete("Hi", model="o3-mini")
    assert [r.json()["model"] for r in emu.requests_for("openai", "chat")] == ["gpt-4.1", "o3-mini"]


# -- tools -------------------------------------------------------------------------------------


async def test_tool_call_deltas_are_assembled_across_chunks(emu: Emulator) -> None:
    events = await collect(emu.openai().stream("Call get_weather and get_time for Oslo", tools=[WEATHER, CLOCK]))
    declared = emu.requests_for("openai", "chat")[0].json()["tools"]
    assert declared[0] == {
        "type": "function",
        "function": {"name": "get_weather", "description": WEATHER.description, "parameters": dict(WEATHER.parameters)},
    }
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", {"city": "Oslo", "unit": "celsius"}),
        ("get_time", {"zone": "Oslo"}),
    ]
    assert all(c.id.startswith("call_") for c in calls) and calls[0].id != calls[1].id
    assert events[-1] == Finish(FinishReason.TOOL_CALLS, "tool_calls")


async def test_the_wire_really_splits_the_arguments(emu: Emulator) -> None:
    # The emulator sends each call's arguments in two chunks; the client sees whole calls only.
    events = await collect(emu.openai().stream("Use get_weather for Rome", tools=[WEATHER]))
    assert next(e for e in events if isinstance(e, ToolCall)).arguments == {"city": "Rome", "unit": "celsius"}
    async with httpx.AsyncClient() as client:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Use get_weather for Rome"}],
                "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": dict(WEATHER.parameters)}}],
                "stream": True}  # fmt: skip
        response = await client.post(
            f"{emu.url_for('openai')}/chat/completions", json=body, headers={"authorization": f"Bearer {emu.api_key}"}
        )
    pieces = [
        chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for chunk in (json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {"))
        if chunk["choices"] and chunk["choices"][0]["delta"].get("tool_calls")
    ]
    assert len(pieces) == 2 and all(pieces)
    assert json.loads("".join(pieces)) == {"city": "Rome", "unit": "celsius"}


async def test_tool_round_trip(emu: Emulator) -> None:
    llm = emu.openai()
    question = trio_llm.user("Use get_weather for Paris")
    reply = await llm.complete([question], tools=[WEATHER])
    (call,) = reply.tool_calls
    answer = await llm.complete(
        [question, trio_llm.assistant("", tool_calls=reply.tool_calls), trio_llm.tool_result(call.id, {"temp": 21})],
        tools=[WEATHER],
    )
    assert answer.text == 'The tool get_weather answered {"temp": 21}.'
    messages = emu.requests_for("openai", "chat")[1].json()["messages"]
    assert messages[1]["tool_calls"][0]["id"] == call.id
    assert messages[2] == {"role": "tool", "content": '{"temp": 21}', "tool_call_id": call.id}


# -- models ------------------------------------------------------------------------------------


async def test_models_lists_the_ids_sorted_and_is_cached(emu: Emulator) -> None:
    llm = emu.openai()
    models = await llm.models()
    assert models == sorted(models) and "gpt-4o-mini" in models and "text-embedding-3-small" in models
    assert await llm.models() == models
    (request,) = emu.requests_for("openai", "models")
    assert request.path == "/openai/v1/models"
    assert request.headers["authorization"] == f"Bearer {emu.api_key}"


async def test_models_with_a_bad_key_is_an_authentication_error(emu: Emulator) -> None:
    with pytest.raises(trio_llm.AuthenticationError, match="invalid_api_key"):
        await emu.openai(api_key="wrong-key-123456").models()


async def test_a_model_list_without_data_is_a_protocol_error(emu: Emulator) -> None:
    emu.inject("openai", Fault(status=200, body={"models": []}), route="models")
    with pytest.raises(trio_llm.ProtocolError, match="'data'"):
        await emu.openai().models()


# -- auth and errors ---------------------------------------------------------------------------


async def test_no_key_means_no_authorization_header(emu: Emulator) -> None:
    llm = trio_llm.OpenAICompatible(emu.url_for("openai"))
    with pytest.raises(trio_llm.AuthenticationError, match="didn't provide an API key"):
        await llm.complete("Hi")
    assert "authorization" not in emu.requests_for("openai", "chat")[0].headers


async def test_a_wrong_key_is_an_authentication_error_and_never_echoed(emu: Emulator) -> None:
    wrong = "sk-wrong-but-secret-0123456789"
    with pytest.raises(trio_llm.AuthenticationError) as caught:
        await emu.openai(api_key=wrong).complete("Hi")
    assert caught.value.status_code == 401
    assert "[invalid_api_key]" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)


async def test_a_key_echoed_whole_by_a_server_is_scrubbed(emu: Emulator) -> None:
    emu.inject("openai", Fault(status=401, message=f"Bad key {emu.api_key}, really"))
    with pytest.raises(trio_llm.AuthenticationError) as caught:
        await emu.openai().complete("Hi")
    assert emu.api_key not in str(caught.value)
    assert "Bad key ***, really" in str(caught.value)


async def test_the_key_is_in_no_log_record(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    for name in ("trio_llm", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    llm = emu.openai()
    await llm.complete("Hi")
    await collect(llm.stream("Hi"))
    await llm.models()
    assert caplog.records, "DEBUG logging captured nothing: the test would prove nothing"
    assert emu.api_key not in caplog.text


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, trio_llm.BadRequestError),
        (401, trio_llm.AuthenticationError),
        (403, trio_llm.PermissionDeniedError),
        (404, trio_llm.NotFoundError),
        (422, trio_llm.BadRequestError),
        (429, trio_llm.RateLimitError),
        (500, trio_llm.ServerError),
        (503, trio_llm.ServerError),
        (409, trio_llm.APIStatusError),
    ],
)
async def test_error_bodies_map_to_the_typed_tree(emu: Emulator, status: int, error_class: type) -> None:
    emu.inject("openai", Fault(status=status, message="nope"), times=2)
    llm = emu.openai(retry=NO_RETRY)
    with pytest.raises(error_class) as caught:
        await llm.complete("Hi")
    error = caught.value
    assert type(error) is error_class
    assert (error.status_code, error.provider) == (status, "openai")
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert error.body["error"]["message"] == "nope"
    assert str(error).startswith(f"openai: {status} nope [")
    with pytest.raises(error_class):
        await collect(llm.stream("Hi"))


async def test_unknown_model_is_model_not_found(emu: Emulator) -> None:
    with pytest.raises(trio_llm.ModelNotFoundError, match=r"`gpt-9` does not exist.*\[model_not_found\]"):
        await emu.openai().complete("Hi", model="gpt-9")


async def test_a_gateways_404_about_a_model_is_model_not_found(emu: Emulator) -> None:
    body = {"error": {"message": 'model "llama9" not found, try pulling it first', "type": "api_error"}}
    emu.inject("openai", Fault(status=404, body=body))
    with pytest.raises(trio_llm.ModelNotFoundError, match=r"llama9.*\[api_error\]"):
        await emu.openai().complete("Hi")


async def test_a_non_json_error_body_still_maps_by_status(emu: Emulator) -> None:
    emu.inject("openai", Fault(status=502, body="<html><body>Bad gateway</body></html>"))
    with pytest.raises(trio_llm.ServerError, match="HTML error page"):
        await emu.openai(retry=NO_RETRY).complete("Hi")


async def test_error_object_inside_the_stream_comes_after_the_text_before_it(emu: Emulator) -> None:
    emu.inject("openai", Fault(error_after=2, error_status=429, message="slow down"))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.RateLimitError, match="slow down"):
        async with emu.openai().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert len(received) == 2 and all(isinstance(e, TextDelta) for e in received)


@pytest.mark.parametrize("mid_event", [False, True])
async def test_truncated_stream_raises_never_a_normal_stop(emu: Emulator, mid_event: bool) -> None:
    emu.inject("openai", Fault(truncate_after=3, truncate_mid_event=mid_event))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.StreamTruncatedError) as caught:
        async with emu.openai().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert len(received) == 3 and not any(isinstance(e, Finish) for e in received)
    assert caught.value.events_delivered == 3


async def test_a_stream_that_ends_cleanly_without_done_is_truncated(emu: Emulator) -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    emu.inject("openai", Fault(status=200, body=sse(chunk, last), content_type="text/event-stream"))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.StreamTruncatedError, match=r"before \[DONE\]"):
        async with emu.openai().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert received == [TextDelta("Hi")]


async def test_malformed_event_is_a_protocol_error(emu: Emulator) -> None:
    emu.inject("openai", Fault(malformed_after=1))
    with pytest.raises(trio_llm.ProtocolError, match="malformed JSON"):
        await collect(emu.openai().stream("Hi"))


async def test_an_error_body_with_status_200_is_typed(emu: Emulator) -> None:
    emu.inject("openai", Fault(status=200, body={"error": {"message": "upstream failed", "code": 502}}))
    with pytest.raises(trio_llm.ServerError, match="upstream failed"):
        await emu.openai(retry=NO_RETRY).complete("Hi")


async def test_gzip_encoded_stream_is_decoded(emu: Emulator) -> None:
    emu.inject("openai", Fault(gzip=True))
    plain = await emu.openai().complete("Zip me")
    assert trio_llm.Reply.from_events(await collect(emu.openai().stream("Zip me"))).text == plain.text


# -- retries, deadlines, cleanup ---------------------------------------------------------------


async def test_retries_before_the_first_event_then_succeeds(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject("openai", Fault(status=503), times=2)
    events = await collect(emu.openai().stream("Hi"))
    assert isinstance(events[-1], Finish)
    assert emu.count("openai", "chat") == 3


async def test_never_retries_after_an_event_reached_the_caller(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject("openai", Fault(reset_after=2))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.TransportError):
        async with emu.openai().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert len(received) == 2
    assert emu.count("openai", "chat") == 1


async def test_idle_timeout_mid_stream(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("openai", Fault(stall_after=2))
    with pytest.raises(trio_llm.IdleTimeout):
        await collect(emu.openai(timeouts=trio_llm.Timeouts(idle=3.0)).stream("Hi"))
    with trio.fail_after(5):
        await emu.wait_for_connections(0)


async def test_break_closes_the_connection(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    async with emu.openai() as llm:
        async with llm.stream("Hi") as events:
            async for _event in events:
                break
        with trio.fail_after(5):
            await emu.wait_for_connections(0)


async def test_cancellation_closes_the_connection(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("openai", Fault(stall_after=1))
    with trio.move_on_after(10) as scope:
        await collect(emu.openai(timeouts=trio_llm.Timeouts(idle=None)).stream("Hi"))
    assert scope.cancelled_caught
    with trio.fail_after(5):
        await emu.wait_for_connections(0)
