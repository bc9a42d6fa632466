"""The emulator's OpenAI API: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Wire-faithful where clients can tell: Bearer keys with OpenAI's 401 bodies (a wrong key is
echoed masked, as OpenAI does), ``{"error": {"message", "type", "param", "code"}}`` error
bodies, an ``x-request-id`` on every response, unknown request arguments and
``stream_options`` without ``stream`` refused with OpenAI's 400, ``model_not_found`` 404s,
tool-call arguments split across chunks, and the usage chunk only when
``stream_options.include_usage`` asks for it. Replies come from the shared chat planner.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

import attrs

from ._chat import BadChatRequest, chunk_frames, completion_body, plan_chat, sse_frame
from ._emulator import Fault, send_event_stream, send_json, send_raw_fault_body

if TYPE_CHECKING:
    from ._emulator import Emulator
    from ._server import RecordedRequest, ResponseWriter

__all__ = ["OpenAIRoutes"]

#: ``(id, owned_by, is a chat model)``
CATALOGUE = (
    ("gpt-4o-mini", "system", True),
    ("gpt-4o", "system", True),
    ("gpt-4.1", "system", True),
    ("gpt-4.1-mini", "system", True),
    ("gpt-4.1-nano", "system", True),
    ("o3-mini", "system", True),
    ("text-embedding-3-small", "system", False),
)
_CHAT_MODELS = frozenset(model for model, _owner, chat in CATALOGUE if chat)
_KNOWN_MODELS = frozenset(model for model, _owner, _chat in CATALOGUE)
_PARAMETERS = frozenset({
    "model", "messages", "stream", "stream_options", "temperature", "max_tokens", "max_completion_tokens", "top_p",
    "stop", "tools", "tool_choice", "parallel_tool_calls", "n", "presence_penalty", "frequency_penalty", "logit_bias",
    "logprobs", "top_logprobs", "user", "seed", "response_format", "metadata", "store", "reasoning_effort",
    "service_tier", "modalities", "audio", "prediction", "web_search_options",
})  # fmt: skip
_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "requests",
}
_MESSAGES = {
    400: "Invalid request.",
    401: "Incorrect API key provided.",
    403: "You are not allowed to sample from this model",
    404: "The requested resource was not found.",
    429: "Rate limit reached for requests. Please try again in 1s.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later",
    504: "Gateway timeout.",
}


def error_body(status: int, message: str | None = None, *, code: str | None = None, param: str | None = None) -> Any:
    """OpenAI's error body for ``status``."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    if status == 429 and code is None:
        code = "rate_limit_exceeded"
    return {
        "error": {"message": message or _MESSAGES.get(status, "Error."), "type": kind, "param": param, "code": code}
    }


def _masked(key: str) -> str:
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


class OpenAIRoutes:
    """Mounted at ``/openai``: ``url_for("openai")`` is ``.../openai/v1``."""

    name = "openai"
    prefix = "/openai"
    tls = False

    def urls(self, origin: str) -> dict[str, str]:
        return {"openai": f"{origin}/v1"}

    async def handle(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, path: str) -> None:
        request_id = {"x-request-id": f"req_{secrets.token_hex(16)}"}
        if request.method == "GET" and path == "/v1/models":
            emu.record(request, "openai", "models")
            await self._models(emu, request, writer, request_id)
        elif request.method == "POST" and path == "/v1/chat/completions":
            emu.record(request, "openai", "chat")
            await self._chat(emu, request, writer, request_id)
        else:
            emu.record(request, "openai", "unknown")
            message = f"Invalid URL ({request.method} {path})"
            await send_json(writer, 404, error_body(404, message), headers=request_id)

    async def _check_key(
        self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, headers: dict[str, str], fault: Fault
    ) -> bool:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            await send_json(writer, 401, error_body(401, message), headers=headers, fault=fault)
            return False
        key = authorization[len("Bearer ") :]
        if key != emu.api_key:
            message = (
                f"Incorrect API key provided: {_masked(key)}. "
                "You can find your API key at https://platform.openai.com/account/api-keys."
            )
            await send_json(writer, 401, error_body(401, message, code="invalid_api_key"), headers=headers, fault=fault)
            return False
        return True

    async def _fault_status(self, writer: ResponseWriter, fault: Fault, headers: dict[str, str]) -> bool:
        if fault.status is None:
            return False
        if fault.body is not None:
            await send_raw_fault_body(writer, fault.status, fault)
        else:
            body = error_body(fault.status, fault.message, code=fault.error_code)
            await send_json(writer, fault.status, body, headers=headers, fault=fault)
        return True

    async def _models(
        self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, headers: dict[str, str]
    ) -> None:
        fault = emu.take_fault("openai", "models")
        if not await self._check_key(emu, request, writer, headers, fault) or await self._fault_status(
            writer, fault, headers
        ):
            return
        data = [{"id": m, "object": "model", "created": 1715367049, "owned_by": owner} for m, owner, _ in CATALOGUE]
        await send_json(writer, 200, {"object": "list", "data": data}, headers=headers, fault=fault)

    async def _chat(
        self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, headers: dict[str, str]
    ) -> None:
        fault = emu.take_fault("openai", "chat")
        if not await self._check_key(emu, request, writer, headers, fault) or await self._fault_status(
            writer, fault, headers
        ):
            return

        async def refuse(status: int, message: str, *, code: str | None = None, param: str | None = None) -> None:
            await send_json(writer, status, error_body(status, message, code=code, param=param), headers=headers)

        try:
            body = json.loads(request.body)
        except ValueError:
            message = (
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
            )
            await refuse(400, message)
            return
        if not isinstance(body, dict):
            await refuse(400, "The request body must be a JSON object.")
            return
        unknown = sorted(set(body) - _PARAMETERS)
        if unknown:
            await refuse(400, f"Unrecognized request argument supplied: {unknown[0]}")
            return
        model = body.get("model")
        if not isinstance(model, str) or not model:
            await refuse(400, "you must provide a model parameter")
            return
        if model not in _KNOWN_MODELS:
            message = f"The model `{model}` does not exist or you do not have access to it."
            await refuse(404, message, code="model_not_found")
            return
        if model not in _CHAT_MODELS:
            await refuse(404, "This is not a chat model and thus not supported in the v1/chat/completions endpoint.")
            return
        streaming = body.get("stream") is True
        stream_options = body.get("stream_options")
        if stream_options is not None and not streaming:
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            await refuse(400, message, param="stream_options")
            return
        try:
            plan = plan_chat(emu, body, fault)
        except BadChatRequest as exc:
            await refuse(400, str(exc), param="messages")
            return
        error = error_body(fault.error_status, fault.message)
        error["error"]["code"] = fault.error_status
        if not streaming or fault.whole_reply:
            await send_json(writer, 200, completion_body(plan, model=model), headers=headers, fault=fault, error=error)
            return
        include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
        await send_event_stream(
            emu,
            writer,
            chunk_frames(plan, model=model, include_usage=include_usage),
            fault=_with_headers(fault, headers),
            content_type="text/event-stream; charset=utf-8",
            malformed=b'data: {"id": "chatcmpl-x", "choices": [{"delta": \n\n',
            error_frame=sse_frame(error),
        )


def _with_headers(fault: Fault, headers: dict[str, str]) -> Fault:
    return attrs.evolve(fault, headers={**headers, **fault.headers})
