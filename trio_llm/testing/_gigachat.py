"""The emulator's GigaChat: the OAuth token endpoint, chat completions and the model list,
served over TLS (the real service is HTTPS only).

Wire-faithful where clients can tell: ``Authorization: Basic`` credentials, a uuid4 ``RqUID``
and the form ``scope`` on the token request, ``{"access_token", "expires_at"}`` (epoch
milliseconds) in reply; Sber's error bodies (``{"code", "message"}`` from OAuth,
``{"status", "message"}`` from the API, ``401 Token has expired``); GigaChat's message rules
(system message first, JSON function results, functions called only with
``function_call: "auto"``); SSE streams ended by ``data: [DONE]``.

Token lifetimes are measured on trio's clock, so a test on ``MockClock`` can expire them.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import trio

from ._chat import BadChatRequest, chunk_frames, completion_body, plan_chat, sse_frame
from ._emulator import Fault, send_event_stream, send_json, send_raw_fault_body

if TYPE_CHECKING:
    from ._emulator import Emulator
    from ._server import RecordedRequest, ResponseWriter

__all__ = ["GigaChatRoutes"]

#: The model list the emulator serves (``GET /models``): the seeds' chat models and an
#: embedding model, which clients must leave out.
CATALOGUE: list[dict[str, str]] = [
    {"id": name, "object": "model", "owned_by": "salutedevices", "type": "chat"}
    for name in ("GigaChat", "GigaChat-2", "GigaChat-2-Max", "GigaChat-2-Pro", "GigaChat-Max", "GigaChat-Pro")
] + [{"id": "Embeddings", "object": "model", "owned_by": "salutedevices", "type": "embedder"}]
_CHAT_MODELS = {entry["id"] for entry in CATALOGUE if entry["type"] == "chat"}
_SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")
_ROLES = ("system", "user", "assistant", "function")

_STATUS_MESSAGES = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Permission denied",
    404: "Not found",
    413: "Payload too large",
    422: "Invalid params",
    429: "Too many requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def api_error(status: int, message: str | None = None) -> dict[str, Any]:
    """GigaChat's API error body."""
    return {"status": status, "message": message or _STATUS_MESSAGES.get(status, "Error")}


def oauth_error(code: int, message: str) -> dict[str, Any]:
    """Sber's OAuth error body."""
    return {"code": code, "message": message}


def _is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except ValueError:
        return False


