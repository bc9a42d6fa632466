"""Google Gemini API (the seeds' ``GeminiPro``), over its native REST protocol.

Reads top to bottom: constants; request building; response decoding (sans-IO); errors; the
provider class. Streaming uses ``:streamGenerateContent?alt=sse``; :meth:`Gemini.complete`
uses ``:generateContent``. The key travels in the ``x-goog-api-key`` header, never the URL.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import httpx
import trio

from .._decoding import BodyDecoder, Decoder, SSEStreamDecoder, loads
from .._errors import (
    APIStatusError,
    AuthenticationError,
    ContentBlockedError,
    InvalidRequestError,
    MissingAuthError,
    ModelNotFoundError,
    ProtocolError,
    StreamTruncatedError,
)
from .._events import Event, Finish, FinishReason, ImageOutput, ReasoningDelta, TextDelta, ToolCall, Usage
from .._http import HTTPCall, status_error
from .._messages import Image, Message, Text
from .._provider import ChatRequest, Provider
from .._wire import camel_case_converter, structure

__all__ = ["Gemini"]

# -- constants ---------------------------------------------------------------------------------

BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
DEFAULT_MODEL = "gemini-2.5-flash"
#: Served when no key is set (the seeds' last native list), and the class-level ``Gemini.models``.
FALLBACK_MODELS = (
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.5-pro",
    "gemma-3-1b-it",
    "gemma-3-12b-it",
    "gemma-3-27b-it",
    "gemma-3-4b-it",
    "gemma-3n-e2b-it",
    "gemma-3n-e4b-it",
)
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MAX_MODEL_PAGES = 100

_FINISH_REASONS: dict[str, FinishReason] = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    "SAFETY": FinishReason.CONTENT_FILTER,
    "RECITATION": FinishReason.CONTENT_FILTER,
    "LANGUAGE": FinishReason.CONTENT_FILTER,
    "BLOCKLIST": FinishReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "SPII": FinishReason.CONTENT_FILTER,
    "IMAGE_SAFETY": FinishReason.CONTENT_FILTER,
    "IMAGE_PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "IMAGE_RECITATION": FinishReason.CONTENT_FILTER,
    "MALFORMED_FUNCTION_CALL": FinishReason.ERROR,
    "UNEXPECTED_TOOL_CALL": FinishReason.ERROR,
    "TOO_MANY_TOOL_CALLS": FinishReason.ERROR,
}


def map_finish_reason(raw: str, *, made_tool_calls: bool) -> FinishReason:
    """Gemini's ``finishReason`` in provider-neutral terms (unknown values are ``OTHER``).

    Gemini says ``STOP`` after function calls too; it is reported as ``TOOL_CALLS`` then, so
    a tool loop can be written once for every provider (``raw`` keeps ``"STOP"``).
    """
    reason = _FINISH_REASONS.get(raw, FinishReason.OTHER)
    if reason is FinishReason.STOP and made_tool_calls:
        return FinishReason.TOOL_CALLS
    return reason


# -- request building --------------------------------------------------------------------------


def model_path(model: str) -> str:
    """``models/<id>`` (or ``tunedModels/<id>``) for the URL, refusing anything URL-unsafe."""
    for prefix in ("models/", "tunedModels/"):
        if model.startswith(prefix):
            name = model[len(prefix) :]
            break
    else:
        prefix, name = "models/", model
    if not _MODEL_NAME.fullmatch(name):
        raise InvalidRequestError(f"model {model!r} is not a valid Gemini model name", provider="gemini")
    return prefix + name


def _image_part(image: Image, where: str) -> dict[str, Any]:
    inline = image.resolved(where)
    if inline is not None:
        data, mime = inline
        return {"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode("ascii")}}
    file_data: dict[str, Any] = {"fileUri": image.url}
    if image.mime_type:
        file_data["mimeType"] = image.mime_type
    return {"fileData": file_data}


def _tool_response(content: str) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except ValueError:
        return {"result": content}
    return value if isinstance(value, dict) else {"result": value}


def _message_parts(message: Message, index: int, call_names: Mapping[str, str]) -> list[dict[str, Any]]:
    where = f"messages[{index}]"
    if message.role == "tool":
        name = message.name or call_names.get(message.tool_call_id or "")
        if name is None:
            raise InvalidRequestError(
                f"{where}.tool_call_id: {message.tool_call_id!r} answers no earlier tool call;"
                " pass name= to tool_result",
                provider="gemini",
            )
        return [{"functionResponse": {"name": name, "response": _tool_response(message.text)}}]
    parts: list[dict[str, Any]] = []
    if isinstance(message.content, str):
        if message.content:
            parts.append({"text": message.content})
    else:
        for number, part in enumerate(message.content):
            if isinstance(part, Text):
                if part.text:
                    parts.append({"text": part.text})
            else:
                parts.append(_image_part(part, f"{where}.content[{number}]"))
    for call in message.tool_calls:
        call_part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.arguments}}
        if call.thought_signature:
            call_part["thoughtSignature"] = call.thought_signature
        parts.append(call_part)
    if not parts:
        raise InvalidRequestError(f"{where}.content: the message is empty", provider="gemini")
    return parts


def _declaration(tool: Any) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    parameters = dict(tool.parameters)
    # Gemini refuses an OBJECT schema with no properties: a tool without arguments omits it.
    if parameters.get("properties") or parameters.get("type") not in (None, "object"):
        declaration["parameters"] = parameters
    return declaration


#: Request options as ``generationConfig`` fields.
_GENERATION_CONFIG = MappingProxyType(
    {
        "temperature": "temperature",
        "max_tokens": "maxOutputTokens",
        "top_p": "topP",
        "top_k": "topK",
        "stop": "stopSequences",
    }
)


def build_body(request: ChatRequest) -> dict[str, Any]:
    """The ``GenerateContentRequest`` JSON for ``request``."""
    call_names = {call.id: call.name for message in request.messages for call in message.tool_calls}
    system_texts: list[str] = []
    contents: list[dict[str, Any]] = []
    for index, message in enumerate(request.messages):
        if message.role == "system":
            system_texts.append(message.text)
            continue
        role = "model" if message.role == "assistant" else "user"
        parts = _message_parts(message, index, call_names)
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)  # Gemini wants turns to alternate
        else:
            contents.append({"role": role, "parts": parts})
    if not contents:
        raise InvalidRequestError("messages: Gemini needs at least one non-system message", provider="gemini")
    body: dict[str, Any] = {"contents": contents}
    if system_texts:
        body["systemInstruction"] = {"parts": [{"text": "\n".join(system_texts)}]}
    config = request.options_as(_GENERATION_CONFIG)
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(tool) for tool in request.tools]}]
    return body


# -- response decoding (sans-IO) ---------------------------------------------------------------


@attrs.frozen
class _FunctionCall:
    name: str
    args: dict[str, Any] | None = None
    id: str | None = None


@attrs.frozen
class _Blob:
    data: str
    mime_type: str | None = None


@attrs.frozen
class _FileData:
    file_uri: str
    mime_type: str | None = None


@attrs.frozen
class _Part:
    text: str | None = None
    thought: bool | None = None
    thought_signature: str | None = None
    function_call: _FunctionCall | None = None
    inline_data: _Blob | None = None
    file_data: _FileData | None = None


@attrs.frozen
class _Content:
    parts: list[_Part] = attrs.Factory(list)
    role: str | None = None


@attrs.frozen
class _Candidate:
    content: _Content | None = None
    finish_reason: str | None = None
    finish_message: str | None = None


@attrs.frozen
class _PromptFeedback:
    block_reason: str | None = None
    block_reason_message: str | None = None


@attrs.frozen
class _UsageMetadata:
    prompt_token_count: int | None = None
    candidates_token_count: int | None = None
    total_token_count: int | None = None
    thoughts_token_count: int | None = None
    cached_content_token_count: int | None = None


@attrs.frozen
class _Response:
    candidates: list[_Candidate] = attrs.Factory(list)
    prompt_feedback: _PromptFeedback | None = None
    # usageMetadata is read separately, only when it is emitted (see GeminiInterpreter).


_converter = camel_case_converter()


class GeminiInterpreter:
    """Turns ``GenerateContentResponse`` payloads into events.

    Usage is cumulative in every chunk; one :class:`Usage` (the last count) is emitted just
    before the :class:`Finish`. A stream without a ``finishReason`` is truncated.

    Most chunks of a stream are one candidate with plain text parts. Those take a fast path
    that checks every type it touches; anything else (finish, tool calls, images, thoughts,
    a blocked prompt, a field of the wrong type) is structured by the cattrs converter, which
    is also what reports a malformed payload. ``usageMetadata`` is type-checked in every
    chunk but structured only when emitted: every chunk repeats it and only the last counts.
    """

    __slots__ = ("_calls", "_finished", "_usage_raw", "_usage_sent")

    def __init__(self) -> None:
        self._usage_raw: Any = None
        self._usage_sent: Usage | None = None
        self._finished = False
        self._calls = 0

    def on_data(self, data: str) -> list[Event]:
        obj = loads(data, "gemini")
        if type(obj) is not dict:
            raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}", provider="gemini")
        if "error" in obj:
            raise error_from_payload(obj, status=None, headers={})
        usage = obj.get("usageMetadata")
        if usage is not None:
            _check_usage(usage)
            self._usage_raw = usage
        plain = _plain_text_events(obj)
        if plain is not None:
            return plain
        response = structure(_converter, obj, _Response, provider="gemini", what="a GenerateContentResponse")
        events: list[Event] = []
        if not response.candidates:
            feedback = response.prompt_feedback
            if feedback is not None and feedback.block_reason:
                detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
                raise ContentBlockedError(
                    f"the prompt was blocked ({feedback.block_reason}){detail}",
                    provider="gemini",
                    reason=feedback.block_reason,
                )
            if self._finished:
                self._emit_usage(events)
            return events
        candidate = response.candidates[0]
        if candidate.content is not None:
            for part in candidate.content.parts:
                event = self._part_event(part)
                if event is not None:
                    events.append(event)
        if candidate.finish_reason and not self._finished:
            self._finished = True
            self._emit_usage(events)
            raw = candidate.finish_reason
            events.append(Finish(map_finish_reason(raw, made_tool_calls=self._calls > 0), raw))
        return events

    def usage_so_far(self) -> Usage | None:
        """The last ``usageMetadata`` seen (Gemini sends a running count in every chunk)."""
        if self._usage_raw is None:
            return None
        return _usage(structure(_converter, self._usage_raw, _UsageMetadata, provider="gemini", what="usageMetadata"))

    def _emit_usage(self, events: list[Event]) -> None:
        if self._usage_raw is None:
            return
        meta = structure(_converter, self._usage_raw, _UsageMetadata, provider="gemini", what="usageMetadata")
        usage = _usage(meta)
        if usage != self._usage_sent:
            events.append(usage)
            self._usage_sent = usage

    def _part_event(self, part: _Part) -> Event | None:
        if part.function_call is not None:
            call = part.function_call
            self._calls += 1
            return ToolCall(
                id=call.id or f"call_{self._calls}_{call.name}",
                name=call.name,
                arguments=call.args or {},
                thought_signature=part.thought_signature,
            )
        if part.text is not None:
            if not part.text:
                return None
            return ReasoningDelta(part.text) if part.thought else TextDelta(part.text)
        if part.inline_data is not None:
            try:
                data = base64.b64decode(part.inline_data.data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ProtocolError("inlineData is not valid base64", provider="gemini") from exc
            return ImageOutput(data=data, mime_type=part.inline_data.mime_type)
        if part.file_data is not None:
            return ImageOutput(url=part.file_data.file_uri, mime_type=part.file_data.mime_type)
        return None

    def on_end(self) -> list[Event]:
        if not self._finished:
            raise StreamTruncatedError("the stream ended without a finishReason", provider="gemini")
        return []


def _check_usage(usage: Any) -> None:
    """Every chunk's usageMetadata is checked (cheaply), though only the last is emitted."""
    if type(usage) is dict:
        for key, value in usage.items():
            if type(value) is not int and key.endswith("Count"):
                break  # a count that is not an int: the converter says what is wrong
        else:
            return
    structure(_converter, usage, _UsageMetadata, provider="gemini", what="usageMetadata")


