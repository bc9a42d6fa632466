"""The emulator's Gemini API: models (paginated), generateContent, streamGenerateContent.

Wire-faithful where clients can tell: camelCase JSON, ``alt=sse`` SSE framing with no end
sentinel, the JSON-array stream without ``alt=sse``, Google's error bodies (``API_KEY_INVALID``,
``RetryInfo``, ...), unknown request fields refused as Google refuses them.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import attrs

from ._emulator import Fault, generation_delay, send_event_stream, send_json, send_raw_fault_body
from ._replies import chunk_words, reply_text, tool_arguments, word_count, word_pieces

if TYPE_CHECKING:
    from ._emulator import Emulator
    from ._server import RecordedRequest, ResponseWriter

__all__ = ["GeminiRoutes"]

_CANONICAL = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "The request timed out. Please try again.",
}

_GENERATE = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
CATALOGUE: list[dict[str, Any]] = [
    {"name": "models/gemini-2.0-flash", "displayName": "Gemini 2.0 Flash", "supportedGenerationMethods": _GENERATE},
    {
        "name": "models/gemini-2.0-flash-thinking-exp",
        "displayName": "Gemini 2.0 Flash Thinking",
        "supportedGenerationMethods": _GENERATE,
        "thinking": True,
    },
    {
        "name": "models/gemini-2.5-flash",
        "displayName": "Gemini 2.5 Flash",
        "supportedGenerationMethods": _GENERATE,
        "thinking": True,
    },
    {
        "name": "models/gemini-2.5-flash-image",
        "displayName": "Gemini 2.5 Flash Image",
        "supportedGenerationMethods": _GENERATE,
    },
    {
        "name": "models/gemini-2.5-flash-lite",
        "displayName": "Gemini 2.5 Flash-Lite",
        "supportedGenerationMethods": _GENERATE,
    },
    {
        "name": "models/gemini-2.5-pro",
        "displayName": "Gemini 2.5 Pro",
        "supportedGenerationMethods": _GENERATE,
        "thinking": True,
    },
    {
        "name": "models/gemma-3-27b-it",
        "displayName": "Gemma 3 27B",
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    },
    {"name": "models/embedding-001", "displayName": "Embedding 001", "supportedGenerationMethods": ["embedContent"]},
    {
        "name": "models/text-embedding-004",
        "displayName": "Text Embedding 004",
        "supportedGenerationMethods": ["embedContent"],
    },
    {
        "name": "models/aqa",
        "displayName": "Model that performs Attributed Question Answering.",
        "supportedGenerationMethods": ["generateAnswer"],
    },
]
for _entry in CATALOGUE:
    _entry.setdefault("version", "001")
    _entry.setdefault("inputTokenLimit", 1048576)
    _entry.setdefault("outputTokenLimit", 65536)
_GENERATIVE = {e["name"][len("models/") :] for e in CATALOGUE if "generateContent" in e["supportedGenerationMethods"]}

_TOP_LEVEL = {
    "contents",
    "systemInstruction",
    "system_instruction",
    "generationConfig",
    "generation_config",
    "tools",
    "toolConfig",
    "tool_config",
    "safetySettings",
    "safety_settings",
    "cachedContent",
    "cached_content",
    "labels",
    "model",
}
_PART_KINDS = {
    "text",
    "inlineData",
    "inline_data",
    "fileData",
    "file_data",
    "functionCall",
    "function_call",
    "functionResponse",
    "function_response",
    "executableCode",
    "codeExecutionResult",
}

#: A 1x1 transparent PNG, the emulator's "generated image".
PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class _BadRequest(Exception):
    pass


def error_body(
    status: int,
    message: str | None = None,
    *,
    retry_after: str | None = None,
    reason: str | None = None,
    canonical: str | None = None,
) -> dict[str, Any]:
    """Google's error body for ``status`` (``canonical`` overrides the usual ``status`` string,
    e.g. ``FAILED_PRECONDITION`` for a 400)."""
    error: dict[str, Any] = {
        "code": status,
        "message": message or _DEFAULT_MESSAGES.get(status, "Unknown error."),
        "status": canonical or _CANONICAL.get(status, "UNKNOWN"),
    }
    details: list[dict[str, Any]] = []
    if reason:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        )
    if status == 429:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaValue": "10",
                    }
                ],
            }
        )
    if retry_after is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"})
    if details:
        error["details"] = details
    return {"error": error}


class GeminiRoutes:
    """Mounted at ``/gemini``: ``url_for("gemini")`` is ``.../gemini/v1beta``."""

    name = "gemini"
    prefix = "/gemini"
    tls = False

    def urls(self, origin: str) -> dict[str, str]:
        return {"gemini": f"{origin}/v1beta"}

    async def handle(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, path: str) -> None:
        version, _, rest = path.lstrip("/").partition("/")
        if version not in ("v1beta", "v1") or not rest.startswith("models"):
            emu.record(request, "gemini", "unknown")
            await send_json(writer, 404, error_body(404, f"Method not found: {request.method} {request.path}"))
            return
        if request.method == "GET" and rest == "models":
            await self._list_models(emu, request, writer)
        elif request.method == "GET" and rest.startswith("models/") and ":" not in rest:
            emu.record(request, "gemini", "model")
            if await self._check_key(emu, request, writer, Fault()):
                await self._get_model(writer, rest[len("models/") :])
        elif request.method == "POST" and rest.startswith("models/") and ":" in rest:
            model, _, method = rest[len("models/") :].partition(":")
            await self._generate(emu, request, writer, model, method)
        else:
            emu.record(request, "gemini", "unknown")
            await send_json(writer, 404, error_body(404, f"Method not found: {request.method} {request.path}"))

    async def _check_key(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, fault: Fault) -> bool:
        key: str | None = request.headers.get("x-goog-api-key") or next(iter(request.query.get("key", ())), None)
        authorization = request.headers.get("authorization", "")
        if key is None and authorization.startswith("Bearer "):
            key = authorization[len("Bearer ") :]
        if key is None:
            message = (
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API."
            )
            await send_json(writer, 403, error_body(403, message), fault=fault)
            return False
        if key != emu.api_key:
            await send_json(
                writer,
                400,
                error_body(400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID"),
                fault=fault,
            )
            return False
        return True

    async def _fault_status(self, writer: ResponseWriter, fault: Fault) -> bool:
        if fault.status is None:
            return False
        if fault.body is not None:
            await send_raw_fault_body(writer, fault.status, fault)
        elif _is_seconds(fault.retry_after):
            # Google puts the delay in the body's RetryInfo, not in a header.
            body = error_body(fault.status, fault.message, retry_after=fault.retry_after, canonical=fault.error_code)
            await send_json(writer, fault.status, body, fault=attrs_without_retry_after(fault))
        else:
            # No delay, or an HTTP date, which RetryInfo cannot carry: that goes in the header
            # (as a proxy in front of the API would send it).
            await send_json(
                writer, fault.status, error_body(fault.status, fault.message, canonical=fault.error_code), fault=fault
            )
        return True

    async def _list_models(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter) -> None:
        emu.record(request, "gemini", "models")
        fault = emu.take_fault("gemini", "models")
        if not await self._check_key(emu, request, writer, fault) or await self._fault_status(writer, fault):
            return
        try:
            size = int((request.query.get("pageSize") or ["50"])[0])
            start = int((request.query.get("pageToken") or ["0"])[0] or 0)
        except ValueError:
            await send_json(writer, 400, error_body(400, "Invalid pageSize or pageToken."))
            return
        size = max(1, min(size, 1000, emu.models_page_size))
        page = CATALOGUE[start : start + size]
        payload: dict[str, Any] = {"models": page}
        if start + size < len(CATALOGUE):
            payload["nextPageToken"] = str(start + size)
        await send_json(writer, 200, payload, fault=fault)

    async def _get_model(self, writer: ResponseWriter, model: str) -> None:
        for entry in CATALOGUE:
            if entry["name"] == f"models/{model}":
                await send_json(writer, 200, entry)
                return
        await send_json(writer, 404, error_body(404, f"models/{model} is not found for API version v1beta"))

    async def _generate(
        self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, model: str, method: str
    ) -> None:
        emu.record(request, "gemini", "chat")
        fault = emu.take_fault("gemini", "chat")
        if not await self._check_key(emu, request, writer, fault) or await self._fault_status(writer, fault):
            return
        if method not in ("generateContent", "streamGenerateContent"):
            await send_json(writer, 404, error_body(404, f"Method not found: {method}"))
            return
        if model not in _GENERATIVE:
            message = (
                f"models/{model} is not found for API version v1beta, or is not supported for {method}. "
                "Call ListModels to see the list of available models and their supported methods."
            )
            await send_json(writer, 404, error_body(404, message), fault=fault)
            return
        try:
            body = json.loads(request.body)
            chunks = plan_reply(emu, model, body, fault)
        except (ValueError, _BadRequest) as exc:
            await send_json(writer, 400, error_body(400, str(exc) or "Invalid JSON payload received."), fault=fault)
            return
        error_frame = error_body(fault.error_status, fault.message, canonical=fault.error_code)
        if method == "generateContent" or fault.whole_reply:
            await generation_delay(emu, len(chunks), fault)
            await send_json(writer, 200, merge_chunks(chunks), fault=fault, error=error_frame)
            return
        if request.query.get("alt") == ["sse"]:
            frames = [b"data: " + _dumps(chunk) + b"\r\n\r\n" for chunk in chunks]
            await send_event_stream(
                emu,
                writer,
                frames,
                fault=fault,
                content_type="text/event-stream",
                malformed=b'data: {"candidates": [{"content": \r\n\r\n',
                error_frame=b"data: " + _dumps(error_frame) + b"\r\n\r\n",
            )
        else:
            frames = [json.dumps(chunk, indent=2, ensure_ascii=False).encode() for chunk in chunks]
            await send_event_stream(
                emu,
                writer,
                frames,
                fault=fault,
                content_type="application/json; charset=UTF-8",
                malformed=b'{"candidates": [{"content": ',
                error_frame=_dumps(error_frame),
                head=b"[",
                separator=b"\n,\r\n",
                tail=b"]",
            )


def _is_seconds(value: str | None) -> bool:
    try:
        return value is not None and float(value) >= 0
    except ValueError:
        return False


def attrs_without_retry_after(fault: Fault) -> Fault:
    """Google puts the delay in ``RetryInfo``, not in a header: drop the header here."""
    return attrs.evolve(fault, retry_after=None)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _part_kind(part: Any, where: str) -> str:
    if not isinstance(part, dict):
        raise _BadRequest(f"Invalid JSON payload received. {where}: expected an object.")
    kinds = [k for k in part if k in _PART_KINDS]
    unknown = [
        k for k in part if k not in _PART_KINDS and k not in ("thought", "thoughtSignature", "thought_signature")
    ]
    if unknown:
        raise _BadRequest(
            f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at '{where}': Cannot find field."
        )
    if len(kinds) != 1:
        raise _BadRequest(
            f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one initialized field"
        )
    return str(kinds[0])


def _text_of(content: dict[str, Any]) -> str:
    return " ".join(
        p["text"] for p in content.get("parts", ()) if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _validate(body: Any) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(body, dict):
        raise _BadRequest("Invalid JSON payload received. Expected an object.")
    for key in body:
        if key not in _TOP_LEVEL:
            raise _BadRequest(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _BadRequest("* GenerateContentRequest.contents: contents is not specified")
    for index, content in enumerate(contents):
        if not isinstance(content, dict):
            raise _BadRequest(f"* GenerateContentRequest.contents[{index}]: expected an object")
        if content.get("role", "user") not in ("user", "model", "function"):
            raise _BadRequest(f"Please use a valid role: user, model. (contents[{index}].role)")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise _BadRequest(f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.")
        for number, part in enumerate(parts):
            _part_kind(part, f"contents[{index}].parts[{number}]")
    config = body.get("generationConfig") or body.get("generation_config") or {}
    if not isinstance(config, dict):
        raise _BadRequest("* GenerateContentRequest.generation_config: expected an object")
    declarations: list[dict[str, Any]] = []
    for tool in body.get("tools") or ():
        for declaration in tool.get("functionDeclarations") or tool.get("function_declarations") or ():
            parameters = declaration.get("parameters")
            if (
                isinstance(parameters, dict)
                and parameters.get("type") in ("object", "OBJECT")
                and not parameters.get("properties")
            ):
                raise _BadRequest(
                    "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties: "
                    "should be non-empty for OBJECT type"
                )
            declarations.append(declaration)
    return contents, config, declarations


def plan_reply(emu: Emulator, model: str, body: Any, fault: Fault) -> list[dict[str, Any]]:
    """The chunks of the reply to ``body``, as ``GenerateContentResponse`` objects."""
    contents, config, declarations = _validate(body)
    last = contents[-1]
    prompt = _text_of(last)
    prompt_tokens = sum(word_count(_text_of(c)) for c in contents)
    system = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(system, dict):
        parts = system.get("parts")
        if isinstance(parts, dict):
            parts = [parts]
        prompt_tokens += sum(word_count(p.get("text", "")) for p in parts or () if isinstance(p, dict))
    version = {"modelVersion": model, "responseId": "emu-" + str(abs(hash((model, prompt))) % 10**12)}

    if fault.block_reason:
        return [
            {
                "promptFeedback": {"blockReason": fault.block_reason},
                "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
                **version,
            }
        ]

    parts_out: list[list[dict[str, Any]]] = []  # one list of parts per chunk
    thoughts = 0
    thinking = config.get("thinkingConfig") or config.get("thinking_config") or {}
    if (isinstance(thinking, dict) and thinking.get("includeThoughts")) or "thinking" in model:
        thought = f"Thinking about {prompt[:60]!r}"
        thoughts = word_count(thought)
        parts_out.append([{"text": thought, "thought": True}])

    responses = [
        p
        for p in last.get("parts", ())
        if isinstance(p, dict) and ("functionResponse" in p or "function_response" in p)
    ]
    images = [p for p in last.get("parts", ()) if isinstance(p, dict) and ("inlineData" in p or "inline_data" in p)]
    called = [d for d in declarations if isinstance(d.get("name"), str) and d["name"] in prompt]
    finish = "STOP"
    completion = 0
    if called and not responses and fault.text is None:
        for declaration in called:
            properties = (declaration.get("parameters") or {}).get("properties") or {}
            args = tool_arguments(properties, prompt)
            parts_out.append(
                [
                    {
                        "functionCall": {"name": declaration["name"], "args": args},
                        "thoughtSignature": "ZW11LXNpZ25hdHVyZQ==",
                    }
                ]
            )
            completion += 1 + len(args)
    else:
        if fault.text is not None:
            text = fault.text
        elif responses:
            response = responses[0].get("functionResponse") or responses[0].get("function_response") or {}
            text = f"The tool {response.get('name')} answered {json.dumps(response.get('response'), sort_keys=True)}."
        else:
            text = reply_text(prompt, emu.words)
            if images:
                blob = images[0].get("inlineData") or images[0].get("inline_data") or {}
                size = len(base64.b64decode(blob.get("data", "")))
                text = f"I see a {blob.get('mimeType') or blob.get('mime_type')} image of {size} bytes. " + text
        max_tokens = config.get("maxOutputTokens") or config.get("max_output_tokens")
        if isinstance(max_tokens, int) and word_pieces(text) > max_tokens:
            text = " ".join(text.split(" ")[:max_tokens])
            finish = "MAX_TOKENS"
        for stop in config.get("stopSequences") or config.get("stop_sequences") or ():
            if stop and stop in text:
                text = text[: text.index(stop)]
                finish = "STOP"
        completion = word_count(text)
        parts_out.extend([{"text": piece}] for piece in chunk_words(text, emu.words_per_chunk))
        if "image" in model:
            parts_out.append([{"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PIXEL_PNG).decode()}}])
            completion += 1
    if fault.finish_reason is not None:
        finish = fault.finish_reason
    if not parts_out:
        parts_out.append([])

    chunks: list[dict[str, Any]] = []
    running = 0
    for index, parts in enumerate(parts_out):
        final = index == len(parts_out) - 1
        running += sum(word_count(p.get("text", "")) for p in parts if not p.get("thought"))
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
        if final:
            if finish:
                candidate["finishReason"] = finish
            usage["candidatesTokenCount"] = completion
            if thoughts:
                usage["thoughtsTokenCount"] = thoughts
            usage["totalTokenCount"] = prompt_tokens + completion + thoughts
        else:
            usage["candidatesTokenCount"] = running
            usage["totalTokenCount"] = prompt_tokens + running
        if not parts:
            del candidate["content"]
        chunks.append({"candidates": [candidate], "usageMetadata": usage, **version})
    return chunks


def merge_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-streamed reply: every chunk's parts in one candidate, the last chunk's metadata."""
    if not chunks[-1].get("candidates"):
        return chunks[-1]
    parts: list[dict[str, Any]] = []
    for chunk in chunks:
        for candidate in chunk.get("candidates", ()):
            for part in candidate.get("content", {}).get("parts", ()):
                if parts and "text" in part and "text" in parts[-1] and part.get("thought") == parts[-1].get("thought"):
                    parts[-1] = {**parts[-1], "text": parts[-1]["text"] + part["text"]}
                else:
                    parts.append(part)
    merged = json.loads(json.dumps(chunks[-1]))
    merged["candidates"][0]["content"] = {"parts": parts, "role": "model"}
    return dict(merged)
