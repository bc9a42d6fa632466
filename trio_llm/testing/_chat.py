"""The emulator's chat-completions replies, shared by every route that speaks that format
(OpenAI-compatible, AmigoChat, GigaChat): what to answer, and how to frame it.

:func:`plan_chat` decides the answer from the request (deterministic text, a tool call when
the prompt names a declared tool, an answer to a tool result); :func:`chunk_frames` and
:func:`completion_body` put it on the wire, streamed or whole, in the OpenAI dialect
(``tool_calls`` deltas split across chunks) or GigaChat's (one ``function_call`` object).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ._emulator import Emulator, Fault
from ._replies import chunk_words, reply_text, tool_arguments, word_count, word_pieces

__all__ = ["BadChatRequest", "ChatPlan", "chunk_frames", "completion_body", "plan_chat", "sse_frame"]

Dialect = Literal["openai", "gigachat"]


class BadChatRequest(Exception):
    """The request is malformed; the message is what the route puts in its 400/422 body."""


@attrs.frozen
class ChatPlan:
    """What the emulator will answer."""

    pieces: list[str]
    tool_calls: list[tuple[str, dict[str, Any]]]
    finish: str | None
    prompt_tokens: int
    completion_tokens: int
    id: str


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def _image_sizes(content: Any) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                header, _, data = url.partition(",")
                if header.startswith("data:") and ";base64" in header:
                    out.append((header[5:].split(";")[0], len(base64.b64decode(data))))
                else:
                    out.append(("url", 0))
    return out


def _declared(body: Mapping[str, Any], dialect: Dialect) -> list[Mapping[str, Any]]:
    if dialect == "gigachat":
        functions = body.get("functions") or []
        return [f for f in functions if isinstance(f, Mapping)]
    tools = body.get("tools") or []
    return [t["function"] for t in tools if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)]


def plan_chat(emu: Emulator, body: Any, fault: Fault, *, dialect: Dialect = "openai") -> ChatPlan:
    """Decide the answer to a chat-completions request body."""
    if not isinstance(body, Mapping):
        raise BadChatRequest("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadChatRequest("messages must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise BadChatRequest(f"messages[{index}] must be an object with a role")
    last = messages[-1]
    prompt = _text_of(last.get("content"))
    prompt_tokens = sum(word_count(_text_of(m.get("content"))) for m in messages)
    declared = _declared(body, dialect)
    called = [d for d in declared if isinstance(d.get("name"), str) and d["name"] in prompt]
    tool_calls: list[tuple[str, dict[str, Any]]] = []
    finish: str | None = "stop"
    if last["role"] in ("tool", "function"):
        name = last.get("name") or _tool_name_for(messages, last.get("tool_call_id"))
        try:
            answer = json.loads(_text_of(last.get("content")))
        except ValueError:
            answer = _text_of(last.get("content"))
        text = f"The tool {name} answered {json.dumps(answer, sort_keys=True, ensure_ascii=False)}."
    elif called and fault.text is None:
        for declaration in called[:1] if dialect == "gigachat" else called:
            properties = (declaration.get("parameters") or {}).get("properties") or {}
            tool_calls.append((declaration["name"], tool_arguments(properties, prompt)))
        text = ""
        finish = "function_call" if dialect == "gigachat" else "tool_calls"
    else:
        text = fault.text if fault.text is not None else reply_text(prompt, emu.words)
        images = _image_sizes(last.get("content"))
        if images and fault.text is None:
            mime, size = images[0]
            text = f"I see a {mime} image of {size} bytes. " + text
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and word_pieces(text) > max_tokens:
        text = " ".join(text.split(" ")[:max_tokens])
        finish = "length"
    stops = body.get("stop")
    for stop in [stops] if isinstance(stops, str) else stops or ():
        if isinstance(stop, str) and stop and stop in text:
            text = text[: text.index(stop)]
    if fault.finish_reason is not None:
        finish = fault.finish_reason or None
    completion = word_count(text) + sum(1 + len(args) for _, args in tool_calls)
    return ChatPlan(
        pieces=chunk_words(text, emu.words_per_chunk),
        tool_calls=tool_calls,
        finish=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
    )


def _tool_name_for(messages: list[Any], call_id: Any) -> str:
    for message in messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and call.get("id") == call_id:
                return str((call.get("function") or {}).get("name"))
    return "unknown"


def sse_frame(payload: Any) -> bytes:
    """One SSE event carrying ``payload`` (JSON, or a raw string such as ``[DONE]``)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return b"data: " + data.encode() + b"\n\n"


def _usage(plan: ChatPlan) -> dict[str, int]:
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }


def _call_id(plan: ChatPlan, index: int) -> str:
    return f"call_{plan.id[-8:]}_{index}"


def chunk_frames(plan: ChatPlan, *, model: str, dialect: Dialect = "openai", include_usage: bool = True) -> list[bytes]:
    """The streamed answer as SSE frames, ``data: [DONE]`` last."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": plan.id,
            "object": "chat.completion.chunk" if dialect == "openai" else "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if dialect == "openai":
            obj["choices"][0]["logprobs"] = None
        if usage is not None:
            obj["usage"] = usage
        return sse_frame(obj)

    frames: list[bytes] = []
    for index, piece in enumerate(plan.pieces):
        frames.append(chunk({"role": "assistant", "content": piece} if index == 0 else {"content": piece}))
    if dialect == "gigachat":
        for name, args in plan.tool_calls:
            delta = {"role": "assistant", "content": "", "function_call": {"name": name, "arguments": args}}
            delta["functions_state_id"] = str(uuid.uuid4())
            frames.append(chunk(delta))
        # GigaChat puts the finish reason and the usage on one last chunk.
        frames.append(chunk({"content": ""}, plan.finish, _usage(plan)))
    else:
        for index, (name, args) in enumerate(plan.tool_calls):
            arguments = json.dumps(args)
            half = len(arguments) // 2
            first = {"index": index, "id": _call_id(plan, index), "type": "function"}
            first["function"] = {"name": name, "arguments": arguments[:half]}
            frames.append(chunk({"tool_calls": [first]}))
            frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}))
        frames.append(chunk({}, plan.finish))
        if include_usage:
            frames.append(
                sse_frame(
                    {
                        "id": plan.id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": _usage(plan),
                    }
                )
            )
    frames.append(sse_frame("[DONE]"))
    return frames


def completion_body(plan: ChatPlan, *, model: str, dialect: Dialect = "openai") -> dict[str, Any]:
    """The whole (non-streamed) answer."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(plan.pieces)}
    if plan.tool_calls and dialect == "gigachat":
        name, args = plan.tool_calls[0]
        message["function_call"] = {"name": name, "arguments": args}
        message["functions_state_id"] = str(uuid.uuid4())
    elif plan.tool_calls:
        message["tool_calls"] = [
            {"id": _call_id(plan, i), "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, (n, a) in enumerate(plan.tool_calls)
        ]
        message["content"] = message["content"] or None
    return {
        "id": plan.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": plan.finish}],
        "usage": _usage(plan),
    }
