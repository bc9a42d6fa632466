"""The emulator's Dynaspark: a form POST to ``/generate_response`` (or the renamed
``/dsai_fuck_u_spammer``) answered with ``{"response": "..."}``.

Wire-faithful where clients can tell: it reads ``multipart/form-data`` (and the URL-encoded
form the seeds sent when there was no image), sniffs the ``file`` part's bytes as the service
did, answers errors as ``{"error": "..."}`` and unknown paths with the HTML 404 page of the
Flask app it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._media import sniff_image_type
from ._emulator import send_json, send_raw_fault_body
from ._replies import reply_text

if TYPE_CHECKING:
    from ._emulator import Emulator
    from ._server import RecordedRequest, ResponseWriter

__all__ = ["DynasparkRoutes"]

MODELS = ("gemini-1.5-flash", "gemini-1.5-flash-8b", "gemini-2.0-flash", "gemini-2.0-flash-lite")
PATHS = ("/generate_response", "/dsai_fuck_u_spammer")
_MESSAGES = {
    400: "Bad request",
    429: "Too many requests, please slow down",
    500: "An error occurred while generating the response",
    503: "Service unavailable",
}
NOT_FOUND_PAGE = (
    b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    b"<p>The requested URL was not found on the server. If you entered the URL manually please check your "
    b"spelling and try again.</p>\n"
)


class DynasparkRoutes:
    """Mounted at ``/dynaspark``: ``url_for("dynaspark")`` is ``.../dynaspark``."""

    name = "dynaspark"
    prefix = "/dynaspark"
    tls = False

    def urls(self, origin: str) -> dict[str, str]:
        return {"dynaspark": origin}

    async def handle(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, path: str) -> None:
        if request.method != "POST" or path not in PATHS:
            emu.record(request, "dynaspark", "unknown")
            await send_json(writer, 404, NOT_FOUND_PAGE, headers={"content-type": "text/html; charset=utf-8"})
            return
        emu.record(request, "dynaspark", "chat")
        fault = emu.take_fault("dynaspark", "chat")
        if fault.status is not None:
            if fault.body is not None:
                await send_raw_fault_body(writer, fault.status, fault)
            else:
                message = fault.message or _MESSAGES.get(fault.status, "Error")
                await send_json(writer, fault.status, {"error": message}, fault=fault)
            return
        try:
            fields = {field.name: field for field in request.form()}
        except (ValueError, UnicodeDecodeError):
            await send_json(writer, 400, {"error": "Invalid form data"}, fault=fault)
            return
        prompt = fields["user_input"].value.decode("utf-8", "replace") if "user_input" in fields else ""
        model = fields["ai_model"].value.decode("utf-8", "replace") if "ai_model" in fields else ""
        if not prompt.strip():
            await send_json(writer, 400, {"error": "No input provided"}, fault=fault)
            return
        if model not in MODELS:
            await send_json(writer, 400, {"error": f"Unsupported model: {model}"}, fault=fault)
            return
        text = fault.text if fault.text is not None else reply_text(prompt, emu.words)
        upload = fields.get("file")
        if upload is not None:
            mime = sniff_image_type(upload.value)
            if mime is None:
                await send_json(writer, 400, {"error": "Invalid image format"}, fault=fault)
                return
            if fault.text is None:
                text = f"I see a {mime} image of {len(upload.value)} bytes. " + text
        error = {"error": fault.message or _MESSAGES[500]}
        await send_json(writer, 200, {"response": text}, fault=fault, error=error)
