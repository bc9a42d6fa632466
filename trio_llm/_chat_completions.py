"""The OpenAI chat-completions wire format, written once for every provider that speaks it.

``OpenAICompatible`` speaks it exactly; GigaChat and AmigoChat speak dialects of it (GigaChat
sends ``function_call`` objects instead of ``tool_calls``, with its own finish reasons). The
dialect is a few constructor arguments, not a copy of this module.

Reads top to bottom: request building (messages and tools); response decoding (sans-IO,
for both streamed ``chat.completion.chunk`` events ended by ``[DONE]`` and a whole
``chat.completion`` body); error objects.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, Union

import attrs

from ._decoding import loads
from ._errors import APIStatusError, ProtocolError, StreamTruncatedError
from ._events import Event, Finish, FinishReason, ReasoningDelta, TextDelta, ToolCall, Usage
from ._http import status_error
from ._messages import Message, Text, Tool
from ._wire import snake_case_converter, structure

__all__ = [
    "OPENAI_FINISH_REASONS",
    "ChatCompletionsInterpreter",
    "error_from_payload",
    "json_object",
    "openai_messages",
    "openai_tools",
]

#: ``finish_reason`` values of the OpenAI API.
OPENAI_FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}

# -- request building --------------------------------------------------------------------------


def _image_url(image: Any, where: str) -> str:
    inline = image.resolved(where)
    if inline is None:
        return str(image.url)
    data, mime = inline
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages as OpenAI ``messages``: images as ``image_url`` parts (data URIs for bytes),
    earlier tool calls as ``tool_calls`` with JSON-string arguments, tool results as ``tool``
    messages."""
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        entry: dict[str, Any] = {"role": message.role}
        if isinstance(message.content, str):
            entry["content"] = message.content
        else:
            entry["content"] = [
                {"type": "text", "text": part.text}
                if isinstance(part, Text)
                else {"type": "image_url", "image_url": {"url": _image_url(part, f"messages[{index}].content[{n}]")}}
                for n, part in enumerate(message.content)
            ]
        if message.tool_calls:
            entry["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
                }
                for call in message.tool_calls
            ]
            if not entry["content"]:
                entry["content"] = None
        if message.role == "tool":
            entry["tool_call_id"] = message.tool_call_id
        if message.name and message.role != "tool":
            entry["name"] = message.name
        out.append(entry)
    return out