def _plain_text_events(obj: dict[str, Any]) -> list[Event] | None:
    """The events of a chunk that is one candidate with only plain text parts, no finish and
    no prompt feedback; ``None`` for any other shape (the converter then handles it)."""
    candidates = obj.get("candidates")
    if type(candidates) is not list or not candidates or "promptFeedback" in obj:
        return None
    candidate = candidates[0]
    if type(candidate) is not dict or "finishReason" in candidate or "finishMessage" in candidate:
        return None
    content = candidate.get("content")
    if type(content) is not dict:
        return None
    parts = content.get("parts")
    if type(parts) is not list or type(content.get("role", "")) is not str:
        return None
    events: list[Event] = []
    for part in parts:
        if type(part) is not dict or len(part) != 1:
            return None
        text = part.get("text")
        if type(text) is not str:
            return None
        if text:
            events.append(TextDelta(text))
    return events


def _usage(meta: _UsageMetadata) -> Usage:
    return Usage(
        prompt_tokens=meta.prompt_token_count,
        completion_tokens=meta.candidates_token_count,
        total_tokens=meta.total_token_count,
        reasoning_tokens=meta.thoughts_token_count,
        cached_tokens=meta.cached_content_token_count,
    )


# -- errors ------------------------------------------------------------------------------------


