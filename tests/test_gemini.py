"""Gemini against the emulator, over real loopback sockets: requests, replies and errors."""

from __future__ import annotations

import json
import socket

import pytest
import trio

import trio_llm
from trio_llm import Finish, FinishReason, ImageOutput, ReasoningDelta, TextDelta, ToolCall, Usage
from trio_llm.testing import Emulator, Fault

WEATHER = trio_llm.Tool(
    "get_weather",
    "Current weather for a city",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city"],
    },
)


async def collect(stream: trio_llm.EventStream) -> list[trio_llm.Event]:
    async with stream as events:
        return [event async for event in events]


# -- streaming and complete --------------------------------------------------------------------


async def test_stream_yields_text_then_one_usage_then_one_finish(emu: Emulator) -> None:
    events = await collect(emu.gemini().stream("Tell me a story", max_tokens=200))
    assert len(events) > 3
    assert all(isinstance(e, TextDelta) for e in events[:-2])
    assert isinstance(events[-2], Usage)
    assert events[-1] == Finish(FinishReason.STOP, "STOP")
    usage = events[-2]
    assert usage.completion_tokens == emu.words
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens  # type: ignore[operator]


async def test_stream_uses_sse_endpoint_and_complete_uses_generate_content(emu: Emulator) -> None:
    gemini = emu.gemini()
    await collect(gemini.stream("Hi"))
    await gemini.complete("Hi")
    stream_request, complete_request = emu.requests_for("gemini", "chat")
    assert stream_request.path.endswith("/models/gemini-2.5-flash:streamGenerateContent")
    assert stream_request.query == {"alt": ["sse"]}
    assert complete_request.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert complete_request.query == {}


async def test_complete_gives_the_same_text_as_the_stream(emu: Emulator) -> None:
    gemini = emu.gemini()
    streamed = trio_llm.Reply.from_events(await collect(gemini.stream("Same prompt")))
    reply = await gemini.complete("Same prompt")
    assert reply.text == streamed.text
    assert reply.usage == streamed.usage
    assert reply.finish == Finish(FinishReason.STOP, "STOP")
    assert (reply.provider, reply.model) == ("gemini", "gemini-2.5-flash")


async def test_stream_collect_aggregates_into_a_reply(emu: Emulator) -> None:
    async with emu.gemini().stream("Hi") as events:
        first = await events.__anext__()
        reply = await events.collect()
    assert isinstance(first, TextDelta)
    assert not reply.text.startswith(first.text)  # collect() gathers what was not yet read
    assert reply.finish is not None
    assert events.events_delivered > 1


async def test_key_goes_in_a_header_never_in_the_url(emu: Emulator) -> None:
    await emu.gemini().complete("Hi")
    (request,) = emu.requests_for("gemini", "chat")
    assert request.headers["x-goog-api-key"] == emu.api_key
    assert emu.api_key not in request.url_path_and_query
    assert "authorization" not in request.headers


async def test_use_auth_header_sends_a_bearer_token(emu: Emulator) -> None:
    await emu.gemini(use_auth_header=True).complete("Hi")
    (request,) = emu.requests_for("gemini", "chat")
    assert request.headers["authorization"] == f"Bearer {emu.api_key}"
    assert "x-goog-api-key" not in request.headers


async def test_key_is_read_from_the_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", emu.api_key)
    assert (await trio_llm.Gemini(base_url=emu.url_for("gemini")).complete("Hi")).text
    monkeypatch.setenv("GEMINI_API_KEY", "from-gemini-env")
    assert trio_llm.Gemini().api_key == "from-gemini-env"


async def test_missing_key_is_refused_before_any_io(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    gemini = trio_llm.Gemini(base_url=emu.url_for("gemini"))
    with pytest.raises(trio_llm.MissingAuthError, match="GEMINI_API_KEY"):
        gemini.stream("Hi")
    with pytest.raises(trio_llm.MissingAuthError):
        await gemini.complete("Hi")
    assert emu.requests == 0


async def test_request_body_maps_roles_system_and_only_the_options_set(emu: Emulator) -> None:
    messages = [
        trio_llm.system("Be brief."),
        trio_llm.user("Hi"),
        trio_llm.assistant("Hello!"),
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "How are you?"},
    ]
    await emu.gemini().complete(messages, temperature=0.3, stop=["END"])
    body = emu.requests_for("gemini", "chat")[0].json()
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief.\nAnswer in English."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"] == {"temperature": 0.3, "stopSequences": ["END"]}
    assert "tools" not in body


