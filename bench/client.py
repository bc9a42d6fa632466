"""One benchmark run of a trio client, in its own process: prints one JSON line of measurements.

Usage: python bench/client.py '<JSON config>' (written by ``bench/run.py``).

Clients:
    trio_llm           The providers of trio_llm, decoding every event into typed objects.
    raw_httpx          The floor: httpx under trio, SSE lines split by httpx, ``json.loads`` per
                       event, text picked out by hand. No SDK, no typing, no validation, no
                       deadlines. The same requests (bodies, headers) as trio_llm sends. One
                       ``httpx.AsyncClient`` for everything, as one writes it.
    raw_httpx_sharded  The same with one client per request in flight, as trio_llm leases them.

Scenarios: ``SCENARIOS`` below; each returns one dict, printed as JSON.
"""

from __future__ import annotations

import contextlib
import gc
import json
import resource
import ssl
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import trio
from common import (
    AMIGOCHAT_MODEL,
    GEMINI_MODEL,
    GIGACHAT_MODEL,
    OPENAI_MODEL,
    PROMPT,
    Meter,
    config,
    emit,
    median,
    percentile,
    rss,
    sockets,
)

import trio_llm

# -- trio_llm ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_providers(cfg: dict[str, Any]) -> AsyncIterator[dict[str, trio_llm.Provider]]:
    urls = cfg["urls"]
    providers: dict[str, trio_llm.Provider] = {
        "gemini": trio_llm.Gemini(api_key=cfg["key"], base_url=urls["gemini"]),
        "gigachat": trio_llm.GigaChat(
            credentials=cfg["credentials"], base_url=urls["gigachat"], auth_url=urls["gigachat-auth"],
            ca_file=cfg["ca_file"],
        ),
        "openai": trio_llm.OpenAICompatible(base_url=urls["openai"], api_key=cfg["key"]),
        "amigochat": trio_llm.AmigoChat(base_url=urls["amigochat"]),
    }  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        for provider in providers.values():
            await stack.enter_async_context(provider)
        yield providers


#: Awaited after a stream's first text event (the stream still open): ``True`` closes the
#: stream at once, ``False`` reads on.
Hold = Callable[[], Awaitable[bool]]


async def read_trio_llm(provider: trio_llm.Provider, hold: Hold | None = None) -> tuple[int, int]:
    """Stream one answer: ``(text events, characters of text)``."""
    events = size = 0
    async with provider.stream(PROMPT) as stream:
        async for event in stream:
            if isinstance(event, trio_llm.TextDelta):
                events += 1
                size += len(event.text)
                if hold is not None and events == 1 and await hold():
                    break
    return events, size


# -- raw httpx ---------------------------------------------------------------------------------


