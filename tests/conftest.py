"""Shared fixtures: a running emulator per test (real loopback sockets, no network)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from trio_llm.testing import Emulator

#: A real 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


@pytest.fixture
def png() -> bytes:
    return PNG