async def test_max_tokens_cuts_the_reply_and_finishes_with_length(emu: Emulator) -> None:
    reply = await emu.gemini().complete("Long story please", max_tokens=5)
    assert len(reply.text.split()) == 5
    assert reply.finish == Finish(FinishReason.LENGTH, "MAX_TOKENS")
    assert emu.requests_for("gemini", "chat")[0].json()["generationConfig"] == {"maxOutputTokens": 5}


async def test_model_aliases_and_prefixes_resolve_before_the_request(emu: Emulator) -> None:
    await emu.gemini().complete("Hi", model="models/gemini-2.5-pro")
    assert emu.requests_for("gemini", "chat")[0].path.endswith("/models/gemini-2.5-pro:generateContent")


async def test_tool_call_round_trip(emu: Emulator) -> None:
    gemini = emu.gemini()
    question = trio_llm.user("Use get_weather for Paris")
    reply = await gemini.complete([question], tools=[WEATHER])
    (call,) = reply.tool_calls
    assert call.name == "get_weather"
    assert call.arguments == {"city": "Paris", "unit": "celsius", "days": 1}
    assert reply.finish == Finish(FinishReason.TOOL_CALLS, "STOP")
    declaration = emu.requests_for("gemini", "chat")[0].json()["tools"][0]["functionDeclarations"][0]
    assert declaration["parameters"] == dict(WEATHER.parameters)  # the whole schema, enum and required too

    answer = await gemini.complete(
        [question, trio_llm.assistant("", tool_calls=reply.tool_calls), trio_llm.tool_result(call.id, {"temp": 21})],
        tools=[WEATHER],
    )
    assert answer.text == 'The tool get_weather answered {"temp": 21}.'
    contents = emu.requests_for("gemini", "chat")[1].json()["contents"]
    assert contents[1]["parts"][0]["functionCall"] == {"name": "get_weather", "args": call.arguments}
    assert contents[1]["parts"][0]["thoughtSignature"] == call.thought_signature
    assert contents[2]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]


async def test_streamed_tool_call_is_one_complete_event(emu: Emulator) -> None:
    events = await collect(emu.gemini().stream("Call get_weather for Oslo", tools=[WEATHER]))
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [c.arguments["city"] for c in calls] == ["Oslo"]
    assert events[-1] == Finish(FinishReason.TOOL_CALLS, "STOP")


async def test_images_go_as_inline_data(emu: Emulator, png: bytes) -> None:
    reply = await emu.gemini().complete([trio_llm.user("What is this?", png)])
    assert reply.text.startswith(f"I see a image/png image of {len(png)} bytes.")
    parts = emu.requests_for("gemini", "chat")[0].json()["contents"][0]["parts"]
    assert parts[1]["inlineData"]["mimeType"] == "image/png"


async def test_media_argument_attaches_to_the_last_user_message(emu: Emulator, png: bytes) -> None:
    reply = await emu.gemini().complete("Describe", media=[(png, "pixel.png")])
    assert reply.text.startswith("I see a image/png image")


async def test_unknown_media_is_a_clear_error_before_io(emu: Emulator) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"media\[0\]"):
        await emu.gemini().complete("Describe", media=[(b"not an image", None)])
    assert emu.requests == 0


async def test_image_output_and_reasoning(emu: Emulator, png: bytes) -> None:
    reply = await emu.gemini().complete("Draw a pixel", model="gemini-2.5-flash-image")
    (image,) = reply.images
    assert image == ImageOutput(data=png, mime_type="image/png")
    events = await collect(emu.gemini().stream("Think first", model="gemini-2.0-flash-thinking-exp"))
    assert isinstance(events[0], ReasoningDelta)
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.reasoning_tokens == len(events[0].text.split())


# -- models ------------------------------------------------------------------------------------


