"""The emulator's AmigoChat: ``POST /v1/chat/completions`` (always SSE) and
``POST /v1/images/generations``, plus the generated images themselves.

Wire-faithful where clients can tell: the device headers are required (a request without a
valid ``x-device-uuid`` gets the service's 403), the ``personaId`` must be the model's, the
``chatId`` a UUID, errors are NestJS bodies ``{"message", "error", "statusCode"}``, and
premium personas answer with the "balance is not enough" message the seeds recorded. Chat
answers stream whatever ``stream`` says: the seeds only ever parsed SSE.
"""

from __future__ import annotations

import hashlib
import http
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..providers._amigochat import CHAT_PERSONAS, IMAGE_PERSONAS
from ._chat import BadChatRequest, chunk_frames, completion_body, plan_chat, sse_frame
from ._emulator import send_event_stream, send_json, send_raw_fault_body
from ._gemini import PIXEL_PNG

if TYPE_CHECKING:
    from ._emulator import Emulator, Fault
    from ._server import RecordedRequest, ResponseWriter

__all__ = ["AmigoChatRoutes"]

#: Personas the seeds marked "balance is not enough": the service refused them to free users.
PREMIUM_PERSONAS = frozenset(
    {
        "openai-o-one",
        "orion",
        "openai-o-one-mini",
        "gemini-1-5-pro",
        "flux-1-1-pro",
        "flux-pro",
        "flux-pro-v1.1-ultra",
        "flux-pro-v1.1-ultra-raw",
    }
)
BALANCE_MESSAGE = "Amigo, your balance is not enough to make the request, wait until 12 UTC or upgrade your plan"


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """A NestJS error body, as the service sent them."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return {"message": message or reason, "error": reason, "statusCode": status}


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


class AmigoChatRoutes:
    """Mounted at ``/amigochat``: ``url_for("amigochat")`` is ``.../amigochat/v1``."""

    name = "amigochat"
    prefix = "/amigochat"
    tls = False

    def urls(self, origin: str) -> dict[str, str]:
        return {"amigochat": f"{origin}/v1"}

    async def handle(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, path: str) -> None:
        if request.method == "POST" and path == "/v1/chat/completions":
            emu.record(request, "amigochat", "chat")
            await self._generate(emu, request, writer, "chat")
        elif request.method == "POST" and path == "/v1/images/generations":
            emu.record(request, "amigochat", "images")
            await self._generate(emu, request, writer, "images")
        elif request.method == "GET" and path.startswith("/images/") and path.endswith(".png"):
            emu.record(request, "amigochat", "image-file")
            await send_json(writer, 200, PIXEL_PNG, headers={"content-type": "image/png"})
        else:
            emu.record(request, "amigochat", "unknown")
            await send_json(writer, 404, error_body(404, f"Cannot {request.method} {path}"))

    async def _generate(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, route: str) -> None:
        fault = emu.take_fault("amigochat", route)
        if not self._device_ok(request.headers):
            await send_json(writer, 403, error_body(403), fault=fault)
            return
        if fault.status is not None:
            if fault.body is not None:
                await send_raw_fault_body(writer, fault.status, fault)
            else:
                await send_json(writer, fault.status, error_body(fault.status, fault.message), fault=fault)
            return
        try:
            body = json.loads(request.body)
        except ValueError:
            await send_json(writer, 400, error_body(400, "Unexpected token in JSON"), fault=fault)
            return
        if not isinstance(body, dict):
            await send_json(writer, 400, error_body(400, "The body must be an object"), fault=fault)
            return
        personas = CHAT_PERSONAS if route == "chat" else IMAGE_PERSONAS
        model = body.get("model")
        if not isinstance(model, str) or model not in personas:
            await send_json(writer, 400, error_body(400, f"Unknown model: {model}"), fault=fault)
            return
        if body.get("personaId") != personas[model]:
            message = f"personaId {body.get('personaId')!r} does not belong to {model}"
            await send_json(writer, 400, error_body(400, message), fault=fault)
            return
        if personas[model] in PREMIUM_PERSONAS:
            await send_json(writer, 402, error_body(402, BALANCE_MESSAGE), fault=fault)
            return
        if route == "chat":
            await self._chat(emu, writer, body, model, fault)
        else:
            await self._images(emu, writer, body, model, fault)

    def _device_ok(self, headers: Mapping[str, str]) -> bool:
        return (
            _is_uuid(headers.get("x-device-uuid"))
            and headers.get("x-device-platform") == "web"
            and bool(headers.get("x-device-version"))
        )

    async def _chat(
        self, emu: Emulator, writer: ResponseWriter, body: dict[str, Any], model: str, fault: Fault
    ) -> None:
        if not _is_uuid(body.get("chatId")):
            await send_json(writer, 400, error_body(400, "chatId must be a UUID"), fault=fault)
            return
        try:
            plan = plan_chat(emu, body, fault)
        except BadChatRequest as exc:
            await send_json(writer, 400, error_body(400, str(exc)), fault=fault)
            return
        if fault.whole_reply:
            error = {"error": {"message": fault.message or "Error", "code": fault.error_status}}
            whole = completion_body(plan, model=model)
            del whole["usage"]  # the service sends no usage
            await send_json(writer, 200, whole, fault=fault, error=error)
            return
        await send_event_stream(
            emu,
            writer,
            chunk_frames(plan, model=model, include_usage=False),
            fault=fault,
            content_type="text/event-stream",
            malformed=b'data: {"choices": [{"delta": {"content": \n\n',
            error_frame=sse_frame({"error": {"message": fault.message or "Error", "code": fault.error_status}}),
        )

    async def _images(
        self, emu: Emulator, writer: ResponseWriter, body: dict[str, Any], model: str, fault: Fault
    ) -> None:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            await send_json(writer, 400, error_body(400, "prompt should not be empty"), fault=fault)
            return
        digest = hashlib.sha256(f"{model}\n{prompt}".encode()).hexdigest()[:24]
        url = emu.url_for("amigochat").removesuffix("/v1") + f"/images/{digest}.png"
        error = error_body(fault.error_status, fault.message)
        await send_json(writer, 200, {"data": [{"url": url}]}, fault=fault, error=error)