def _details(error: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    details = error.get("details")
    return [d for d in details if isinstance(d, Mapping)] if isinstance(details, list) else []


def _retry_delay(details: list[Mapping[str, Any]]) -> float | None:
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return max(0.0, float(delay[:-1]))
                except ValueError:
                    return None
    return None


def error_from_payload(
    payload: Mapping[str, Any], *, status: int | None, headers: Mapping[str, str], body: bytes | None = None
) -> APIStatusError:
    """The typed error for Google's ``{"error": {"code", "message", "status", "details"}}``.

    Used for HTTP error responses and for error objects inside a 200 stream alike.
    """
    error = payload.get("error")
    error = error if isinstance(error, Mapping) else {}
    code = error.get("code")
    status_code = status if status is not None else (code if isinstance(code, int) else 500)
    message = error.get("message") if isinstance(error.get("message"), str) else None
    canonical = error.get("status") if isinstance(error.get("status"), str) else None
    details = _details(error)
    reasons = {str(d.get("reason")) for d in details if d.get("reason")}
    text = message or f"HTTP {status_code}"
    if canonical:
        text = f"{text} [{canonical}]"
    cls: type[APIStatusError] | None = None
    if "API_KEY_INVALID" in reasons or (status_code == 400 and message and "API key not valid" in message):
        cls = AuthenticationError
    elif status_code == 404 and message and "model" in message.lower():
        cls = ModelNotFoundError
    raw = body if body is not None else json.dumps(payload).encode()
    return status_error(
        status_code,
        headers,
        raw,
        provider="gemini",
        cls=cls,
        message=text,
        retry_after=_retry_delay(details),
    )


# -- the provider ------------------------------------------------------------------------------


@attrs.define(slots=False)
class Gemini(Provider):
    """Google's Gemini API.

    Args:
        api_key: The API key; ``GEMINI_API_KEY`` (then ``GOOGLE_API_KEY``) from the
            environment when omitted. Sent in the ``x-goog-api-key`` header.
        use_auth_header: Send ``Authorization: Bearer <api_key>`` instead (for proxies and
            OAuth access tokens).

    Example::

        async with trio_llm.Gemini() as gemini:
            async with gemini.stream("Tell me a story", max_tokens=200) as events:
                async for event in events:
                    if isinstance(event, trio_llm.TextDelta):
                        print(event.text, end="")
    """

    name = "gemini"
    label = "Google Gemini API"
    default_base_url = BASE_URL
    needs_auth = True
    supports_vision = True
    supports_tools = True
    supports_images_output = True
    model_default = DEFAULT_MODEL
    known_models = FALLBACK_MODELS

    api_key: str | None = attrs.field(default=None, repr=False)
    use_auth_header: bool = attrs.field(default=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.api_key is None:
            self.api_key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or None

    def _check_request(self, request: ChatRequest) -> None:
        super()._check_request(request)
        if not self.api_key:
            raise MissingAuthError(
                "no API key: pass api_key= or set GEMINI_API_KEY (or GOOGLE_API_KEY)", provider=self.name
            )
        model_path(request.model)

    def _http_call(self, request: ChatRequest, *, streaming: bool) -> HTTPCall:
        path = model_path(request.model)
        if streaming:
            url = f"{self.base_url}/{path}:streamGenerateContent?alt=sse"
        else:
            url = f"{self.base_url}/{path}:generateContent"
        return HTTPCall("POST", url, json=build_body(request))

    def _decoder(self, request: ChatRequest, *, streaming: bool) -> Decoder:
        interpreter = GeminiInterpreter()
        return SSEStreamDecoder(interpreter) if streaming else BodyDecoder(interpreter)

    async def _auth_headers(self, client: httpx.AsyncClient) -> Mapping[str, str]:
        await trio.lowlevel.checkpoint()
        if not self.api_key:
            return {}
        if self.use_auth_header:
            return {"authorization": f"Bearer {self.api_key}"}
        return {"x-goog-api-key": self.api_key}

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, list) and payload and isinstance(payload[0], dict):
            payload = payload[0]
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            return error_from_payload(payload, status=status, headers=headers, body=body)
        return status_error(status, headers, body, provider=self.name)

    async def _fetch_models(self) -> list[str]:
        """``GET /models``, every page, keeping models that can ``generateContent``."""
        if not self.api_key:
            await trio.lowlevel.checkpoint()
            return list(FALLBACK_MODELS)
        names: list[str] = []
        token: str | None = None
        seen: set[str] = set()
        for _page in range(_MAX_MODEL_PAGES):
            params = {"pageSize": "1000"}
            if token:
                params["pageToken"] = token
            payload = await self._get_json(f"{self.base_url}/models", params)
            if not isinstance(payload, dict):
                raise ProtocolError("the model list is not a JSON object", provider=self.name)
            for entry in payload.get("models") or ():
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise ProtocolError("a model entry has no name", provider=self.name)
                if "generateContent" in (entry.get("supportedGenerationMethods") or ()):
                    names.append(entry["name"].rpartition("/")[2])
            token = payload.get("nextPageToken") or None
            if not token:
                return sorted(set(names))
            if token in seen:
                raise ProtocolError("the model list repeats a page token", provider=self.name)
            seen.add(token)
        raise ProtocolError(f"the model list has more than {_MAX_MODEL_PAGES} pages", provider=self.name)
