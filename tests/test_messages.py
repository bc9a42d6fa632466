"""Messages, media and tools: the helpers, and the coercion of everything callers pass in."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import trio_llm
from trio_llm import Image, Message, Text, Tool, ToolCall, assistant, system, tool_result, user
from trio_llm._media import decode_data_uri, sniff_image_type
from trio_llm._messages import coerce_messages, coerce_tools

#: A real 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 8
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 8
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 8
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()


def png_file(tmp_path: Path, name: str = "pixel.png") -> Path:
    path = tmp_path / name
    path.write_bytes(PNG)
    return path


# -- helpers -------------------------------------------------------------------------------------


def test_system_builds_a_system_message() -> None:
    assert system("Be brief.") == Message("system", "Be brief.")


def test_user_with_text_only_has_string_content() -> None:
    assert user("Hello") == Message("user", "Hello")


def test_user_with_images_has_a_text_part_then_image_parts() -> None:
    message = user("What is this?", PNG, Image(url="https://example.com/cat.png"))

    assert message.content == (Text("What is this?"), Image(data=PNG), Image(url="https://example.com/cat.png"))
    assert message.text == "What is this?"
    assert message.images == (Image(data=PNG), Image(url="https://example.com/cat.png"))


def test_user_with_images_and_no_text_has_only_image_parts() -> None:
    assert user("", PNG).content == (Image(data=PNG),)


def test_assistant_keeps_its_tool_calls() -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})

    message = assistant("", tool_calls=[call])

    assert message == Message("assistant", "", tool_calls=(call,))


def test_tool_result_with_a_string_keeps_it_as_is() -> None:
    assert tool_result("call_1", "22 degrees") == Message("tool", "22 degrees", tool_call_id="call_1")


def test_tool_result_with_a_dict_is_json() -> None:
    message = tool_result("call_1", {"temperature": 22, "city": "Париж"}, name="get_weather")

    assert message.role == "tool"
    assert message.tool_call_id == "call_1"
    assert message.name == "get_weather"
    assert isinstance(message.content, str)
    assert json.loads(message.content) == {"temperature": 22, "city": "Париж"}
    assert "Париж" in message.content  # readable, not \\u-escaped


def test_tool_result_with_a_list_is_json() -> None:
    assert json.loads(tool_result("c", [1, "two", None]).text) == [1, "two", None]


def test_tool_result_that_is_not_json_serializable_is_refused() -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match="call_1"):
        tool_result("call_1", {"when": object()})


def test_message_with_an_unknown_role_is_refused() -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match="wizard"):
        Message("wizard", "hi")  # type: ignore[arg-type]


def test_message_text_leaves_images_out() -> None:
    message = Message("user", (Text("a"), Image(data=PNG), Text("b")))

    assert message.text == "ab"
    assert message.images == (Image(data=PNG),)


# -- Image ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"data": PNG, "url": "https://example.com/x.png"}, {"mime_type": "image/png"}],
    ids=["neither", "both", "mime-only"],
)
def test_image_requires_exactly_one_of_data_and_url(kwargs: dict[str, Any]) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match="exactly one of data= or url="):
        Image(**kwargs)


def test_image_bytes_resolve_with_a_sniffed_mime_type() -> None:
    assert Image(data=JPEG).resolved() == (JPEG, "image/jpeg")


def test_image_declared_mime_type_wins_over_sniffing() -> None:
    assert Image(data=b"raw", mime_type="image/heic").resolved() == (b"raw", "image/heic")


def test_image_data_uri_resolves_to_its_bytes() -> None:
    assert Image(url=PNG_URI).resolved() == (PNG, "image/png")


def test_image_url_does_not_resolve_inline() -> None:
    assert Image(url="https://example.com/x.png").resolved() is None


def test_image_of_unknown_format_names_where_it_was() -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"messages\[0\]\.content\[1\]: unknown image format"):
        Image(data=b"not an image").resolved("messages[0].content[1]")


def test_image_repr_does_not_dump_the_bytes() -> None:
    assert f"<{len(PNG)} bytes>" in repr(Image(data=PNG))


# -- media sniffing and data URIs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF, "image/gif"),
        (b"GIF87a" + b"\x00" * 8, "image/gif"),
        (WEBP, "image/webp"),
    ],
    ids=["png", "jpeg", "gif89a", "gif87a", "webp"],
)
def test_image_type_is_sniffed_from_magic_bytes(data: bytes, mime: str) -> None:
    assert sniff_image_type(data) == mime


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"\x89PNG", b"RIFF\x00\x00\x00\x00WAVE", b"RIFFWEBP", b"%PDF-1.7"],
    ids=["empty", "text", "short-png", "riff-wave", "short-riff", "pdf"],
)
def test_unknown_image_types_are_not_guessed(data: bytes) -> None:
    assert sniff_image_type(data) is None


def test_data_uri_decodes_to_bytes_and_declared_type() -> None:
    assert decode_data_uri(PNG_URI, "here") == (PNG, "image/png")


@pytest.mark.parametrize(
    "uri",
    ["data:image/png,rawbytes", "data:image/png;base64", "data:image/png;base64,@@@", "http://x/y.png"],
    ids=["not-base64", "no-comma", "bad-base64", "not-a-data-uri"],
)
def test_bad_data_uris_are_refused_naming_where(uri: str) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"^media\[3\]: "):
        decode_data_uri(uri, "media[3]")


# -- coerce_messages: accepted shapes ------------------------------------------------------------


def test_a_string_is_one_user_message() -> None:
    assert coerce_messages("Hello") == (Message("user", "Hello"),)


def test_a_message_is_kept() -> None:
    assert coerce_messages(system("s")) == (system("s"),)


def test_a_single_dict_is_one_message() -> None:
    assert coerce_messages({"role": "user", "content": "Hi"}) == (Message("user", "Hi"),)


def test_a_list_may_mix_strings_messages_and_dicts() -> None:
    messages = coerce_messages(["first", assistant("reply"), {"role": "user", "content": "second"}])

    assert messages == (Message("user", "first"), Message("assistant", "reply"), Message("user", "second"))


@pytest.mark.parametrize("role", ["system", "user", "assistant"])
def test_dicts_with_string_content(role: str) -> None:
    assert coerce_messages([{"role": role, "content": "text"}]) == (Message(role, "text"),)  # type: ignore[arg-type]


def test_dict_content_null_is_empty_text() -> None:
    assert coerce_messages([{"role": "assistant", "content": None}]) == (Message("assistant", ""),)


def test_dict_extra_keys_are_ignored() -> None:
    assert coerce_messages([{"role": "user", "content": "hi", "refusal": None, "x": 1}]) == (Message("user", "hi"),)


def test_dict_content_parts_with_text_and_image_urls() -> None:
    (message,) = coerce_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare "},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    {"type": "text", "text": "and"},
                    {"type": "image_url", "image_url": {"url": PNG_URI}},
                ],
            }
        ]
    )

    assert message.content == (
        Text("Compare "),
        Image(url="https://example.com/a.png"),
        Text("and"),
        Image(url=PNG_URI),
    )
    assert message.images[1].resolved() == (PNG, "image/png")


def test_dict_content_parts_without_type_and_plain_strings() -> None:
    (message,) = coerce_messages(
        [{"role": "user", "content": ["plain", {"text": "untyped"}, {"image_url": "https://example.com/b.png"}]}]
    )

    assert message.content == (Text("plain"), Text("untyped"), Image(url="https://example.com/b.png"))


def test_dict_assistant_tool_calls_with_json_string_arguments() -> None:
    (message,) = coerce_messages(
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 2}'},
                    },
                    {"id": "call_def", "type": "function", "function": {"name": "now", "arguments": ""}},
                ],
            }
        ]
    )

    assert message.role == "assistant"
    assert message.tool_calls == (
        ToolCall("call_abc", "get_weather", {"city": "Paris", "days": 2}),
        ToolCall("call_def", "now", {}),
    )


def test_dict_tool_call_arguments_may_already_be_a_dict() -> None:
    (message,) = coerce_messages(
        [{"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {"x": [1, 2]}}}]}]
    )

    assert message.tool_calls == (ToolCall("c1", "f", {"x": [1, 2]}),)


def test_dict_tool_message_with_tool_call_id() -> None:
    messages = coerce_messages(
        [
            {"role": "user", "content": "weather?"},
            {"role": "tool", "tool_call_id": "call_abc", "name": "get_weather", "content": '{"t": 22}'},
        ]
    )

    assert messages[1] == Message("tool", '{"t": 22}', tool_call_id="call_abc", name="get_weather")


# -- coerce_messages: refused shapes -------------------------------------------------------------

_IMAGE_PART = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
_FIRST = {"role": "user", "content": "fine"}


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"role": "wizard", "content": "x"}, "messages[1].role"),
        ({"content": "x"}, "messages[1].role"),
        ({"role": None, "content": "x"}, "messages[1].role"),
        (42, "messages[1]"),
        (None, "messages[1]"),
        ({"role": "user", "content": 5}, "messages[1].content"),
        ({"role": "user", "content": {"text": "x"}}, "messages[1].content"),
        ({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}, "messages[1].content[0].type"),
        ({"role": "user", "content": ["ok", 7]}, "messages[1].content[1]"),
        ({"role": "user", "content": [{"type": "text", "text": 5}]}, "messages[1].content[0].text"),
        ({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}, "messages[1].content[0].image_url"),
        ({"role": "tool", "content": "22 degrees"}, "messages[1].tool_call_id"),
        ({"role": "assistant", "content": [_IMAGE_PART]}, "messages[1].content"),
        ({"role": "system", "content": ["look", _IMAGE_PART]}, "messages[1].content"),
        (
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]},
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1, 2]"}}]},
            "messages[1].tool_calls[0].function.arguments",
        ),
    ],
    ids=[
        "unknown-role",
        "missing-role",
        "null-role",
        "int-item",
        "none-item",
        "int-content",
        "dict-content",
        "unknown-part-type",
        "part-not-a-dict",
        "text-part-not-a-string",
        "image-part-without-url",
        "tool-without-call-id",
        "image-on-assistant",
        "image-on-system",
        "arguments-bad-json",
        "arguments-not-an-object",
    ],
)
def test_bad_dicts_are_refused_naming_index_and_field(bad: Any, where: str) -> None:
    with pytest.raises(trio_llm.InvalidRequestError) as caught:
        coerce_messages([_FIRST, bad])

    assert str(caught.value).startswith(where + ":"), str(caught.value)


def test_a_tool_message_object_without_call_id_is_refused() -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"^messages\[1\]\.tool_call_id"):
        coerce_messages([user("hi"), Message("tool", "result")])


def test_a_non_user_message_object_with_images_is_refused() -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"^messages\[2\]\.content"):
        coerce_messages([user("hi"), user("again"), Message("assistant", (Image(data=PNG),))])


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"^messages: at least one message"):
        coerce_messages([])


@pytest.mark.parametrize("bad", [5, None, b"bytes?"], ids=["int", "none", "bytes"])
def test_messages_of_the_wrong_type_are_refused(bad: Any) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"^messages"):
        coerce_messages(bad)


# -- coerce_messages: media= ---------------------------------------------------------------------


def test_media_bytes_are_attached_to_the_user_message() -> None:
    (message,) = coerce_messages("What is this?", media=[(PNG, "pixel.png")])

    assert message.content == (Text("What is this?"), Image(data=PNG, mime_type="image/png"))


def test_media_path_is_read(tmp_path: Path) -> None:
    path = png_file(tmp_path)

    (by_path,) = coerce_messages("look", media=[(path, None)])
    (by_str,) = coerce_messages("look", media=[(str(path), "pixel.png")])

    assert by_path.images == by_str.images == (Image(data=PNG, mime_type="image/png"),)


def test_media_data_uri_is_decoded() -> None:
    (message,) = coerce_messages("look", media=[(PNG_URI, None)])

    assert message.images == (Image(data=PNG, mime_type="image/png"),)


@pytest.mark.parametrize(
    ("data", "mime"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
    ids=["png", "jpeg", "gif", "webp"],
)
def test_media_type_is_sniffed_not_taken_from_the_filename(data: bytes, mime: str) -> None:
    (message,) = coerce_messages("look", media=[(data, "misleading.bmp")])

    assert message.images == (Image(data=data, mime_type=mime),)


def test_media_of_unknown_format_names_its_index() -> None:
    with pytest.raises(trio_llm.InvalidRequestError) as caught:
        coerce_messages("look", media=[(PNG, "ok.png"), (b"%PDF-1.7 not an image", "doc.pdf")])

    message = str(caught.value)
    assert message.startswith("media[1]: not a supported image"), message
    assert "png, jpeg, gif or webp" in message


def test_media_file_that_cannot_be_read_names_its_index(tmp_path: Path) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"^media\[0\]: cannot read"):
        coerce_messages("look", media=[(tmp_path / "missing.png", None)])


@pytest.mark.parametrize(
    "item",
    [PNG, (PNG,), (PNG, None, "extra"), (123, None)],
    ids=["bare-bytes", "one-tuple", "three-tuple", "int-source"],
)
def test_media_items_of_the_wrong_shape_name_their_index(item: Any) -> None:
    with pytest.raises(trio_llm.InvalidRequestError, match=r"^media\[1\]: "):
        coerce_messages("look", media=[(PNG, None), item])


def test_media_goes_to_the_last_user_message() -> None:
    conversation = [user("first"), assistant("ok"), user("second"), assistant("and?")]

    messages = coerce_messages(conversation, media=[(PNG, None), (GIF, None)])

    assert messages[:2] == (user("first"), assistant("ok"))
    assert messages[2].content == (
        Text("second"),
        Image(data=PNG, mime_type="image/png"),
        Image(data=GIF, mime_type="image/gif"),
    )
    assert messages[3] == assistant("and?")
    assert len(messages) == 4


def test_media_follows_the_existing_parts_of_the_last_user_message() -> None:
    earlier = Image(url="https://example.com/a.png")

    (message,) = coerce_messages([user("compare", earlier)], media=[(PNG, None)])

    assert message.content == (Text("compare"), earlier, Image(data=PNG, mime_type="image/png"))


def test_media_on_an_empty_user_message_leaves_no_empty_text_part() -> None:
    (message,) = coerce_messages([user("")], media=[(PNG, None)])

    assert message.content == (Image(data=PNG, mime_type="image/png"),)


def test_media_without_a_user_message_appends_one() -> None:
    messages = coerce_messages([system("Describe images.")], media=[(PNG, None)])

    assert messages == (system("Describe images."), Message("user", (Image(data=PNG, mime_type="image/png"),)))


def test_media_alone_makes_an_otherwise_empty_list_valid() -> None:
    assert coerce_messages([], media=[(PNG, None)]) == (Message("user", (Image(data=PNG, mime_type="image/png"),)),)


# -- coerce_tools --------------------------------------------------------------------------------

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
    "required": ["city"],
}


def test_no_tools_is_an_empty_tuple() -> None:
    assert coerce_tools(None) == ()
    assert coerce_tools([]) == ()


def test_tool_objects_are_kept() -> None:
    tool = Tool("get_weather", "Weather for a city", WEATHER_SCHEMA)

    assert coerce_tools([tool]) == (tool,)


def test_openai_tool_dicts_with_the_function_wrapper() -> None:
    tools = coerce_tools(
        [
            {
                "type": "function",
                "function": {"name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_SCHEMA},
            }
        ]
    )

    assert tools == (Tool("get_weather", "Weather for a city", WEATHER_SCHEMA),)


def test_tool_dicts_without_the_function_wrapper() -> None:
    assert coerce_tools([{"name": "get_weather", "parameters": WEATHER_SCHEMA}]) == (
        Tool("get_weather", "", WEATHER_SCHEMA),
    )


def test_tool_dict_without_parameters_takes_no_arguments() -> None:
    assert coerce_tools([{"name": "now"}]) == (Tool("now"),)
    assert Tool("now").parameters == {"type": "object", "properties": {}}


def test_tool_objects_and_dicts_may_be_mixed() -> None:
    tools = coerce_tools([Tool("a"), {"type": "function", "function": {"name": "b"}}])

    assert [tool.name for tool in tools] == ["a", "b"]


@pytest.mark.parametrize(
    ("tools", "where"),
    [
        ([Tool("same"), {"name": "same"}], "tools[1].name"),
        ([Tool("a"), Tool("b"), Tool("a")], "tools[2].name"),
        ([Tool("")], "tools[0].name"),
        ([{"description": "no name"}], "tools[0].name"),
        ([{"type": "function", "function": {"name": 5}}], "tools[0].name"),
        ([{"type": "function", "function": "get_weather"}], "tools[0].name"),
        ([{"name": "f", "description": 5}], "tools[0].description"),
        ([{"name": "f", "parameters": "object"}], "tools[0].parameters"),
        ([{"name": "f", "parameters": ["city"]}], "tools[0].parameters"),
        ([Tool("f", parameters=None)], "tools[0].parameters"),  # type: ignore[arg-type]
        (["get_weather"], "tools[0]"),
    ],
    ids=[
        "duplicate-object-and-dict",
        "duplicate-later",
        "empty-name",
        "missing-name",
        "non-string-name",
        "function-not-a-dict",
        "non-string-description",
        "string-parameters",
        "list-parameters",
        "none-parameters",
        "not-a-tool",
    ],
)
def test_bad_tools_are_refused_naming_index_and_field(tools: list[Any], where: str) -> None:
    with pytest.raises(trio_llm.InvalidRequestError) as caught:
        coerce_tools(tools)

    assert str(caught.value).startswith(where + ":"), str(caught.value)