class Raw:
    """httpx under trio, by hand: what trio_llm is measured against."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        urls = cfg["urls"]
        # One client, as a user would write it, keeping every connection alive as trio_llm does;
        # or ("sharded") one client per request in flight, as trio_llm leases them.
        self.sharded = cfg["client"] == "raw_httpx_sharded"
        self.context = ssl.create_default_context(cafile=cfg["ca_file"])
        self.client = self.new_client()
        self.free: list[httpx.AsyncClient] = [self.client]
        self.clients: list[httpx.AsyncClient] = [self.client]
        gemini = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
        messages = [{"role": "user", "content": PROMPT}]
        self.requests: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
            "gemini": (
                f"{urls['gemini']}/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse",
                {"x-goog-api-key": cfg["key"]},
                gemini,
            ),
            "gigachat": (
                f"{urls['gigachat']}/chat/completions",
                {"accept": "text/event-stream"},
                {"model": GIGACHAT_MODEL, "messages": messages, "stream": True, "update_interval": 0},
            ),
            "openai": (
                f"{urls['openai']}/chat/completions",
                {"authorization": f"Bearer {cfg['key']}"},
                {
                    "model": OPENAI_MODEL, "messages": messages, "stream": True,
                    "stream_options": {"include_usage": True},
                },
            ),
            "amigochat": (
                f"{urls['amigochat']}/chat/completions",
                {"authorization": "Bearer", "x-device-platform": "web", "x-device-version": "1.0.45"},
                {
                    "chatId": str(uuid.uuid4()), "frequency_penalty": 0, "max_tokens": 4000, "messages": messages,
                    "model": AMIGOCHAT_MODEL, "personaId": "amigo", "presence_penalty": 0, "stream": True,
                    "temperature": 0.5, "top_p": 0.95,
                },
            ),
        }  # fmt: skip
        self.complete_url = f"{urls['gemini']}/models/{GEMINI_MODEL}:generateContent"

    def new_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
        return httpx.AsyncClient(timeout=None, verify=self.context, limits=limits)

    @contextlib.contextmanager
    def lease(self) -> Iterator[httpx.AsyncClient]:
        if not self.sharded:
            yield self.client
            return
        if not self.free:
            self.clients.append(self.new_client())
            self.free.append(self.clients[-1])
        client = self.free.pop()
        try:
            yield client
        finally:
            self.free.append(client)

    async def __aenter__(self) -> Raw:
        response = await self.client.post(
            self.cfg["urls"]["gigachat-auth"],
            headers={
                "authorization": f"Basic {self.cfg['credentials']}",
                "rquid": str(uuid.uuid4()),
                "accept": "application/json",
            },
            data={"scope": "GIGACHAT_API_PERS"},
        )
        response.raise_for_status()
        self.requests["gigachat"][1]["authorization"] = f"Bearer {response.json()['access_token']}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for client in self.clients:
            await client.aclose()

    async def stream(self, route: str, hold: Hold | None = None) -> tuple[int, int]:
        """Stream one answer: ``(text events, characters of text)``."""
        url, headers, body = self.requests[route]
        if route == "amigochat":
            headers = {**headers, "x-device-uuid": str(uuid.uuid4())}
        with self.lease() as client:
            return await self._read(client, route, url, headers, body, hold)

    async def _read(
        self, client: httpx.AsyncClient, route: str, url: str, headers: dict[str, str], body: Any, hold: Hold | None
    ) -> tuple[int, int]:
        events = size = 0
        async with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                raise RuntimeError(f"{route}: HTTP {response.status_code}")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                if route == "gemini":
                    chunk = json.loads(line[5:])
                    texts = [
                        part["text"]
                        for part in chunk["candidates"][0].get("content", {}).get("parts", ())
                        if "text" in part
                    ]
                else:
                    data = line[5:].strip()
                    if data == "[DONE]":
                        continue  # read on to the end of the body, so that the connection is kept
                    texts = [
                        c["delta"]["content"]
                        for c in json.loads(data).get("choices", ())
                        if c.get("delta", {}).get("content")
                    ]
                for text in texts:
                    events += 1
                    size += len(text)
                    if hold is not None and events == 1 and await hold():
                        return events, size
        return events, size

    async def models(self) -> None:
        response = await self.client.get(f"{self.cfg['urls']['gemini']}/models", headers=self.requests["gemini"][1])
        response.raise_for_status()

    async def complete(self) -> int:
        with self.lease() as client:
            response = await client.post(
                self.complete_url, json=self.requests["gemini"][2], headers=self.requests["gemini"][1]
            )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        parts = response.json()["candidates"][0]["content"]["parts"]
        return len("".join(part.get("text", "") for part in parts))


class TrioLLM:
    """trio_llm's providers, opened for the whole run (their connections are kept)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.stack = contextlib.AsyncExitStack()
        self.providers: dict[str, trio_llm.Provider] = {}

    async def __aenter__(self) -> TrioLLM:
        self.providers = await self.stack.enter_async_context(open_providers(self.cfg))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stack.aclose()

    async def stream(self, route: str, hold: Hold | None = None) -> tuple[int, int]:
        return await read_trio_llm(self.providers[route], hold)

    async def complete(self) -> int:
        return len((await self.providers["gemini"].complete(PROMPT)).text)

    async def models(self) -> None:
        await self.providers["gemini"].models()

    async def fan(self, routes: list[str]) -> tuple[int, float]:
        """``gather`` over one target per route: ``(failures, slowest target's time)``."""
        outcomes = await trio_llm.gather([self.providers[route] for route in routes], PROMPT)
        return sum(not outcome.ok for outcome in outcomes), max(outcome.elapsed for outcome in outcomes)


async def raw_fan(raw: Raw, routes: list[str]) -> tuple[int, float]:
    """What ``gather`` does, by hand: one task per route, failures counted."""
    failures = 0
    slowest = 0.0

    async def run(route: str) -> None:
        nonlocal failures, slowest
        started = trio.current_time()
        try:
            await raw.stream(route)
        except (httpx.HTTPError, OSError, RuntimeError, ValueError, KeyError):
            failures += 1
        slowest = max(slowest, trio.current_time() - started)

    async with trio.open_nursery() as nursery:
        for route in routes:
            nursery.start_soon(run, route)
    return failures, slowest


def open_client(cfg: dict[str, Any]) -> Any:
    return TrioLLM(cfg) if cfg["client"] == "trio_llm" else Raw(cfg)


async def close_at_once() -> bool:
    await trio.lowlevel.checkpoint()
    return True


