"""Dynaspark (the seeds' ``Dynaspark``): one multipart form in, one JSON answer out.

Reads top to bottom: constants; request building (the flattened prompt and the one image);
response decoding (sans-IO); the provider class. The service is not streamed: :meth:`stream`
yields the whole answer as one :class:`~trio_llm.TextDelta` and a :class:`~trio_llm.Finish`.
The service is unofficial and may be gone; :class:`trio_llm.testing.Emulator` speaks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import attrs

from .._decoding import BodyDecoder, Decoder, loads
from .._errors import ConfigurationError, InvalidRequestError, ProtocolError, ServerError
from .._events import Event, Finish, FinishReason, TextDelta
from .._http import HTTPCall
from .._media import decode_data_uri, require_image_type
from .._messages import Image, Message
from .._provider import ChatRequest, Provider

__all__ = ["Dynaspark"]

# -- constants ---------------------------------------------------------------------------------

BASE_URL = "https://dynaspark.onrender.com"
#: The service renamed its route once (to ``/dsai_fuck_u_spammer``, 2025-05); ``path=`` follows it.
DEFAULT_PATH = "/generate_response"
DEFAULT_MODEL = "gemini-1.5-flash"
MODELS = ("gemini-1.5-flash", "gemini-1.5-flash-8b", "gemini-2.0-flash", "gemini-2.0-flash-lite")
#: The seeds' table. Its keys are served names too, so asking for ``gemini-1.5-flash`` (the
#: default) sends ``gemini-1.5-flash-8b``: the alias wins, as it did when the seeds' mixin
#: resolved it.
MODEL_ALIASES: Mapping[str, str] = MappingProxyType(
    {"gemini-1.5-flash": "gemini-1.5-flash-8b", "gemini-2.0-flash": "gemini-2.0-flash-lite"}
)

#: What the site's own page sends (the service answers browsers).
_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "accept": "*/*",
        "accept-language": "en-US,en;q=0.9",
        "user-agent": (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36"
        ),
        "x-requested-with": "XMLHttpRequest",
    }
)
_EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
)

# -- request building --------------------------------------------------------------------------


def format_prompt(messages: Sequence[Message]) -> str:
    """The conversation as one text, as the seeds' ``format_prompt`` wrote it.

    A single message is sent as it is. Otherwise each message with some text becomes a
    ``Role: text`` line (``System:``, ``User:``, ``Assistant:``, ``Tool:``), and a last line
    ``Assistant:`` asks for the next turn. Images are not part of the text.
    """
    if len(messages) == 1:
        return messages[0].text
    lines = [f"{m.role.capitalize()}: {m.text}" for m in messages if m.text.strip()]
    return "\n".join([*lines, "Assistant:"])


def image_file(messages: Sequence[Message]) -> tuple[str, bytes, str] | None:
    """The ``file`` part: ``(filename, bytes, mime type)`` of the one image, or ``None``.

    The mime type is sniffed from the bytes (png, jpeg, gif or webp); a declared type is not
    trusted. The service takes the image itself, so an ``http(s)`` URL is refused.

    Raises:
        InvalidRequestError: More than one image, an image URL, or bytes that are no image.
    """
    found: list[tuple[str, Image]] = []
    for index, message in enumerate(messages):
        if not isinstance(message.content, str):
            for number, part in enumerate(message.content):
                if isinstance(part, Image):
                    found.append((f"messages[{index}].content[{number}]", part))
    if not found:
        return None
    if len(found) > 1:
        raise InvalidRequestError(
            f"Dynaspark takes one image per request; the messages carry {len(found)}", provider="dynaspark"
        )
    where, image = found[0]
    if image.data is not None:
        data = image.data
    elif image.url is not None and image.url.startswith("data:"):
        data, _declared = decode_data_uri(image.url, where)
    else:
        raise InvalidRequestError(
            f"{where}: Dynaspark needs the image's bytes (or a data: URI), not a URL", provider="dynaspark"
        )
    mime = require_image_type(data, where)
    return f"image.{_EXTENSIONS[mime]}", data, mime


def _origin(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


# -- response decoding (sans-IO) ---------------------------------------------------------------


def _keys(obj: dict[str, Any]) -> str:
    keys = sorted(str(key) for key in obj)
    if not keys:
        return "none (an empty object)"
    shown = ", ".join(repr(key) for key in keys[:10])
    return shown + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")


class DynasparkInterpreter:
    """Turns the reply ``{"response": "..."}`` into a :class:`TextDelta` and a ``Finish(STOP)``;
    the service's ``{"error": "..."}`` into a :class:`~trio_llm.ServerError`."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = False

    def on_data(self, data: str) -> list[Event]:
        obj = loads(data, "dynaspark")
        if type(obj) is not dict:
            raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}", provider="dynaspark")
        if "response" not in obj:
            error = obj.get("error")
            if isinstance(error, str) and error:
                # The service's own error object, in a 200 reply: the same error as with a 5xx
                # status (and retried the same way while nothing has reached the caller).
                raise ServerError(
                    f"{error[:200]} (an error in a 200 reply)", status_code=500, provider="dynaspark", body=obj
                )
            raise ProtocolError(f"the reply has no 'response'; it had the keys {_keys(obj)}", provider="dynaspark")
        text = obj["response"]
        if not isinstance(text, str):
            raise ProtocolError(f"'response' is a {type(text).__name__}, not a string", provider="dynaspark")
        self._done = True
        events: list[Event] = [TextDelta(text)] if text else []
        events.append(Finish(FinishReason.STOP, None))
        return events

    def on_end(self) -> list[Event]:
        if not self._done:
            raise ProtocolError("the reply was empty", provider="dynaspark")
        return []


