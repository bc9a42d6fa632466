"""Whole (not streamed) bodies with faults applied, for routes whose service answers in one piece
(Dynaspark, AmigoChat's images).

Such a body counts as one event: ``truncate_after`` (any value) closes the connection halfway
through it, ``reset_after`` resets it there, ``stall_after`` sends the headers and then nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from ._emulator import Fault, send_json

if TYPE_CHECKING:
    from ._server import ResponseWriter

__all__ = ["send_body"]


async def send_body(
    writer: ResponseWriter, status: int, payload: Any, *, fault: Fault, headers: Mapping[str, str] | None = None
) -> None:
    """``payload`` (bytes as they are, else JSON) as one response, misbehaving as ``fault`` says."""
    if fault.stall_after is None and fault.truncate_after is None and fault.reset_after is None:
        await send_json(writer, status, payload, headers=headers, fault=fault)
        return
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    if fault.delay:
        await trio.sleep(fault.delay)
    merged = {"content-type": fault.content_type or "application/json", **(headers or {}), **fault.headers}
    await writer.start(status, merged, content_length=len(body))
    if fault.stall_after is not None:
        await trio.sleep_forever()
    await writer.write(body[: len(body) // 2])
    if fault.reset_after is not None:
        await writer.reset()
    await writer.abort()
