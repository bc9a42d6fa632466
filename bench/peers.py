"""One benchmark run of an official SDK under asyncio, in its own process: one JSON line out.

Usage: python bench/peers.py '<JSON config>' (written by ``bench/run.py``).

Peers, each pointed at the emulator's route for its provider, retries off:
    google_genai    ``google-genai``: ``client.aio.models.generate_content_stream`` (Gemini).
    gigachat_sdk    ``gigachat``: ``GigaChat.astream`` (GigaChat, over TLS with the emulator's
                    CA given as ``ca_bundle_file``; OAuth with the emulator's credentials).
    openai_sdk      ``openai``: ``AsyncOpenAI.chat.completions.create(stream=True)`` (the
                    OpenAI-compatible route; ``include_usage`` as trio_llm asks for it).

Each counts the text chunks it yields, as a user's loop would read them (``chunk.text``,
``delta.content``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from common import GEMINI_MODEL, GIGACHAT_MODEL, OPENAI_MODEL, PROMPT, Meter, config, emit

Stream = Callable[[], Awaitable[int]]


@contextlib.asynccontextmanager
async def google_genai(cfg: dict[str, Any]) -> AsyncIterator[Stream]:
    from google import genai
    from google.genai import types

    base_url = cfg["urls"]["gemini"].removesuffix("/v1beta")
    client = genai.Client(api_key=cfg["key"], http_options=types.HttpOptions(base_url=base_url, api_version="v1beta"))

    async def stream() -> int:
        events = 0
        async for chunk in await client.aio.models.generate_content_stream(model=GEMINI_MODEL, contents=PROMPT):
            if chunk.text:
                events += 1
        return events

    try:
        yield stream
    finally:
        await client.aio.aclose()


@contextlib.asynccontextmanager
async def gigachat_sdk(cfg: dict[str, Any]) -> AsyncIterator[Stream]:
    from gigachat import GigaChat

    client = GigaChat(
        base_url=cfg["urls"]["gigachat"],
        auth_url=cfg["urls"]["gigachat-auth"],
        credentials=cfg["credentials"],
        scope="GIGACHAT_API_PERS",
        model=GIGACHAT_MODEL,
        ca_bundle_file=cfg["ca_file"],
    )

    async def stream() -> int:
        events = 0
        async for chunk in client.astream(PROMPT):
            if chunk.choices and chunk.choices[0].delta.content:
                events += 1
        return events

    try:
        yield stream
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def openai_sdk(cfg: dict[str, Any]) -> AsyncIterator[Stream]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=cfg["urls"]["openai"], api_key=cfg["key"], max_retries=0)

    async def stream() -> int:
        events = 0
        chunks = await client.chat.completions.create(
            model=OPENAI_MODEL,
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                events += 1
        return events

    try:
        yield stream
    finally:
        await client.close()


PEERS = {"google_genai": google_genai, "gigachat_sdk": gigachat_sdk, "openai_sdk": openai_sdk}


async def scenario_stream(cfg: dict[str, Any]) -> dict[str, Any]:
    async with PEERS[cfg["client"]](cfg) as stream:
        await stream()  # warm-up: the connection, the token, pydantic's caches
        runs = []
        for _ in range(cfg["reps"]):
            gc.collect()
            with Meter(cfg["emulator_pid"]) as meter:
                events = await stream()
            runs.append({**meter.result(), "events": events})
    # The least CPU of the timed streams: what noise (an interrupt, a collection) only adds to.
    return {**min(runs, key=lambda run: run["cpu_s"]), "all_cpu_s": [run["cpu_s"] for run in runs]}


async def main() -> None:
    cfg = config()
    assert cfg["scenario"] == "stream"
    emit({"client": cfg["client"], **await scenario_stream(cfg)})


if __name__ == "__main__":
    asyncio.run(main())