class Holder:
    """Counts streams that had their first event; holds them open until released."""

    def __init__(self, count: int, *, read_on: bool = False) -> None:
        self.count = count
        self.ready = 0
        self.all_ready = trio.Event()
        self.release = trio.Event()
        self.read_on = read_on

    async def hold(self) -> bool:
        self.ready += 1
        if self.ready == self.count:
            self.all_ready.set()
        if self.read_on:
            await trio.lowlevel.checkpoint()
            return False
        await self.release.wait()
        return True


ROUTES = ("gemini", "gigachat", "openai", "amigochat")


def spread(count: int) -> list[str]:
    return [ROUTES[index % len(ROUTES)] for index in range(count)]


# -- scenarios ---------------------------------------------------------------------------------


async def scenario_stream(cfg: dict[str, Any]) -> dict[str, Any]:
    """One long stream, timed ``reps`` times after a warm-up; the median run is reported."""
    async with open_client(cfg) as client:
        await client.stream(cfg["route"])  # warm-up: the connection, the token, caches
        runs = []
        for _ in range(cfg["reps"]):
            gc.collect()
            with Meter(cfg["emulator_pid"]) as meter:
                events, _size = await client.stream(cfg["route"])
            runs.append({**meter.result(), "events": events})
    # The least CPU of the timed streams: what noise (an interrupt, a collection) only adds to.
    return {**min(runs, key=lambda run: run["cpu_s"]), "all_cpu_s": [run["cpu_s"] for run in runs]}


