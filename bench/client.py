"""One benchmark client run, in its own process: prints one JSON line of measurements.

Usage: python bench/client.py MODE URL KEY

Modes:
    trio_llm     ``Gemini.stream`` through trio_llm (decoding into typed events).
    raw_httpx    The floor: httpx under trio, SSE lines split by httpx, ``json.loads`` per
                 event, text pulled out by hand. No SDK, no typing, no validation.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable

import httpx
import trio

import trio_llm

PROMPT = "Benchmark prompt"


async def stream_trio_llm(gemini: trio_llm.Gemini) -> int:
    events = 0
    async with gemini.stream(PROMPT) as stream:
        async for event in stream:
            if isinstance(event, trio_llm.TextDelta):
                events += 1
    return events


async def stream_raw_httpx(client: httpx.AsyncClient, url: str, key: str) -> int:
    events = 0
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    target = f"{url}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    async with client.stream("POST", target, json=body, headers={"x-goog-api-key": key}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                chunk = json.loads(line[5:])
                for part in chunk["candidates"][0].get("content", {}).get("parts", ()):
                    if "text" in part:
                        events += 1
    return events


async def timed(stream: Callable[[], Awaitable[int]]) -> dict[str, float]:
    await stream()  # warm-up: first connection, cattrs hook generation, caches
    wall = time.perf_counter()
    cpu = time.process_time()
    events = await stream()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    return {"events": events, "cpu_s": cpu, "wall_s": wall}


async def fanout(url: str, key: str, targets: int) -> dict[str, float]:
    """One stream alone, then ``gather`` over ``targets`` streams; wall and CPU of each."""
    async with trio_llm.Gemini(api_key=key, base_url=url) as gemini:
        await gemini.complete(PROMPT)  # warm-up
        wall = time.perf_counter()
        single = await trio_llm.gather([gemini], PROMPT)
        single_wall = time.perf_counter() - wall
        wall = time.perf_counter()
        cpu = time.process_time()
        outcomes = await trio_llm.gather([gemini] * targets, PROMPT)
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
    failures = sum(not o.ok for o in outcomes) + sum(not o.ok for o in single)
    slowest = max(o.elapsed for o in outcomes)
    return {"events": targets, "cpu_s": cpu, "wall_s": wall, "single_s": single_wall, "slowest_s": slowest,
            "failures": failures}  # fmt: skip


async def main(mode: str, url: str, key: str) -> None:
    # Clients are built before timing (building one is not the per-event cost measured).
    if mode.startswith("gather"):
        result = await fanout(url, key, int(mode.removeprefix("gather")))
    elif mode == "trio_llm":
        async with trio_llm.Gemini(api_key=key, base_url=url) as gemini:
            result = await timed(lambda: stream_trio_llm(gemini))
    elif mode == "raw_httpx":
        async with httpx.AsyncClient(timeout=None) as client:
            result = await timed(lambda: stream_raw_httpx(client, url, key))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps({"mode": mode, **result}))


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:4])
