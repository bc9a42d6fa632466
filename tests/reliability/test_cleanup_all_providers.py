"""No connection outlives its call, for every provider: after ``break``, and after an outside
cancellation of a thousand calls in flight across all providers at once.

(After every fault of the matrix, the fault matrix checks it; Gemini's own thousand-stream
cancellation is in tests/test_stream.py.)
"""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio.testing
from fault_matrix import PROMPT, STREAMED, TARGETS, Target

import trio_llm
from trio_llm.testing import Emulator, Fault

NO_DEADLINES = trio_llm.Timeouts(first_event=None, idle=None, total=None)


@pytest.mark.parametrize("target", STREAMED, ids=lambda t: t.id)
async def test_break_closes_the_connection_at_once_even_on_an_open_provider(
    emu: Emulator, target: Target, autojump_clock: trio.testing.MockClock
) -> None:
    async with emu.provider(target.provider) as provider:
        async with provider.stream(PROMPT, model=target.model) as events:
            async for _event in events:
                break
        # The half-read response cannot go back to the pool: its connection is closed now,
        # while the provider (and its pool) is still open.
        with trio.fail_after(5):
            await emu.wait_for_connections(0)
        assert events.events_delivered == 1


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
async def test_break_after_the_first_event_leaves_nothing_open(
    emu: Emulator, target: Target, autojump_clock: trio.testing.MockClock
) -> None:
    async with emu.provider(target.provider) as provider:
        async with provider.stream(PROMPT, model=target.model) as events:
            async for _event in events:
                break
        # A whole reply was read to its end: its connection may wait in the pool for reuse.
        assert emu.open_connections <= 1
    with trio.fail_after(5):
        await emu.wait_for_connections(0)


async def test_cancelling_a_thousand_calls_across_every_provider_leaves_no_connection_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    count = 1000
    async with Emulator() as emu:
        targets = [TARGETS[n % len(TARGETS)] for n in range(count)]
        for target in TARGETS:
            # Streams stop after their first event (the caller holds them open after it); whole
            # replies (one event) after their headers.
            emu.inject(target.provider, Fault(stall_after=1), times=targets.count(target), route=target.route)
        events_received = 0
        # Kept alive, so that the garbage collector cannot close what the streams left open.
        streams: list[trio_llm.EventStream] = []

        async def one(provider: trio_llm.Provider, target: Target) -> None:
            nonlocal events_received
            if target.complete:
                await provider.complete(PROMPT, model=target.model)
                return
            async with provider.stream(PROMPT, model=target.model) as events:
                streams.append(events)
                async for _event in events:
                    events_received += 1
                    break
                # Cancelled here, in the caller's code and not in a read of trio_llm or httpx:
                # only leaving the block can close the response.
                await trio.sleep_forever()

        providers = {target.id: emu.provider(target.provider, timeouts=NO_DEADLINES) for target in TARGETS}
        async with contextlib.AsyncExitStack() as stack:
            for provider in providers.values():
                await stack.enter_async_context(provider)  # pooled, as an application would
            async with trio.open_nursery() as nursery:
                for target in targets:
                    nursery.start_soon(one, providers[target.id], target)
                await trio.sleep(5)
                assert emu.open_connections == count  # every call in flight, none finished
                nursery.cancel_scope.cancel()
            # The providers and their pools are still open: each call closed its own connection.
            with trio.fail_after(5):
                await emu.wait_for_connections(0)
        streamed = sum(1 for target in targets if target.streamed)
        assert events_received == streamed  # each stream had its first event
