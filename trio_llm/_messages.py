"""Messages, their parts, tools, and the coercion of everything callers pass as messages.

Callers may pass a plain ``str`` (one user message), :class:`Message` objects, or the
OpenAI-style dicts the seeds use; :func:`coerce_messages` turns all of them into one tuple of
frozen :class:`Message` objects, or raises :class:`InvalidRequestError` naming the index and
field that was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Union, get_args

import attrs
import cattrs

from ._errors import InvalidRequestError
from ._events import ToolCall
from ._media import MediaList, decode_data_uri, load_media, sniff_image_type

__all__ = [
    "Image",
    "Message",
    "MessagesInput",
    "Part",
    "Role",
    "Text",
    "Tool",
    "assistant",
    "coerce_messages",
    "coerce_tools",
    "system",
    "tool_result",
    "user",
]

Role = Literal["system", "user", "assistant", "tool"]
_ROLES: tuple[str, ...] = get_args(Role)


def _short_bytes(value: bytes | None) -> str:
    return "None" if value is None else f"<{len(value)} bytes>"


@attrs.frozen
class Text:
    """A text part of a message."""

    text: str


@attrs.frozen
class Image:
    """An image part of a message: the bytes, or a URL (``data:`` URIs included).

    ``mime_type`` is sniffed from the bytes when not given.
    """

    data: bytes | None = attrs.field(default=None, repr=_short_bytes)
    url: str | None = None
    mime_type: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.data is None) == (self.url is None):
            raise InvalidRequestError("Image needs exactly one of data= or url=")

    def resolved(self, where: str = "image") -> tuple[bytes, str] | None:
        """``(bytes, mime)`` for inline images (bytes or ``data:`` URIs), ``None`` for URLs."""
        if self.data is not None:
            data = self.data
            declared = self.mime_type
        elif self.url is not None and self.url.startswith("data:"):
            data, declared = decode_data_uri(self.url, where)
            declared = self.mime_type or declared
        else:
            return None
        mime = declared or sniff_image_type(data)
        if mime is None:
            raise InvalidRequestError(f"{where}: unknown image format; pass mime_type=")
        return data, mime


Part = Union[Text, Image]


def _check_role(_instance: Any, _attribute: Any, value: str) -> None:
    if value not in _ROLES:
        raise InvalidRequestError(f"role {value!r} is not one of {', '.join(_ROLES)}")


def _to_calls(value: Iterable[ToolCall]) -> tuple[ToolCall, ...]:
    return tuple(value)


def _convert_content(value: str | Sequence[Part]) -> str | tuple[Part, ...]:
    if isinstance(value, str):
        return value
    return tuple(value)


@attrs.frozen
class Message:
    """One turn of a conversation.

    Attributes:
        role: ``"system"``, ``"user"``, ``"assistant"`` or ``"tool"``.
        content: A string, or a tuple of :class:`Text` and :class:`Image` parts.
        tool_calls: For assistant turns: the tool calls the model made.
        tool_call_id: For tool turns: the id of the call this result answers.
        name: For tool turns: the tool's name (found from ``tool_call_id`` when omitted).
    """

    role: Role = attrs.field(validator=_check_role)
    content: str | tuple[Part, ...] = attrs.field(converter=_convert_content)
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), kw_only=True, converter=_to_calls)
    tool_call_id: str | None = attrs.field(default=None, kw_only=True)
    name: str | None = attrs.field(default=None, kw_only=True)

    @property
    def text(self) -> str:
        """The text of the message, parts concatenated (images left out)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, Text))

    @property
    def images(self) -> tuple[Image, ...]:
        """The image parts of the message."""
        if isinstance(self.content, str):
            return ()
        return tuple(part for part in self.content if isinstance(part, Image))