def openai_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """Tools as OpenAI ``tools`` (the JSON schema kept whole)."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
        }
        for t in tools
    ]


# -- response decoding (sans-IO) ---------------------------------------------------------------

_Arguments = Union[str, dict[str, Any], None]


@attrs.frozen
class _FunctionDelta:
    name: str | None = None
    arguments: _Arguments = None


@attrs.frozen
class _ToolCallDelta:
    index: int = 0
    id: str | None = None
    function: _FunctionDelta | None = None


@attrs.frozen
class _Delta:
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None
    function_call: _FunctionDelta | None = None
    functions_state_id: str | None = None


@attrs.frozen
class _Choice:
    index: int = 0
    delta: _Delta | None = None
    message: _Delta | None = None
    text: str | None = None  # the legacy completions shape some servers still send
    finish_reason: str | None = None


@attrs.frozen
class _CompletionDetails:
    reasoning_tokens: int | None = None


@attrs.frozen
class _PromptDetails:
    cached_tokens: int | None = None


@attrs.frozen
class _Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    completion_tokens_details: _CompletionDetails | None = None
    prompt_tokens_details: _PromptDetails | None = None
    precached_prompt_tokens: int | None = None  # GigaChat's name for cached tokens


@attrs.frozen
class _Chunk:
    choices: list[_Choice] = attrs.Factory(list)
    usage: _Usage | None = None


_converter = snake_case_converter()


def _structure_arguments(value: Any, _type: Any) -> Any:
    if value is None or isinstance(value, str | dict):
        return value
    raise TypeError(f"expected a JSON string or object, got {type(value).__name__}")


_converter.register_structure_hook(_Arguments, _structure_arguments)


@attrs.define
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = attrs.Factory(list)
    decoded: dict[str, Any] | None = None


class ChatCompletionsInterpreter:
    """Turns chat-completions payloads into events.

    Streamed: text and reasoning deltas as they come; tool calls assembled across chunks and
    emitted whole; then one :class:`Usage` and one :class:`Finish` at ``[DONE]``. A stream
    that ends without ``[DONE]`` (when ``require_done``) is truncated. Not streamed: the
    whole ``chat.completion`` body gives the same events.

    Args:
        provider: The provider's name, for errors.
        streaming: Whether payloads are ``chat.completion.chunk`` events.
        finish_reasons: The dialect's ``finish_reason`` values (unknown ones map to OTHER).
        require_done: Whether ``data: [DONE]`` ends the stream (else end of input does).
    """

    __slots__ = (
        "_calls",
        "_done",
        "_finish_raw",
        "_finish_reasons",
        "_provider",
        "_require_done",
        "_streaming",
        "_usage",
    )

    def __init__(
        self,
        provider: str,
        *,
        streaming: bool,
        finish_reasons: Mapping[str, FinishReason] = OPENAI_FINISH_REASONS,
        require_done: bool = True,
    ) -> None:
        self._provider = provider
        self._streaming = streaming
        self._finish_reasons = finish_reasons
        self._require_done = require_done
        self._calls: dict[int, _PendingCall] = {}
        self._usage: _Usage | None = None
        self._finish_raw: str | None = None
        self._done = False

    def on_data(self, data: str) -> list[Event]:
        if self._done:
            raise ProtocolError("data after [DONE]", provider=self._provider)
        if self._streaming and data == "[DONE]":
            self._done = True
            return self._final()
        obj = json_object(data, self._provider)
        if "error" in obj or ("choices" not in obj and "message" in obj and (not self._streaming or "status" in obj)):
            # OpenAI's {"error": {...}}, or GigaChat's {"status": ..., "message": ...} (as a body,
            # or as an event inside a 200 stream).
            raise error_from_payload(obj, status=None, provider=self._provider)
        texts = None if not self._streaming else _plain_delta(obj)
        if texts is not None:
            return [TextDelta(texts)] if texts else []
        chunk = structure(_converter, obj, _Chunk, provider=self._provider, what="a chat completion")
        if chunk.usage is not None:
            self._usage = chunk.usage
        events: list[Event] = []
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # n > 1 is never asked for; other choices are not this answer
            part = choice.delta if self._streaming else choice.message
            if part is not None:
                self._take(part, events)
            elif choice.text:
                events.append(TextDelta(choice.text))
            if choice.finish_reason:
                self._finish_raw = choice.finish_reason
        if not self._streaming:
            self._done = True
            events += self._final()
        return events

    def usage_so_far(self) -> Usage | None:
        """The usage the server has sent, if any (it usually comes last)."""
        return _usage_event(self._usage) if self._usage is not None else None

    def _take(self, part: _Delta, events: list[Event]) -> None:
        if part.reasoning_content:
            events.append(ReasoningDelta(part.reasoning_content))
        if part.content:
            events.append(TextDelta(part.content))
        for delta in part.tool_calls or ():
            call = self._calls.setdefault(delta.index, _PendingCall())
            if delta.id and not call.id:
                call.id = delta.id
            if delta.function is not None:
                self._merge(call, delta.function)
        if part.function_call is not None:
            # GigaChat: one whole call per message, arguments an object.
            call = self._calls.setdefault(len(self._calls), _PendingCall())
            call.id = call.id or part.functions_state_id or ""
            self._merge(call, part.function_call)

    def _merge(self, call: _PendingCall, function: _FunctionDelta) -> None:
        if function.name and not call.name:
            call.name = function.name
        if isinstance(function.arguments, dict):
            call.decoded = function.arguments
        elif function.arguments:
            call.arguments.append(function.arguments)

    def _final(self) -> list[Event]:
        events: list[Event] = []
        for index in sorted(self._calls):
            call = self._calls[index]
            if not call.name:
                raise ProtocolError(f"tool call {index} has no function name", provider=self._provider)
            arguments = call.decoded
            if arguments is None:
                text = "".join(call.arguments) or "{}"
                try:
                    arguments = json.loads(text)
                except ValueError as exc:
                    raise ProtocolError(
                        f"the arguments of tool call {call.name!r} are not valid JSON", provider=self._provider
                    ) from exc
            if not isinstance(arguments, dict):
                raise ProtocolError(
                    f"the arguments of tool call {call.name!r} are not a JSON object", provider=self._provider
                )
            events.append(ToolCall(id=call.id or f"call_{index}_{call.name}", name=call.name, arguments=arguments))
        if self._usage is not None:
            events.append(_usage_event(self._usage))
        raw = self._finish_raw
        reason = self._finish_reasons.get(raw, FinishReason.OTHER) if raw else FinishReason.OTHER
        if reason is FinishReason.STOP and self._calls:
            reason = FinishReason.TOOL_CALLS
        events.append(Finish(reason, raw))
        return events

    def on_end(self) -> list[Event]:
        if self._done:
            return []
        if self._streaming and self._require_done:
            raise StreamTruncatedError("the stream ended before [DONE]", provider=self._provider)
        if not self._streaming:
            raise ProtocolError("the response body was empty", provider=self._provider)
        self._done = True
        return self._final()


def _plain_delta(obj: dict[str, Any]) -> str | None:
    """The text of the usual streamed chunk (one choice, a delta with only role/content, no
    finish, no usage); ``None`` for any other shape, which the converter then handles."""
    choices = obj.get("choices")
    if type(choices) is not list or len(choices) != 1 or obj.get("usage") is not None:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason") is not None or "message" in choice or "text" in choice:
        return None
    index = choice.get("index", 0)
    if type(index) is not int or index != 0:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict:
        return None
    content = delta.get("content", "")
    if type(content) is not str:
        return None
    # Only "content" and a string "role" may be there (counted, rather than looped over).
    others = len(delta) - ("content" in delta)
    if others == 0 or (others == 1 and type(delta.get("role")) is str):
        return content
    return None


def _usage_event(usage: _Usage) -> Usage:
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else None
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        reasoning_tokens=usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else None,
        cached_tokens=cached if cached is not None else usage.precached_prompt_tokens,
    )


def json_object(data: str, provider: str) -> dict[str, Any]:
    """Parse ``data`` as a JSON object, or raise :class:`ProtocolError`."""
    obj = loads(data, provider)
    if type(obj) is not dict:
        raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}", provider=provider)
    return obj


# -- errors ------------------------------------------------------------------------------------


def error_from_payload(
    payload: Mapping[str, Any], *, status: int | None, provider: str, headers: Mapping[str, str] | None = None
) -> APIStatusError:
    """The typed error for an error object: OpenAI's ``{"error": {"message", "type", "code"}}``
    or the ``{"status", "message"}`` shape GigaChat uses (``{"statusCode", "message"}`` for
    NestJS services), inside a stream or as a body."""
    error = payload.get("error")
    code: Any = None
    if isinstance(error, Mapping):
        code = error.get("code") if isinstance(error.get("code"), int) else error.get("status")
    if not isinstance(code, int):
        for key in ("status", "code", "statusCode"):  # statusCode: NestJS bodies (AmigoChat)
            code = payload.get(key)
            if isinstance(code, int):
                break
    status_code = status if status is not None else (code if isinstance(code, int) and 400 <= code < 600 else 500)
    body = json.dumps(payload, ensure_ascii=False).encode()
    return status_error(status_code, headers or {}, body, provider=provider)