async def test_models_follows_every_page_and_keeps_generate_content_models(emu: Emulator) -> None:
    models = await emu.gemini().models()
    assert models == sorted(models)
    assert "gemini-2.5-flash" in models
    assert "text-embedding-004" not in models  # embedContent only
    assert not any(m.startswith("models/") for m in models)
    assert emu.count("gemini", "models") == 3  # 10 models, 4 per page
    for request in emu.requests_for("gemini", "models"):
        assert request.headers["x-goog-api-key"] == emu.api_key


async def test_models_are_cached_on_the_instance(emu: Emulator) -> None:
    gemini = emu.gemini()
    first = await gemini.models()
    assert await gemini.models() == first
    assert emu.count("gemini", "models") == 3
    await emu.gemini().models()  # another instance asks again
    assert emu.count("gemini", "models") == 6


async def test_models_without_a_key_is_the_fallback_list(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    assert await trio_llm.Gemini(base_url=emu.url_for("gemini")).models() == list(trio_llm.Gemini.models)
    assert emu.requests == 0


async def test_models_network_failure_is_a_transport_error_not_a_bad_key() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gemini = trio_llm.Gemini(api_key="k", base_url=f"http://127.0.0.1:{port}/v1beta")
    with pytest.raises(trio_llm.TransportError, match="could not connect"):
        await gemini.models()


async def test_models_with_a_bad_key_is_an_authentication_error(emu: Emulator) -> None:
    with pytest.raises(trio_llm.AuthenticationError):
        await emu.gemini(api_key="wrong").models()


# -- errors ------------------------------------------------------------------------------------


async def test_invalid_key_is_an_authentication_error_with_googles_message(emu: Emulator) -> None:
    with pytest.raises(trio_llm.AuthenticationError) as caught:
        await emu.gemini(api_key="wrong").complete("Hi")
    error = caught.value
    assert (error.status_code, error.provider) == (400, "gemini")
    assert "API key not valid" in str(error)
    assert error.body["error"]["details"][0]["reason"] == "API_KEY_INVALID"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, trio_llm.BadRequestError),
        (401, trio_llm.AuthenticationError),
        (403, trio_llm.PermissionDeniedError),
        (404, trio_llm.NotFoundError),
        (429, trio_llm.RateLimitError),
        (500, trio_llm.ServerError),
        (503, trio_llm.ServerError),
        (409, trio_llm.APIStatusError),
    ],
)
async def test_error_statuses_map_to_the_typed_tree(emu: Emulator, status: int, error_class: type) -> None:
    emu.inject("gemini", Fault(status=status, message="nope", headers={"x-request-id": "req-42"}), times=3)
    gemini = emu.gemini(retry=trio_llm.RetryPolicy(max_attempts=1))
    with pytest.raises(error_class) as caught:
        await gemini.complete("Hi")
    assert type(caught.value) is error_class
    assert caught.value.status_code == status
    assert caught.value.request_id == "req-42"
    assert "nope" in str(caught.value) and "req-42" in str(caught.value)
    with pytest.raises(error_class):
        await collect(gemini.stream("Hi"))


async def test_bad_request_is_also_an_invalid_request_error(emu: Emulator) -> None:
    emu.inject("gemini", Fault(status=400))
    with pytest.raises(trio_llm.InvalidRequestError):
        await emu.gemini().complete("Hi")


async def test_unknown_model_is_model_not_found(emu: Emulator) -> None:
    with pytest.raises(trio_llm.ModelNotFoundError, match=r"gemini-0\.1-nonexistent is not found"):
        await emu.gemini().complete("Hi", model="gemini-0.1-nonexistent")


async def test_rate_limit_carries_retry_after_from_retry_info(emu: Emulator) -> None:
    emu.inject("gemini", Fault(status=429, retry_after="22"))
    with pytest.raises(trio_llm.RateLimitError) as caught:
        await emu.gemini(retry=trio_llm.RetryPolicy(max_attempts=1)).complete("Hi")
    assert caught.value.retry_after == 22.0


async def test_rate_limit_carries_retry_after_from_the_header(emu: Emulator) -> None:
    emu.inject("gemini", Fault(status=429, headers={"retry-after": "7"}))
    with pytest.raises(trio_llm.RateLimitError) as caught:
        await emu.gemini(retry=trio_llm.RetryPolicy(max_attempts=1)).complete("Hi")
    assert caught.value.retry_after == 7.0


