"""Checks the reliability tests share: no secret anywhere an error or a log could show it."""

from __future__ import annotations

import base64
import traceback
from collections.abc import Iterable

from trio_llm.testing import Emulator


def secrets_of(emu: Emulator, *extra: str) -> list[str]:
    """The emulator's key and GigaChat credentials (and the secret inside them), every access
    token it was sent, and ``extra``."""
    client_secret = base64.b64decode(emu.credentials).decode().split(":", 1)[1]
    tokens = {
        request.headers["authorization"].split(" ", 1)[1]
        for request in emu.requests_for("gigachat")
        if request.route != "oauth" and " " in request.headers.get("authorization", "")
    }
    return [emu.api_key, emu.credentials, client_secret, *tokens, *extra]


def rendered(error: BaseException) -> list[str]:
    """Everything an error shows: its text, repr, whole traceback (causes included) and body."""
    return [str(error), repr(error), "".join(traceback.format_exception(error)), repr(getattr(error, "body", None))]


def assert_no_secret(secrets: Iterable[str], texts: Iterable[str]) -> None:
    everything = "\n".join(texts)
    for secret in secrets:
        assert secret, "an empty secret would match anything"
        assert secret not in everything, "a secret leaked"
