"""Dynaspark against the emulator, over real loopback sockets: the multipart wire and the reply."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import trio_llm
from trio_llm import Finish, FinishReason, TextDelta
from trio_llm._decoding import BodyDecoder
from trio_llm.providers._dynaspark import DynasparkInterpreter, format_prompt
from trio_llm.testing import Emulator, Fault, FormField

NO_RETRY = trio_llm.RetryPolicy(max_attempts=1)
#: The smallest JPEG header the sniffer accepts, and a GIF.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32)
GIF = b"GIF89a" + bytes(16)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


async def collect(stream: trio_llm.EventStream) -> list[trio_llm.Event]:
    async with stream as events:
        return [event async for event in events]


def fields(emu: Emulator, index: int = 0) -> list[FormField]:
    return emu.requests_for("dynaspark", "chat")[index].form()


# -- the flags and the prompt ------------------------------------------------------------------


def test_class_level_flags_are_the_seeds() -> None:
    cls = trio_llm.Dynaspark
    assert cls.name == "dynaspark" and not cls.needs_auth
    assert cls.supports_stream and cls.supports_vision
    assert not cls.supports_system_message and not cls.supports_message_history
    assert not cls.supports_tools and not cls.supports_images_output
    assert cls.default_model == "gemini-1.5-flash"
    assert cls.models == ("gemini-1.5-flash", "gemini-1.5-flash-8b", "gemini-2.0-flash", "gemini-2.0-flash-lite")


@pytest.mark.parametrize(
    ("messages", "prompt"),
    [
        (["Hello, how are you?"], "Hello, how are you?"),
        ([trio_llm.system("Be brief")], "Be brief"),
        ([trio_llm.system("Be brief"), "Hi"], "System: Be brief\nUser: Hi\nAssistant:"),
        (
            [trio_llm.user("Hi"), trio_llm.assistant("Hello!"), trio_llm.user("Bye")],
            "User: Hi\nAssistant: Hello!\nUser: Bye\nAssistant:",
        ),
        ([trio_llm.user("Hi"), trio_llm.assistant("  "), trio_llm.user("Again")], "User: Hi\nUser: Again\nAssistant:"),
    ],
)
def test_format_prompt_is_the_seeds(messages: list[trio_llm.Message | str], prompt: str) -> None:
    coerced = [trio_llm.user(m) if isinstance(m, str) else m for m in messages]
    assert format_prompt(coerced) == prompt


# -- the multipart wire ------------------------------------------------------------------------


async def test_one_message_is_a_multipart_form_with_the_prompt_verbatim(emu: Emulator) -> None:
    reply = await emu.dynaspark().complete("Hello, how are you?")
    (request,) = emu.requests_for("dynaspark", "chat")
    assert request.method == "POST"
    assert request.path == "/dynaspark/generate_response"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert [(f.name, f.filename, f.content_type) for f in fields(emu)] == [
        ("user_input", None, None),
        ("ai_model", None, None),
    ]
    assert fields(emu)[0].text == "Hello, how are you?"
    assert reply.text and reply.finish == Finish(FinishReason.STOP, None)


async def test_system_message_and_history_are_flattened_into_user_input(emu: Emulator) -> None:
    messages = [
        trio_llm.system("Be brief"),
        trio_llm.user("Hi"),
        trio_llm.assistant("Hello!"),
        {"role": "user", "content": "How are you?"},
    ]
    await emu.dynaspark().complete(messages)
    assert fields(emu)[0].text == "System: Be brief\nUser: Hi\nAssistant: Hello!\nUser: How are you?\nAssistant:"


async def test_the_image_is_the_file_part_with_its_sniffed_mime_type(emu: Emulator, png: bytes) -> None:
    reply = await emu.dynaspark().complete("Describe this image.", media=[(png, "image.png")])
    user_input, ai_model, file = fields(emu)
    assert (user_input.name, ai_model.name, file.name) == ("user_input", "ai_model", "file")
    assert user_input.text == "Describe this image."
    assert (file.filename, file.content_type, file.value) == ("image.png", "image/png", png)
    assert reply.text.startswith(f"I see a image/png image of {len(png)} bytes.")


@pytest.mark.parametrize(
    ("data", "mime", "filename"), [(JPEG, "image/jpeg", "image.jpg"), (GIF, "image/gif", "image.gif")]
)
async def test_the_mime_type_comes_from_the_bytes_not_the_declaration(
    emu: Emulator, data: bytes, mime: str, filename: str
) -> None:
    await emu.dynaspark().complete([trio_llm.user("What is it?", trio_llm.Image(data=data, mime_type="image/png"))])
    file = fields(emu)[2]
    assert (file.filename, file.content_type, file.value) == (filename, mime, data)


async def test_an_image_as_a_data_uri_is_sent_as_bytes(emu: Emulator, png: bytes) -> None:
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    content = [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": uri}}]
    await emu.dynaspark().complete([{"role": "user", "content": content}])
    assert fields(emu)[2].value == png


async def test_the_headers_are_the_sites_own(emu: Emulator) -> None:
    await emu.dynaspark().complete("Hi")
    headers = emu.requests_for("dynaspark", "chat")[0].headers
    origin = emu.url_for("dynaspark").removesuffix("/dynaspark")
    assert headers["origin"] == origin and headers["referer"] == origin + "/"
    assert headers["x-requested-with"] == "XMLHttpRequest"
    assert headers["user-agent"].startswith("Mozilla/5.0")
    assert "authorization" not in headers


async def test_the_path_is_configurable(emu: Emulator) -> None:
    await emu.dynaspark(path="/dsai_fuck_u_spammer").complete("Hi")
    assert emu.requests_for("dynaspark", "chat")[0].path == "/dynaspark/dsai_fuck_u_spammer"
    with pytest.raises(trio_llm.ConfigurationError, match="path"):
        trio_llm.Dynaspark(path="generate_response")


async def test_the_emulator_also_takes_the_url_encoded_form_the_seeds_sent(emu: Emulator) -> None:
    # aiohttp's FormData (the seeds) is URL-encoded when no file is attached.
    async with httpx.AsyncClient() as client:
        url = f"{emu.url_for('dynaspark')}/generate_response"
        ok = await client.post(url, data={"user_input": "Hi there", "ai_model": "gemini-2.0-flash"})
        broken = await client.post(url, content=b"--x\r\n", headers={"content-type": "multipart/form-data; boundary=x"})
    assert ok.status_code == 200 and ok.json()["response"]
    assert [(f.name, f.text) for f in fields(emu)] == [("user_input", "Hi there"), ("ai_model", "gemini-2.0-flash")]
    assert (broken.status_code, broken.json()) == (400, {"error": "Invalid form data"})
    with pytest.raises(ValueError, match="multipart"):
        fields(emu, 1)


# -- models ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "sent"),
    [
        (None, "gemini-1.5-flash-8b"),  # the default is an alias in the seeds' table
        ("gemini-1.5-flash", "gemini-1.5-flash-8b"),
        ("gemini-2.0-flash", "gemini-2.0-flash-lite"),
        ("gemini-2.0-flash-lite", "gemini-2.0-flash-lite"),
        ("gemini-1.5-flash-8b", "gemini-1.5-flash-8b"),
    ],
)
async def test_model_aliases_are_resolved(emu: Emulator, asked: str | None, sent: str) -> None:
    async with emu.dynaspark().stream("Hi", model=asked) as events:
        assert events.model == sent
        async for _event in events:
            pass
    assert fields(emu)[1].text == sent


async def test_models_is_the_static_list_without_io(emu: Emulator) -> None:
    assert await emu.dynaspark().models() == list(trio_llm.Dynaspark.models)
    assert emu.requests == 0


async def test_a_model_the_service_does_not_know_gets_its_error(emu: Emulator) -> None:
    with pytest.raises(trio_llm.BadRequestError, match="Unsupported model: gemini-9"):
        await emu.dynaspark().complete("Hi", model="gemini-9")


# -- the reply ---------------------------------------------------------------------------------


async def test_stream_yields_one_text_delta_and_a_stop(emu: Emulator) -> None:
    emu.inject("dynaspark", Fault(text="Hello! How can I help you today?"))
    events = await collect(emu.dynaspark().stream("Hi"))
    assert events == [TextDelta("Hello! How can I help you today?"), Finish(FinishReason.STOP, None)]


async def test_an_empty_response_is_just_the_finish(emu: Emulator) -> None:
    emu.inject("dynaspark", Fault(text=""))
    assert await collect(emu.dynaspark().stream("Hi")) == [Finish(FinishReason.STOP, None)]


async def test_a_reply_without_response_quotes_the_keys_it_had(emu: Emulator) -> None:
    emu.inject("dynaspark", Fault(status=200, body={"answer": "?", "status": "failed"}))
    with pytest.raises(trio_llm.ProtocolError, match=r"no 'response'.*'answer', 'status'"):
        await emu.dynaspark().complete("Hi")


async def test_an_error_object_in_a_200_reply_is_a_server_error(emu: Emulator) -> None:
    emu.inject("dynaspark", Fault(status=200, body={"error": "quota exceeded", "status": "failed"}))
    with pytest.raises(trio_llm.ServerError, match=r"quota exceeded \(an error in a 200 reply\)") as caught:
        await emu.dynaspark(retry=NO_RETRY).complete("Hi")
    assert caught.value.body == {"error": "quota exceeded", "status": "failed"}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"response": 42}, "'response' is a int"),
        ([1, 2], "expected a JSON object"),
        ("<html>not json</html>", "malformed JSON"),
        ("", "malformed JSON"),
    ],
)
async def test_malformed_replies_are_protocol_errors(emu: Emulator, body: object, match: str) -> None:
    emu.inject("dynaspark", Fault(status=200, body=body, content_type="application/json"))
    with pytest.raises(trio_llm.ProtocolError, match=match):
        await emu.dynaspark().complete("Hi")


# -- refused before any I/O --------------------------------------------------------------------


async def test_more_than_one_image_is_refused_before_io(emu: Emulator, png: bytes) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match="one image per request; the messages carry 2"):
        emu.dynaspark().stream([trio_llm.user("Compare", png, png)])
    with pytest.raises(trio_llm.InvalidRequestError, match="carry 2"):
        await emu.dynaspark().complete([trio_llm.user("A", png), trio_llm.user("B")], media=[(png, None)])
    assert emu.requests == 0


async def test_a_non_image_file_is_refused_before_io(emu: Emulator) -> None:
    pdf = trio_llm.Image(data=b"%PDF-1.7 not an image", mime_type="application/pdf")
    with pytest.raises(trio_llm.InvalidRequestError, match=r"messages\[0\]\.content\[1\]: not a supported image"):
        await emu.dynaspark().complete([trio_llm.user("Read this", pdf)])
    with pytest.raises(trio_llm.InvalidRequestError, match=r"media\[0\]"):
        await emu.dynaspark().complete("Read this", media=[(b"plain text", "notes.txt")])
    assert emu.requests == 0


async def test_an_image_url_is_refused_before_io(emu: Emulator) -> None:
    image = trio_llm.Image(url="https://example.com/cat.png")
    with pytest.raises(trio_llm.InvalidRequestError, match="needs the image's bytes"):
        await emu.dynaspark().complete([trio_llm.user("What is it?", image)])
    assert emu.requests == 0


async def test_tools_are_refused_before_io(emu: Emulator) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match="does not support tools"):
        await emu.dynaspark().complete("Hi", tools=[trio_llm.Tool("f")])
    assert emu.requests == 0


# -- errors, truncation, deadlines, cleanup ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, trio_llm.BadRequestError), (429, trio_llm.RateLimitError), (500, trio_llm.ServerError)],
)
async def test_error_bodies_map_to_the_typed_tree(emu: Emulator, status: int, error_class: type) -> None:
    emu.inject("dynaspark", Fault(status=status, message="nope"))
    with pytest.raises(error_class) as caught:
        await emu.dynaspark(retry=NO_RETRY).complete("Hi")
    assert (caught.value.status_code, caught.value.body) == (status, {"error": "nope"})
    assert str(caught.value) == f"dynaspark: {status} nope"


async def test_the_old_path_on_a_renamed_service_is_a_not_found_html_page(emu: Emulator) -> None:
    with pytest.raises(trio_llm.NotFoundError, match="HTML error page"):
        await emu.dynaspark(path="/old_route").complete("Hi")


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [(Fault(truncate_after=0), trio_llm.StreamTruncatedError), (Fault(reset_after=0), trio_llm.TransportError)],
)
async def test_a_reply_cut_short_is_an_error_never_a_stop(emu: Emulator, fault: Fault, error_class: type) -> None:
    emu.inject("dynaspark", fault)
    received: list[trio_llm.Event] = []
    with pytest.raises(error_class, match="response"):
        async with emu.dynaspark(retry=NO_RETRY).stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert received == []


async def test_a_reply_cut_short_is_retried_while_nothing_was_delivered(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject("dynaspark", Fault(reset_after=0))
    emu.inject("dynaspark", Fault(status=503))
    reply = await emu.dynaspark().complete("Hi")
    assert reply.finish == Finish(FinishReason.STOP, None)
    assert emu.count("dynaspark", "chat") == 3


async def test_a_silent_service_hits_the_first_event_deadline(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject("dynaspark", Fault(stall_after=0))
    start = trio.current_time()
    with pytest.raises(trio_llm.FirstEventTimeout):
        await emu.dynaspark(timeouts=trio_llm.Timeouts(first_event=20), retry=NO_RETRY).complete("Hi")
    assert trio.current_time() - start == pytest.approx(20)
    with trio.fail_after(5):
        await emu.wait_for_connections(0)


async def test_cancellation_closes_the_connection(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("dynaspark", Fault(delay=100))
    with trio.move_on_after(5) as scope:
        await collect(emu.dynaspark().stream("Hi"))
    assert scope.cancelled_caught
    with trio.fail_after(5):
        await emu.wait_for_connections(0)
    assert emu.count("dynaspark", "chat") == 1


# -- the decoder, fuzzed -----------------------------------------------------------------------


def decode(body: bytes) -> list[trio_llm.Event]:
    decoder = BodyDecoder(DynasparkInterpreter())
    return decoder.feed(body) + decoder.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_raise_nothing_but_protocol_errors(body: bytes) -> None:
    try:
        events = decode(body)
    except trio_llm.ProtocolError:
        return
    assert events[-1] == Finish(FinishReason.STOP, None)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["response", "error", "status", "answer"]), JSON, max_size=3))
def test_fuzzed_json_raises_nothing_but_protocol_errors(obj: dict[str, object]) -> None:
    try:
        events = decode(json.dumps(obj).encode())
    except trio_llm.ServerError:
        assert "response" not in obj and isinstance(obj.get("error"), str)
        return
    except trio_llm.ProtocolError:
        assert not isinstance(obj.get("response"), str)
        return
    text = obj["response"]
    assert isinstance(text, str)
    assert events == ([TextDelta(text)] if text else []) + [Finish(FinishReason.STOP, None)]