# -- the provider ------------------------------------------------------------------------------


def _check_path(_instance: Any, _attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.startswith("/") or "?" in value or "#" in value:
        raise ConfigurationError(f"path must start with '/' and have no query, got {value!r}", provider="dynaspark")


@attrs.define(slots=False)
class Dynaspark(Provider):
    """Dynaspark: a free, unofficial front end to Gemini models. No key.

    The service takes one text and at most one image per request, so the flags
    ``supports_system_message`` and ``supports_message_history`` are ``False`` as in the
    seeds: a system message and earlier turns are not refused but flattened into the text as
    ``Role: text`` lines, as the seeds' ``format_prompt`` did. ``temperature``,
    ``max_tokens``, ``top_p``, ``top_k`` and ``stop`` are not sent: the service has no such
    fields.

    Args:
        path: The route below ``base_url`` (``/generate_response``; the service once renamed it).

    Example::

        async with trio_llm.Dynaspark() as dynaspark:
            reply = await dynaspark.complete("Describe this picture", media=[("cat.jpg", None)])
            print(reply.text)
    """

    name = "dynaspark"
    label = "Dynaspark"
    default_base_url = BASE_URL
    supports_system_message = False
    supports_message_history = False
    supports_vision = True
    model_default = DEFAULT_MODEL
    known_models = MODELS
    model_aliases = MODEL_ALIASES

    path: str = attrs.field(default=DEFAULT_PATH, kw_only=True, validator=_check_path)

    def _check_request(self, request: ChatRequest) -> None:
        super()._check_request(request)
        image_file(request.messages)

    def _http_call(self, request: ChatRequest, *, streaming: bool) -> HTTPCall:
        origin = _origin(self.base_url)
        # Every field goes in ``files`` so that the body is multipart even without an image;
        # a part with no filename is a plain text field.
        fields: dict[str, tuple[str | None, bytes, str | None]] = {
            "user_input": (None, format_prompt(request.messages).encode(), None),
            "ai_model": (None, request.model.encode(), None),
        }
        image = image_file(request.messages)
        if image is not None:
            fields["file"] = image
        headers = {**_HEADERS, "origin": origin, "referer": origin + "/"}
        return HTTPCall("POST", f"{self.base_url}{self.path}", headers=headers, files=fields)

    def _decoder(self, request: ChatRequest, *, streaming: bool) -> Decoder:
        return BodyDecoder(DynasparkInterpreter())