async def test_html_error_page_from_a_proxy_is_named_not_quoted(emu: Emulator) -> None:
    emu.inject("gemini", Fault(status=502, body="<!DOCTYPE html><html><body>Bad gateway</body></html>"))
    with pytest.raises(trio_llm.ServerError, match="HTML error page"):
        await emu.gemini(retry=trio_llm.RetryPolicy(max_attempts=1)).complete("Hi")


async def test_blocked_prompt_is_content_blocked(emu: Emulator) -> None:
    emu.inject("gemini", Fault(block_reason="SAFETY"), times=2)
    with pytest.raises(trio_llm.ContentBlockedError) as caught:
        await emu.gemini().complete("Something bad")
    assert caught.value.reason == "SAFETY"
    with pytest.raises(trio_llm.ContentBlockedError):
        await collect(emu.gemini().stream("Something bad"))


async def test_safety_finish_is_content_filter(emu: Emulator) -> None:
    emu.inject("gemini", Fault(finish_reason="SAFETY"))
    reply = await emu.gemini().complete("Hi")
    assert reply.finish == Finish(FinishReason.CONTENT_FILTER, "SAFETY")


async def test_unknown_finish_reason_is_other_with_raw_kept(emu: Emulator) -> None:
    emu.inject("gemini", Fault(finish_reason="SOMETHING_NEW"))
    events = await collect(emu.gemini().stream("Hi"))
    assert events[-1] == Finish(FinishReason.OTHER, "SOMETHING_NEW")


async def test_error_object_inside_a_200_stream_raises_after_the_text_before_it(emu: Emulator) -> None:
    emu.inject("gemini", Fault(error_after=2, error_status=503, message="overloaded"))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.ServerError, match="overloaded") as caught:
        async with emu.gemini().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert len(received) == 2 and all(isinstance(e, TextDelta) for e in received)
    assert caught.value.status_code == 503


@pytest.mark.parametrize("mid_event", [False, True])
async def test_truncated_stream_raises_never_a_normal_stop(emu: Emulator, mid_event: bool) -> None:
    emu.inject("gemini", Fault(truncate_after=3, truncate_mid_event=mid_event))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.StreamTruncatedError) as caught:
        async with emu.gemini().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert len(received) == 3
    assert not any(isinstance(e, Finish) for e in received)
    assert caught.value.events_delivered == 3


async def test_stream_cut_before_the_finish_event_is_truncated(emu: Emulator) -> None:
    emu.inject("gemini", Fault(finish_reason=""))  # every event sent, none with a finishReason
    with pytest.raises(trio_llm.StreamTruncatedError, match="without a finishReason"):
        await collect(emu.gemini().stream("Hi"))


async def test_malformed_event_is_a_protocol_error(emu: Emulator) -> None:
    emu.inject("gemini", Fault(malformed_after=1))
    with pytest.raises(trio_llm.ProtocolError, match="malformed JSON"):
        await collect(emu.gemini().stream("Hi"))


async def test_gzip_encoded_stream_is_decoded(emu: Emulator) -> None:
    emu.inject("gemini", Fault(gzip=True), times=2)
    plain = await emu.gemini().complete("Zip me")
    assert trio_llm.Reply.from_events(await collect(emu.gemini().stream("Zip me"))).text == plain.text


async def test_provider_context_reuses_one_connection(emu: Emulator) -> None:
    async with emu.gemini() as gemini:
        for _ in range(3):
            await gemini.complete("Hi")
            await collect(gemini.stream("Hi"))
        assert emu.open_connections == 1
    with trio.fail_after(5):
        await emu.wait_for_connections(0)
    assert emu.peak_connections == 1


async def test_non_json_success_body_is_a_protocol_error(emu: Emulator) -> None:
    emu.inject("gemini", Fault(status=200, body="this is not json", content_type="application/json"))
    with pytest.raises(trio_llm.ProtocolError):
        await emu.gemini().complete("Hi")


async def test_request_json_is_compact_utf8(emu: Emulator) -> None:
    await emu.gemini().complete("Привет, мир")
    raw = emu.requests_for("gemini", "chat")[0].body
    assert "Привет".encode() in raw
    assert json.loads(raw)["contents"][0]["parts"][0]["text"] == "Привет, мир"
