"""AmigoChat against the emulator, over real loopback sockets: chat, images, personas, devices."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import trio_llm
from trio_llm import Finish, FinishReason, ImageOutput, TextDelta
from trio_llm._decoding import BodyDecoder
from trio_llm.providers._amigochat import ImagesInterpreter
from trio_llm.testing import Emulator, Fault

NO_RETRY = trio_llm.RetryPolicy(max_attempts=1)


async def collect(stream: trio_llm.EventStream) -> list[trio_llm.Event]:
    async with stream as events:
        return [event async for event in events]


def device_ids(emu: Emulator, route: str = "chat") -> list[str]:
    return [r.headers["x-device-uuid"] for r in emu.requests_for("amigochat", route)]


def chat_ids(emu: Emulator) -> list[str]:
    return [r.json()["chatId"] for r in emu.requests_for("amigochat", "chat")]


# -- flags and construction --------------------------------------------------------------------


def test_class_level_flags() -> None:
    cls = trio_llm.AmigoChat
    assert cls.name == "amigochat" and not cls.needs_auth
    assert cls.supports_stream and cls.supports_system_message and cls.supports_message_history
    assert cls.supports_images_output and not cls.supports_tools and not cls.supports_vision
    assert cls.default_model == "gpt-4o-mini" and cls.closed_model_list
    assert "flux/dev" in cls.models and "claude-3-5-haiku-latest" in cls.models and len(cls.models) == 37


def test_max_retries_sets_the_attempts() -> None:
    assert trio_llm.AmigoChat().retry.max_attempts == trio_llm.AmigoChat().max_retries == 3
    assert trio_llm.AmigoChat(max_retries=5).retry == trio_llm.RetryPolicy(max_attempts=5)
    policy = trio_llm.RetryPolicy(max_attempts=4, initial_backoff=2.0)
    assert trio_llm.AmigoChat(retry=policy).max_retries == 4
    assert trio_llm.AmigoChat(retry=policy, max_retries=2).retry == trio_llm.RetryPolicy(
        max_attempts=2, initial_backoff=2.0
    )
    for bad in (0, -1, True, 2.5):
        with pytest.raises(trio_llm.ConfigurationError, match="max_retries"):
            trio_llm.AmigoChat(max_retries=bad)  # type: ignore[arg-type]


# -- chat --------------------------------------------------------------------------------------


async def test_chat_streams_text_then_a_stop(emu: Emulator) -> None:
    events = await collect(emu.amigochat().stream("Hello, how are you?"))
    assert len(events) > 3
    assert all(isinstance(e, TextDelta) for e in events[:-1])
    assert events[-1] == Finish(FinishReason.STOP, "stop")
    (request,) = emu.requests_for("amigochat", "chat")
    assert request.path == "/amigochat/v1/chat/completions"


async def test_chat_body_is_the_seeds_with_their_defaults(emu: Emulator) -> None:
    await emu.amigochat().complete([trio_llm.system("Be brief"), "Hello"])
    body = emu.requests_for("amigochat", "chat")[0].json()
    assert uuid.UUID(body.pop("chatId")).version == 4
    assert body == {
        "frequency_penalty": 0,
        "max_tokens": 4000,
        "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hello"}],
        "model": "gpt-4o-mini",
        "personaId": "amigo",
        "presence_penalty": 0,
        "stream": True,
        "temperature": 0.5,
        "top_p": 0.95,
    }


async def test_options_replace_the_defaults(emu: Emulator) -> None:
    reply = await emu.amigochat().complete("Long story", temperature=1.2, top_p=0.5, max_tokens=5, stop=["zzz"])
    body = emu.requests_for("amigochat", "chat")[0].json()
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop"]) == (1.2, 0.5, 5, ["zzz"])
    assert len(reply.text.split()) == 5
    assert reply.finish == Finish(FinishReason.LENGTH, "length")


async def test_complete_collects_the_same_stream(emu: Emulator) -> None:
    amigo = emu.amigochat()
    streamed = trio_llm.Reply.from_events(await collect(amigo.stream("Same prompt")))
    reply = await amigo.complete("Same prompt")
    assert reply.text == streamed.text and reply.finish == streamed.finish
    assert [r.json()["stream"] for r in emu.requests_for("amigochat", "chat")] == [True, True]


async def test_device_headers_and_a_fresh_device_and_chat_per_request(emu: Emulator) -> None:
    amigo = emu.amigochat()
    await amigo.complete("Hi")
    await amigo.complete("Hi")
    first = emu.requests_for("amigochat", "chat")[0].headers
    assert first["x-device-platform"] == "web"
    assert first["x-device-version"] == "1.0.45"
    assert first["x-device-language"] == "en-US"
    assert first["authorization"] == "Bearer"
    assert first["origin"] == "https://amigochat.io"
    assert first["content-type"] == "application/json"
    devices, chats = device_ids(emu), chat_ids(emu)
    assert all(uuid.UUID(d).version == 4 for d in devices + chats)
    assert len(set(devices)) == 2 and len(set(chats)) == 2


@pytest.mark.parametrize(
    ("asked", "model", "persona"),
    [
        (None, "gpt-4o-mini", "amigo"),
        ("gpt-4o", "gpt-4o-2024-11-20", "gpt"),  # the alias wins over the gpt-4o entry, as in the seeds
        ("gpt-4o-2024-11-20", "gpt-4o-2024-11-20", "gpt"),
        ("gemini-flash", "gemini-1.5-flash", "gemini-1.5-flash"),
        ("claude-3.5-sonnet", "claude-3-5-sonnet-20241022", "clude-claude-3-5-sonnet-20241022"),
        ("claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20240620", "claude"),
        ("claude-3.5-haiku", "claude-3-5-haiku-latest", "3-5-haiku"),
        ("llama-3.1-405b", "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo", "llama-three-point-one"),
        ("mixtral-7b", "mistralai/Mistral-7B-Instruct-v0.3", "mistralai-Mistral-7B-Instruct-v0.1"),
        ("qwen-2.5-72b", "Qwen/Qwen2.5-72B-Instruct-Turbo", "qwen-2-5"),
        ("grok-beta", "x-ai/grok-beta", "x-ai-grok-beta"),
    ],
)
async def test_chat_persona_ids(emu: Emulator, asked: str | None, model: str, persona: str) -> None:
    amigo = emu.amigochat()
    assert amigo.persona_id(asked) == persona
    await amigo.complete("Hi", model=asked)
    body = emu.requests_for("amigochat", "chat")[0].json()
    assert (body["model"], body["personaId"]) == (model, persona)


@pytest.mark.parametrize(
    ("asked", "model", "persona"),
    [
        ("flux/dev", "flux/dev", "flux-dev"),
        ("flux-dev", "flux/dev", "flux-dev"),
        ("dall-e-3", "dall-e-3", "dalle-three"),
        ("recraft-v3", "recraft-v3", "recraft"),
        ("flux-realism", "flux-realism", "flux-realism"),
    ],
)
async def test_image_persona_ids(emu: Emulator, asked: str, model: str, persona: str) -> None:
    amigo = emu.amigochat()
    assert amigo.persona_id(asked) == persona
    await amigo.complete("a cat astronaut", model=asked)
    body = emu.requests_for("amigochat", "images")[0].json()
    assert body == {"prompt": "a cat astronaut", "model": model, "personaId": persona}


async def test_an_unknown_model_is_refused_before_io(emu: Emulator) -> None:
    with pytest.raises(trio_llm.ModelNotFoundError, match="unknown model 'gpt-5'"):
        emu.amigochat().stream("Hi", model="gpt-5")
    with pytest.raises(trio_llm.ModelNotFoundError):
        emu.amigochat().persona_id("o1-preview")  # the seeds' o1 ids end in "-"
    assert emu.requests == 0


async def test_a_premium_persona_gets_the_balance_message(emu: Emulator) -> None:
    with pytest.raises(trio_llm.APIStatusError, match="balance is not enough") as caught:
        await emu.amigochat().complete("Hi", model="gemini-1.5-pro")
    assert caught.value.status_code == 402
    assert emu.count("amigochat", "chat") == 1  # a 402 is not retried


async def test_tools_and_images_in_are_refused_before_io(emu: Emulator, png: bytes) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match="tools"):
        await emu.amigochat().complete("Hi", tools=[trio_llm.Tool("f")])
    with pytest.raises(trio_llm.InvalidRequestError, match="images"):
        await emu.amigochat().complete([trio_llm.user("What is it?", png)])
    assert emu.requests == 0


# -- image generation --------------------------------------------------------------------------


async def test_image_generation_collects_the_urls_into_the_reply(emu: Emulator) -> None:
    reply = await emu.amigochat().complete("a red bicycle", model="flux/dev")
    (image,) = reply.images
    assert image.url is not None and image.url.endswith(".png") and image.data is None
    assert (reply.text, reply.finish, reply.model) == ("", Finish(FinishReason.STOP, None), "flux/dev")
    (request,) = emu.requests_for("amigochat", "images")
    assert request.path == "/amigochat/v1/images/generations"
    assert uuid.UUID(request.headers["x-device-uuid"]).version == 4
    assert emu.count("amigochat", "chat") == 0
    async with httpx.AsyncClient() as client:
        response = await client.get(image.url)
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


async def test_image_generation_streams_typed_events(emu: Emulator) -> None:
    events = await collect(emu.amigochat().stream("a red bicycle", model="flux-dev"))
    assert [type(e) for e in events] == [ImageOutput, Finish]
    again = await collect(emu.amigochat().stream("a red bicycle", model="flux-dev"))
    assert again == events  # deterministic


async def test_the_image_prompt_is_the_last_message(emu: Emulator) -> None:
    await emu.amigochat().complete(["a dog", trio_llm.assistant("ok"), "a cat astronaut"], model="dall-e-3")
    assert emu.requests_for("amigochat", "images")[0].json()["prompt"] == "a cat astronaut"


async def test_an_image_model_without_a_prompt_is_refused_before_io(emu: Emulator) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match="needs a prompt"):
        await emu.amigochat().complete("   ", model="flux/dev")
    assert emu.requests == 0


@pytest.mark.parametrize(
    ("body", "events"),
    [
        ({"data": []}, [Finish(FinishReason.STOP, None)]),
        (
            {"data": [{"b64_json": "iVBORw0KGgo="}, {"url": "https://cdn.example/a.png"}]},
            [
                ImageOutput(data=b"\x89PNG\r\n\x1a\n", mime_type="image/png"),
                ImageOutput(url="https://cdn.example/a.png"),
                Finish(FinishReason.STOP, None),
            ],
        ),
    ],
)
async def test_image_reply_shapes(emu: Emulator, body: object, events: list[trio_llm.Event]) -> None:
    emu.inject("amigochat", Fault(status=200, body=body), route="images")
    assert await collect(emu.amigochat().stream("x", model="flux/dev")) == events


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"images": []}, "no 'data'; it had the keys 'images'"),
        ({"data": {"url": "x"}}, "'data' is a dict"),
        ({"data": [{"uri": "x"}]}, r"data\[0\] has neither"),
        ({"data": [{"b64_json": "***"}]}, "not valid base64"),
    ],
)
async def test_malformed_image_replies_are_protocol_errors(emu: Emulator, body: object, match: str) -> None:
    emu.inject("amigochat", Fault(status=200, body=body), route="images")
    with pytest.raises(trio_llm.ProtocolError, match=match):
        await emu.amigochat().complete("x", model="flux/dev")


# -- retries with new devices ------------------------------------------------------------------


async def test_retries_with_a_new_device_id_and_backoff(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("amigochat", Fault(status=503), times=2)
    amigo = emu.amigochat(retry=trio_llm.RetryPolicy(initial_backoff=1.0))
    start = trio.current_time()
    events = await collect(amigo.stream("Hi"))
    waited = trio.current_time() - start
    assert events[-1] == Finish(FinishReason.STOP, "stop")
    assert emu.count("amigochat", "chat") == 3
    assert len(set(device_ids(emu))) == 3  # a new device for every attempt
    assert len(set(chat_ids(emu))) == 1  # the same request, sent again
    assert 0.5 + 1.0 <= waited <= 1.0 + 2.0  # jittered 1 s then 2 s


async def test_gives_up_after_max_retries(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("amigochat", Fault(status=500, message="Error handling AIML chat completion stream"), times=9)
    with pytest.raises(trio_llm.ServerError, match="AIML"):
        await emu.amigochat(max_retries=5).complete("Hi")
    assert emu.count("amigochat", "chat") == 5
    assert len(set(device_ids(emu))) == 5


async def test_max_retries_1_sends_once(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("amigochat", Fault(status=503))
    with pytest.raises(trio_llm.ServerError):
        await emu.amigochat(max_retries=1).complete("Hi")
    assert emu.count("amigochat", "chat") == 1


async def test_a_reset_before_the_first_event_is_retried_from_a_new_device(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject("amigochat", Fault(reset_after=0))
    events = await collect(emu.amigochat().stream("Hi"))
    assert isinstance(events[-1], Finish)
    assert len(set(device_ids(emu))) == 2


async def test_never_retries_after_the_first_event_reached_the_caller(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    # The seeds regenerated and re-streamed the whole answer here (duplicated output).
    emu.inject("amigochat", Fault(reset_after=2))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.TransportError):
        async with emu.amigochat().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert len(received) == 2 and all(isinstance(e, TextDelta) for e in received)
    assert emu.count("amigochat", "chat") == 1


async def test_image_generation_is_retried_from_a_new_device(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject("amigochat", Fault(status=429), route="images")
    reply = await emu.amigochat().complete("a red bicycle", model="flux/dev")
    assert len(reply.images) == 1
    assert len(set(device_ids(emu, "images"))) == 2


async def test_client_errors_are_not_retried(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("amigochat", Fault(status=403), times=3)
    with pytest.raises(trio_llm.PermissionDeniedError, match="403 Forbidden"):
        await emu.amigochat().complete("Hi")
    assert emu.count("amigochat", "chat") == 1


# -- errors and truncation ---------------------------------------------------------------------


async def test_nestjs_error_bodies_give_their_message(emu: Emulator) -> None:
    emu.inject("amigochat", Fault(status=406, message="not implemented"))
    with pytest.raises(trio_llm.APIStatusError) as caught:
        await emu.amigochat().complete("Hi")
    assert str(caught.value) == "amigochat: 406 not implemented"
    assert caught.value.body == {"message": "not implemented", "error": "Not Acceptable", "statusCode": 406}


async def test_without_device_headers_the_service_says_forbidden(emu: Emulator) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emu.url_for('amigochat')}/chat/completions", json={"model": "gpt-4o-mini"})
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden", "error": "Forbidden", "statusCode": 403}


@pytest.mark.parametrize("mid_event", [False, True])
async def test_truncated_chat_stream_raises_never_a_normal_stop(emu: Emulator, mid_event: bool) -> None:
    emu.inject("amigochat", Fault(truncate_after=2, truncate_mid_event=mid_event))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.StreamTruncatedError) as caught:
        async with emu.amigochat().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert len(received) == 2 and not any(isinstance(e, Finish) for e in received)
    assert caught.value.events_delivered == 2


async def test_a_chat_stream_without_done_is_truncated(emu: Emulator) -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}
    body = f"data: {json.dumps(chunk)}\n\n"
    emu.inject("amigochat", Fault(status=200, body=body, content_type="text/event-stream"))
    with pytest.raises(trio_llm.StreamTruncatedError, match=r"\[DONE\]"):
        await collect(emu.amigochat(retry=NO_RETRY).stream("Hi"))


async def test_the_legacy_text_shape_is_read(emu: Emulator) -> None:
    body = 'data: {"choices": [{"index": 0, "text": "old style"}]}\n\ndata: [DONE]\n\n'
    emu.inject("amigochat", Fault(status=200, body=body, content_type="text/event-stream"))
    assert await collect(emu.amigochat().stream("Hi")) == [TextDelta("old style"), Finish(FinishReason.OTHER, None)]


async def test_an_image_reply_cut_short_is_truncated(emu: Emulator) -> None:
    emu.inject("amigochat", Fault(truncate_after=0), route="images")
    with pytest.raises(trio_llm.StreamTruncatedError):
        await emu.amigochat(retry=NO_RETRY).complete("x", model="flux/dev")


# -- cleanup -----------------------------------------------------------------------------------


async def test_break_closes_the_connection(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    async with emu.amigochat() as amigo:
        async with amigo.stream("Hi") as events:
            async for _event in events:
                break
        with trio.fail_after(5):
            await emu.wait_for_connections(0)


async def test_cancellation_closes_the_connection(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("amigochat", Fault(stall_after=1))
    received: list[trio_llm.Event] = []
    with trio.move_on_after(10) as scope:
        async with emu.amigochat(timeouts=trio_llm.Timeouts(idle=None)).stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert scope.cancelled_caught and len(received) == 1
    with trio.fail_after(5):
        await emu.wait_for_connections(0)
    assert emu.count("amigochat", "chat") == 1


# -- the image decoder, fuzzed -----------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["data", "url", "b64_json", "error", "message", "code"]), inner, max_size=3)
    ),
    max_leaves=10,
)


def decode_images(body: bytes) -> list[trio_llm.Event]:
    decoder = BodyDecoder(ImagesInterpreter())
    return decoder.feed(body) + decoder.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_raise_nothing_but_protocol_errors(body: bytes) -> None:
    try:
        decode_images(body)
    except trio_llm.ProtocolError:
        pass


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_fuzzed_image_replies_raise_nothing_but_trio_llm_errors(obj: object) -> None:
    try:
        events = decode_images(json.dumps(obj).encode())
    except trio_llm.TrioLLMError:
        return
    assert events[-1] == Finish(FinishReason.STOP, None)
    assert all(isinstance(e, ImageOutput) for e in events[:-1])