@attrs.frozen
class Tool:
    """A function the model may call.

    Attributes:
        name: The function's name.
        description: What it does, for the model.
        parameters: A JSON schema (an ``"object"`` schema) for its arguments.
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = attrs.field(factory=lambda: {"type": "object", "properties": {}})


def system(text: str) -> Message:
    """A system message."""
    return Message("system", text)


def user(text: str, *images: Image | bytes) -> Message:
    """A user message, with optional images (``Image`` parts or raw image bytes)."""
    if not images:
        return Message("user", text)
    parts: list[Part] = [Text(text)] if text else []
    for image in images:
        parts.append(image if isinstance(image, Image) else Image(data=bytes(image)))
    return Message("user", tuple(parts))


def assistant(text: str, *, tool_calls: Sequence[ToolCall] = ()) -> Message:
    """An assistant message (an earlier answer), with the tool calls it made, if any."""
    return Message("assistant", text, tool_calls=tuple(tool_calls))


def tool_result(call_id: str, content: str | Mapping[str, Any] | Sequence[Any], *, name: str | None = None) -> Message:
    """The result of a tool call, to send back to the model.

    ``content`` is a string, or any JSON-serializable value (encoded to JSON here).
    """
    if not isinstance(content, str):
        try:
            content = json.dumps(content, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(f"tool_result({call_id!r}): content is not JSON-serializable") from exc
    return Message("tool", content, tool_call_id=call_id, name=name)


# -- coercion of the seeds' OpenAI-style dicts ------------------------------------------------


_WireContent = Union[str, list[Any], None]
_WireArguments = Union[str, dict[str, Any]]


@attrs.frozen
class _WireFunction:
    name: str
    arguments: _WireArguments = "{}"


@attrs.frozen
class _WireToolCall:
    function: _WireFunction
    id: str = ""
    type: str = "function"


@attrs.frozen
class _WireMessage:
    role: str
    content: _WireContent = None
    tool_calls: list[_WireToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


def _exact(*types: type) -> Any:
    """A structure hook that accepts values of ``types`` as they are, and nothing else."""

    def hook(value: Any, _type: Any) -> Any:
        if not isinstance(value, types):
            raise TypeError(f"expected {' or '.join(t.__name__ for t in types)}, got {type(value).__name__}")
        return value

    return hook


_converter = cattrs.Converter()
_converter.register_structure_hook(str, _exact(str))
_converter.register_structure_hook(_WireContent, _exact(str, list, type(None)))
_converter.register_structure_hook(_WireArguments, _exact(str, dict))


def _error_path(exc: BaseException) -> str:
    """The first field path cattrs recorded in its validation error notes."""
    for note in getattr(exc, "__notes__", ()) or ():
        if "@ attribute" in str(note):
            return str(note).rsplit("@ attribute", 1)[1].strip()
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            path = _error_path(inner)
            if path:
                return path
    return ""


def _part_from_dict(part: Any, where: str) -> Part:
    if isinstance(part, str):
        return Text(part)
    if not isinstance(part, Mapping):
        raise InvalidRequestError(f"{where}: expected a content part dict, got {type(part).__name__}")
    kind = part.get("type")
    if kind == "text" or (kind is None and "text" in part):
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError(f"{where}.text: expected a string")
        return Text(text)
    if kind == "image_url" or (kind is None and "image_url" in part):
        image_url = part.get("image_url")
        url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
        if not isinstance(url, str):
            raise InvalidRequestError(f"{where}.image_url: expected a URL string")
        return Image(url=url)
    raise InvalidRequestError(f"{where}.type: unsupported content part type {kind!r}")


def _tool_call_from_wire(call: _WireToolCall, where: str) -> ToolCall:
    arguments: Any = call.function.arguments
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError as exc:
            raise InvalidRequestError(f"{where}.function.arguments: not valid JSON") from exc
    if not isinstance(arguments, dict):
        raise InvalidRequestError(f"{where}.function.arguments: expected a JSON object")
    return ToolCall(id=call.id or call.function.name, name=call.function.name, arguments=arguments)


def _message_from_dict(raw: Mapping[str, Any], index: int) -> Message:
    where = f"messages[{index}]"
    try:
        wire = _converter.structure(raw, _WireMessage)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        path = _error_path(exc) or "role"
        raise InvalidRequestError(f"{where}.{path}: missing or of the wrong type") from None
    if wire.role not in _ROLES:
        raise InvalidRequestError(f"{where}.role: {wire.role!r} is not one of {', '.join(_ROLES)}")
    content: str | tuple[Part, ...]
    if wire.content is None:
        content = ""
    elif isinstance(wire.content, str):
        content = wire.content
    else:
        content = tuple(_part_from_dict(p, f"{where}.content[{i}]") for i, p in enumerate(wire.content))
    tool_calls = tuple(
        _tool_call_from_wire(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(wire.tool_calls or ())
    )
    return Message(
        wire.role,  # type: ignore[arg-type]  # checked against _ROLES above
        content,
        tool_calls=tool_calls,
        tool_call_id=wire.tool_call_id,
        name=wire.name,
    )


MessagesInput = Union[str, Message, Mapping[str, Any], Sequence[Union[Message, Mapping[str, Any], str]]]


def coerce_messages(messages: MessagesInput, media: MediaList | None = None) -> tuple[Message, ...]:
    """Normalise whatever the caller passed into a non-empty tuple of :class:`Message`.

    ``media`` images are attached to the last user message (one is appended if there is none).

    Raises:
        InvalidRequestError: naming the offending index and field.
    """
    if isinstance(messages, str | Message | Mapping):
        items: Sequence[Any] = [messages]
    elif isinstance(messages, Sequence):
        items = messages
    else:
        raise InvalidRequestError(
            f"messages: expected a str, a Message, a dict or a list of them, got {type(messages).__name__}"
        )
    out: list[Message] = []
    for index, item in enumerate(items):
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, str):
            out.append(Message("user", item))
        elif isinstance(item, Mapping):
            out.append(_message_from_dict(item, index))
        else:
            raise InvalidRequestError(
                f"messages[{index}]: expected a Message, a dict or a str, got {type(item).__name__}"
            )
    if media:
        images = tuple(Image(data=data, mime_type=mime) for data, mime in load_media(media))
        out = _attach_images(out, images)
    if not out:
        raise InvalidRequestError("messages: at least one message is needed")
    for index, message in enumerate(out):
        if message.role == "tool" and not message.tool_call_id:
            raise InvalidRequestError(f"messages[{index}].tool_call_id: a tool message needs the call id")
        if message.role != "user" and message.images:
            raise InvalidRequestError(f"messages[{index}].content: only user messages may carry images")
    return tuple(out)


def _attach_images(messages: list[Message], images: tuple[Image, ...]) -> list[Message]:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "user":
            parts: tuple[Part, ...] = (Text(message.content),) if isinstance(message.content, str) else message.content
            if parts == (Text(""),):
                parts = ()
            messages[index] = attrs.evolve(message, content=parts + images)
            return messages
    return [*messages, Message("user", images)]


def coerce_tools(tools: Sequence[Tool | Mapping[str, Any]] | None) -> tuple[Tool, ...]:
    """Accept :class:`Tool` objects and OpenAI-style tool dicts alike."""
    if not tools:
        return ()
    out: list[Tool] = []
    names: set[str] = set()
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if isinstance(tool, Mapping):
            spec = tool.get("function", tool)
            if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
                raise InvalidRequestError(f"{where}.name: a tool needs a string name")
            parameters = spec.get("parameters", {"type": "object", "properties": {}})
            description = spec.get("description", "")
            if not isinstance(description, str):
                raise InvalidRequestError(f"{where}.description: expected a string")
            spec_tool = Tool(spec["name"], description, parameters)
        elif isinstance(tool, Tool):
            spec_tool = tool
        else:
            raise InvalidRequestError(f"{where}: expected a Tool or a dict, got {type(tool).__name__}")
        if not isinstance(spec_tool.parameters, Mapping):
            raise InvalidRequestError(f"{where}.parameters: expected a JSON schema dict")
        if not spec_tool.name or spec_tool.name in names:
            raise InvalidRequestError(f"{where}.name: tool names must be non-empty and unique")
        names.add(spec_tool.name)
        out.append(spec_tool)
    return tuple(out)