async def scenario_requests(cfg: dict[str, Any]) -> dict[str, Any]:
    """Non-streamed Gemini requests from ``concurrency`` workers in a closed loop."""
    concurrency, total = cfg["concurrency"], cfg["requests"]
    async with open_client(cfg) as client:

        async def workers(count: int, latencies: list[float]) -> None:
            async def worker(n: int) -> None:
                for _ in range(n):
                    started = time.perf_counter()
                    await client.complete()
                    latencies.append(time.perf_counter() - started)

            async with trio.open_nursery() as nursery:
                for index in range(concurrency):
                    nursery.start_soon(worker, count // concurrency + (index < count % concurrency))

        await workers(max(total // 5, 2 * concurrency), [])  # warm-up: every connection opened
        latencies: list[float] = []
        blocks = []
        for _ in range(cfg["blocks"]):
            gc.collect()
            done = len(latencies)
            with Meter(cfg["emulator_pid"]) as meter:
                await workers(total // cfg["blocks"], latencies)
            blocks.append({**meter.result(), "requests": len(latencies) - done})
    # Every block counts: one httpx client's pool costs most in the burst that starts a block
    # (~8x the later requests at 128 in flight), and that is part of what it costs.
    wall = sum(block["wall_s"] for block in blocks)
    return {
        "cpu_s": sum(block["cpu_s"] for block in blocks),
        "wall_s": wall,
        "emulator_busy": sum(block["emulator_busy"] * block["wall_s"] for block in blocks) / wall,
        "requests": len(latencies),
        "rate": len(latencies) / wall,
        "block_cpu_us": [block["cpu_s"] / block["requests"] * 1e6 for block in blocks],
        "p50_s": median(latencies),
        "p99_s": percentile(latencies, 0.99),
    }


async def scenario_fanout(cfg: dict[str, Any]) -> dict[str, Any]:
    """``streams`` streams at once across the providers: on new connections ("cold"), then
    again on the connections kept from that ("warm"). First one stream of each provider
    alone, on a kept connection: the ideal."""
    routes = spread(cfg["streams"])
    out: dict[str, Any] = {}
    async with open_client(cfg) as client:
        for route in ROUTES:
            await client.stream(route)  # warm-up: the token, one connection each
        alone = {}
        for route in ROUTES:
            started = time.perf_counter()
            await client.stream(route)
            alone[route] = time.perf_counter() - started
        out["alone_s"] = alone
        for phase in cfg.get("phases", ("cold", "warm")):
            gc.collect()
            with Meter(cfg["emulator_pid"]) as meter:
                failures, slowest = await (
                    client.fan(routes) if isinstance(client, TrioLLM) else raw_fan(client, routes)
                )
            out[phase] = {**meter.result(), "failures": failures, "slowest_s": slowest}
    return out


async def scenario_memory(cfg: dict[str, Any]) -> dict[str, Any]:
    """Memory per open stream: ``streams`` Gemini streams held open after their first event."""
    count = cfg["streams"]
    async with open_client(cfg) as client:

        async def open_streams(n: int) -> tuple[int, int]:
            holder = Holder(n)
            async with trio.open_nursery() as nursery:
                for _ in range(n):
                    nursery.start_soon(client.stream, "gemini", holder.hold)
                await holder.all_ready.wait()
                await trio.sleep(0.05)
                gc.collect()
                used, objects = rss(), len(gc.get_objects())
                holder.release.set()
            return used, objects

        await open_streams(min(count, 50))  # warm-up: imports, caches, allocator arenas
        gc.collect()
        before, objects_before = rss(), len(gc.get_objects())
        during, objects_during = await open_streams(count)
        gc.collect()
        after = rss()
    return {
        "bytes_per_stream": (during - before) / count,
        "objects_per_stream": (objects_during - objects_before) / count,
        "rss_before": before,
        "rss_after_close": after,
    }


async def scenario_cancel(cfg: dict[str, Any]) -> dict[str, Any]:
    """Cancel ``streams`` in-flight streams across the providers at once; how long until every
    socket is closed, on the client's side and on the emulator's."""
    pid = cfg["emulator_pid"]
    routes = spread(cfg["streams"])
    async with open_client(cfg) as client:
        for route in ROUTES:
            await client.stream(route, close_at_once)  # warm-up: the token, TLS, caches
        await trio.sleep(0.2)
        client_before, emulator_before = sockets(), sockets(pid)
        holder = Holder(len(routes), read_on=True)
        async with trio.open_nursery() as nursery:
            for route in routes:
                nursery.start_soon(client.stream, route, holder.hold)
            await holder.all_ready.wait()
            client_open, emulator_open = sockets() - client_before, sockets(pid) - emulator_before
            started = time.perf_counter()
            nursery.cancel_scope.cancel()
        cancelled = time.perf_counter() - started
        client_left = sockets() - client_before
        # Another process's sockets: nothing to wait on but /proc, polled every millisecond.
        while sockets(pid) > emulator_before and time.perf_counter() - started < 5:  # noqa: ASYNC110
            await trio.sleep(0.001)
        closed = time.perf_counter() - started
        emulator_left = sockets(pid) - emulator_before
        gc.collect()
        client_left_after_gc = sockets() - client_before
    return {
        "streams": len(routes),
        "client_open": client_open,
        "emulator_open": emulator_open,
        "cancel_s": cancelled,
        "client_left": client_left,
        "client_left_after_gc": client_left_after_gc,
        "emulator_closed_s": closed,
        "emulator_left": emulator_left,
    }


async def scenario_soak(cfg: dict[str, Any]) -> dict[str, Any]:
    """``concurrency`` workers for ``seconds`` in ``bursts``: whole streams, streams left after
    their first event, and non-streamed calls, across the providers. After each burst, with
    nothing in flight and after ``gc.collect()``: RSS, GC-tracked objects and the blocks
    Python's allocator holds (``sys.getallocatedblocks``)."""
    assert cfg["client"] == "trio_llm"
    concurrency, bursts = cfg["concurrency"], cfg["bursts"]
    counts = {"streams": 0, "left_early": 0, "completes": 0}
    samples: list[tuple[float, int, int, int, int]] = []
    async with TrioLLM(cfg) as client:
        start = trio.current_time()

        async def worker(index: int, deadline: float) -> None:
            n = index
            while trio.current_time() < deadline:
                route = ROUTES[n % len(ROUTES)]
                kind = (n // len(ROUTES)) % 3
                if kind == 0:
                    await client.stream(route)
                    counts["streams"] += 1
                elif kind == 1:
                    await client.stream(route, close_at_once)
                    counts["left_early"] += 1
                else:
                    await client.providers[route].complete(PROMPT)
                    counts["completes"] += 1
                n += concurrency

        for burst in range(bursts):
            deadline = start + cfg["seconds"] * (burst + 1) / bursts
            async with trio.open_nursery() as nursery:
                for index in range(concurrency):
                    nursery.start_soon(worker, index, deadline)
            gc.collect()
            calls = sum(counts.values())
            samples.append((trio.current_time() - start, rss(), len(gc.get_objects()), sys.getallocatedblocks(), calls))
    return {**counts, "samples": samples}


async def scenario_large(cfg: dict[str, Any]) -> dict[str, Any]:
    """One Gemini stream whose single text event is ``mib`` MiB."""
    async with open_client(cfg) as client:
        await client.models()  # warm-up: a connection, without a large reply
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        base = rss()
        with Meter(cfg["emulator_pid"]) as meter:
            events, size = await client.stream("gemini")
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - max(peak, base)
    return {**meter.result(), "events": events, "chars": size, "peak_growth": grown}


SCENARIOS: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "stream": scenario_stream,
    "requests": scenario_requests,
    "fanout": scenario_fanout,
    "memory": scenario_memory,
    "cancel": scenario_cancel,
    "soak": scenario_soak,
    "large": scenario_large,
}


async def main() -> None:
    cfg = config()
    result = await SCENARIOS[cfg["scenario"]](cfg)
    emit({"client": cfg["client"], **result})


if __name__ == "__main__":
    trio.run(main)
