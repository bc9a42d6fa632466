"""Any service that speaks OpenAI's chat-completions API: OpenAI itself, local model servers,
gateways.

Reads top to bottom: constants; request building; errors; the provider class. The wire
format itself (messages, tools, chunk decoding, tool-call delta assembly) lives once in
:mod:`trio_llm._chat_completions`, shared with the other providers that speak a dialect of it.
Streaming sends ``stream: true`` with ``stream_options: {"include_usage": true}`` so the final
chunk carries the token counts; :meth:`OpenAICompatible.complete` sends ``stream: false``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import httpx
import trio

from .._chat_completions import ChatCompletionsInterpreter, openai_messages, openai_tools
from .._decoding import BodyDecoder, Decoder, SSEStreamDecoder
from .._errors import APIStatusError, AuthenticationError, ModelNotFoundError, ProtocolError
from .._http import HTTPCall, status_error
from .._provider import ChatRequest, Provider

__all__ = ["OpenAICompatible"]

# -- constants ---------------------------------------------------------------------------------

BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"

# -- request building --------------------------------------------------------------------------


def build_body(request: ChatRequest, *, streaming: bool) -> dict[str, Any]:
    """The chat-completions request JSON: only the options the caller set are sent."""
    body: dict[str, Any] = {"model": request.model, "messages": openai_messages(request.messages)}
    if streaming:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    # top_k is not an OpenAI parameter (OpenAI refuses it), but many local servers take it; like
    # every option it is sent only when the caller asked for it.
    body.update(request.options_as({name: name for name in ("temperature", "max_tokens", "top_p", "top_k", "stop")}))
    if request.tools:
        body["tools"] = openai_tools(request.tools)
    return body


# -- errors ------------------------------------------------------------------------------------


def openai_status_error(
    status: int, headers: Mapping[str, str], body: bytes, *, provider: str, secret: str | None = None
) -> APIStatusError:
    """The typed error for an OpenAI error body ``{"error": {"message", "type", "param", "code"}}``.

    The message is OpenAI's, with the ``code`` (or ``type``) in brackets. ``model_not_found``
    (or a 404 about a model, as gateways send it) is a :class:`ModelNotFoundError`;
    ``invalid_api_key`` an :class:`AuthenticationError` whatever the status. ``secret`` is
    removed from the message should the server echo it.
    """
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return status_error(status, headers, body, provider=provider)
    message = error.get("message") if isinstance(error.get("message"), str) else None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    kind = error.get("type") if isinstance(error.get("type"), str) else None
    cls: type[APIStatusError] | None = None
    if code == "model_not_found" or (status == 404 and message and "model" in message.lower()):
        cls = ModelNotFoundError
    elif code == "invalid_api_key":
        cls = AuthenticationError
    text = message or f"HTTP {status}"
    if secret:
        text = text.replace(secret, "***")
    tag = code or kind
    if tag:
        text = f"{text} [{tag}]"
    return status_error(status, headers, body, provider=provider, cls=cls, message=text)


# -- the provider ------------------------------------------------------------------------------


@attrs.define(slots=False)
class OpenAICompatible(Provider):
    """Any server that speaks OpenAI's chat-completions API.

    Args:
        base_url: The API root, ending before ``/chat/completions``: OpenAI's
            ``https://api.openai.com/v1``, a local server's ``http://localhost:11434/v1``, a
            gateway's URL.
        api_key: Sent as ``Authorization: Bearer <api_key>``; with ``None`` no
            ``Authorization`` header is sent at all (local servers need none). It is never
            read from the environment: a key meant for one service must not travel to another
            ``base_url`` by accident.

    Example::

        llm = trio_llm.OpenAICompatible("http://localhost:11434/v1", default_model="llama3.2")
        async with llm.stream("Tell me a story") as events:
            async for event in events:
                if isinstance(event, trio_llm.TextDelta):
                    print(event.text, end="")
    """

    name = "openai"
    label = "OpenAI-compatible API"
    default_base_url = BASE_URL
    needs_auth = False
    supports_vision = True
    supports_tools = True
    model_default = DEFAULT_MODEL

    base_url: str = attrs.field()
    api_key: str | None = attrs.field(default=None, repr=False)

    def _http_call(self, request: ChatRequest, *, streaming: bool) -> HTTPCall:
        return HTTPCall("POST", f"{self.base_url}/chat/completions", json=build_body(request, streaming=streaming))

    def _decoder(self, request: ChatRequest, *, streaming: bool) -> Decoder:
        interpreter = ChatCompletionsInterpreter(self.name, streaming=streaming)
        return SSEStreamDecoder(interpreter) if streaming else BodyDecoder(interpreter)

    async def _auth_headers(self, client: httpx.AsyncClient) -> Mapping[str, str]:
        await trio.lowlevel.checkpoint()
        if not self.api_key:
            return {}
        return {"authorization": f"Bearer {self.api_key}"}

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
        return openai_status_error(status, headers, body, provider=self.name, secret=self.api_key)

    async def _fetch_models(self) -> list[str]:
        """``GET {base_url}/models``: the ``id`` of every entry of ``data``, sorted."""
        payload = await self._get_json(f"{self.base_url}/models")
        entries = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(entries, list):
            raise ProtocolError("the model list has no 'data' list", provider=self.name)
        names: set[str] = set()
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise ProtocolError("a model entry has no string 'id'", provider=self.name)
            names.add(entry["id"])
        return sorted(names)