class GigaChatRoutes:
    """Mounted at ``/gigachat`` over TLS: ``url_for("gigachat")`` is ``.../gigachat/api/v1``
    and ``url_for("gigachat-auth")`` is ``.../gigachat/api/v2/oauth``.

    Attributes:
        scope: The scope the emulator's key has; another valid scope gets Sber's code 7.
        tokens: Every token issued, with its expiry on trio's clock.
    """

    name = "gigachat"
    prefix = "/gigachat"
    tls = True
    scope = "GIGACHAT_API_PERS"

    def __init__(self) -> None:
        self.tokens: dict[str, float] = {}

    def urls(self, origin: str) -> dict[str, str]:
        return {"gigachat": f"{origin}/api/v1", "gigachat-auth": f"{origin}/api/v2/oauth"}

    def revoke_tokens(self) -> None:
        """Make every token issued so far invalid (the next request with one gets a 401)."""
        self.tokens.clear()

    async def handle(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, path: str) -> None:
        if path == "/api/v2/oauth" and request.method == "POST":
            await self._oauth(emu, request, writer)
        elif path == "/api/v1/chat/completions" and request.method == "POST":
            await self._chat(emu, request, writer)
        elif path == "/api/v1/models" and request.method == "GET":
            await self._models(emu, request, writer)
        else:
            emu.record(request, "gigachat", "unknown")
            await send_json(writer, 404, api_error(404))

    # -- OAuth ---------------------------------------------------------------------------------

    async def _oauth(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter) -> None:
        emu.record(request, "gigachat", "oauth")
        fault = emu.take_fault("gigachat", "oauth")
        if await _fault_status(writer, fault, oauth_error(fault.status or 0, fault.message or "")):
            return
        authorization = request.headers.get("authorization", "")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "basic" or not key:
            await send_json(writer, 401, oauth_error(4, "Can't decode 'Authorization' header"), fault=fault)
            return
        if not secrets.compare_digest(key.encode(), emu.credentials.encode()):
            await send_json(writer, 401, oauth_error(6, "credentials doesn't match db data"), fault=fault)
            return
        if not _is_uuid4(request.headers.get("rquid", "")):
            # Sber documents a 400 here; its exact body is not published.
            await send_json(writer, 400, oauth_error(4, "RqUID header is missing or is not a uuid4"), fault=fault)
            return
        form = parse_qs(request.body.decode("utf-8", "replace"))
        scope = (form.get("scope") or [""])[0]
        if not scope:
            await send_json(writer, 400, oauth_error(5, "scope is empty"), fault=fault)
            return
        if scope not in _SCOPES:
            await send_json(writer, 400, oauth_error(1, "scope data format invalid"), fault=fault)
            return
        if scope != self.scope:
            await send_json(writer, 400, oauth_error(7, "scope from db not fully includes consumed scope"), fault=fault)
            return
        token = "emu-token-" + secrets.token_urlsafe(24)
        lifetime = emu.token_lifetime
        # Valid for `lifetime` seconds of trio's clock; expires_at says the same on the wall clock.
        self.tokens[token] = trio.current_time() + lifetime
        expires_at = int((time.time() + lifetime) * 1000)
        await send_json(writer, 200, {"access_token": token, "expires_at": expires_at}, fault=fault)

    async def _check_token(self, request: RecordedRequest, writer: ResponseWriter, fault: Fault) -> bool:
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            await send_json(writer, 401, api_error(401, "Unauthorized"), fault=fault)
            return False
        deadline = self.tokens.get(token)
        if deadline is None or trio.current_time() >= deadline:
            await send_json(writer, 401, api_error(401, "Token has expired"), fault=fault)
            return False
        await trio.lowlevel.checkpoint()
        return True

    # -- models --------------------------------------------------------------------------------

    async def _models(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter) -> None:
        emu.record(request, "gigachat", "models")
        fault = emu.take_fault("gigachat", "models")
        if not await self._check_token(request, writer, fault):
            return
        if await _fault_status(writer, fault, api_error(fault.status or 0, fault.message)):
            return
        await send_json(writer, 200, {"object": "list", "data": CATALOGUE}, fault=fault)

    # -- chat ----------------------------------------------------------------------------------

    async def _chat(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter) -> None:
        emu.record(request, "gigachat", "chat")
        fault = emu.take_fault("gigachat", "chat")
        if not await self._check_token(request, writer, fault):
            return
        if await _fault_status(writer, fault, api_error(fault.status or 0, fault.message)):
            return
        try:
            body = json.loads(request.body)
        except ValueError:
            await send_json(writer, 400, api_error(400, "Invalid JSON"), fault=fault)
            return
        if not isinstance(body, dict):
            await send_json(writer, 422, api_error(422, "Invalid params: the body must be an object"), fault=fault)
            return
        model = body.get("model")
        if model not in _CHAT_MODELS:
            await send_json(writer, 404, api_error(404, "No such model"), fault=fault)
            return
        try:
            _validate_messages(body.get("messages"))
            plan = plan_chat(emu, _without_uncalled_functions(body), fault, dialect="gigachat")
        except BadChatRequest as exc:
            await send_json(writer, 422, api_error(422, f"Invalid params: {exc}"), fault=fault)
            return
        if not body.get("stream") or fault.whole_reply:
            error = api_error(fault.error_status, fault.message)
            await send_json(
                writer, 200, completion_body(plan, model=model, dialect="gigachat"), fault=fault, error=error
            )
            return
        frames = chunk_frames(plan, model=model, dialect="gigachat")
        await send_event_stream(
            emu,
            writer,
            frames,
            fault=fault,
            content_type="text/event-stream",
            malformed=b'data: {"choices": [{"delta": \n\n',
            error_frame=sse_frame(api_error(fault.error_status, fault.message)),
        )


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise BadChatRequest("messages must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in _ROLES:
            raise BadChatRequest(f"messages[{index}].role must be one of {', '.join(_ROLES)}")
        if message["role"] == "system" and index != 0:
            raise BadChatRequest("the system message must be the first message")
        if message["role"] == "function":
            try:
                json.loads(message.get("content") or "")
            except (TypeError, ValueError):
                raise BadChatRequest(f"messages[{index}].content: a function result must be JSON") from None


def _without_uncalled_functions(body: dict[str, Any]) -> dict[str, Any]:
    """GigaChat calls functions only when asked to (``function_call`` "auto" or a name)."""
    choice = body.get("function_call")
    if choice == "auto" or isinstance(choice, Mapping):
        return body
    return {key: value for key, value in body.items() if key != "functions"}


async def _fault_status(writer: ResponseWriter, fault: Fault, error_body: dict[str, Any]) -> bool:
    """Answer with the fault's status (and Sber's body shape, or the fault's own body)."""
    if fault.status is None:
        await trio.lowlevel.checkpoint()
        return False
    if fault.body is not None:
        await send_raw_fault_body(writer, fault.status, fault)
        return True
    for key in ("status", "code"):
        if key in error_body:
            error_body[key] = fault.status
    if not error_body.get("message"):
        error_body["message"] = _STATUS_MESSAGES.get(fault.status, "Error")
    await send_json(writer, fault.status, error_body, fault=fault)
    return True
