"""The retry rules, for every provider: never a retried cancellation, never a sleep past the
caller's deadline, and jitter that spreads a thousand failed callers over the whole window.

(Which errors are retried, Retry-After and its cap, and no retry after the first event are
cells of the fault matrix.) All on trio's MockClock, over real loopback sockets.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from fault_matrix import PROMPT, TARGETS, Target

import trio_llm
from trio_llm.testing import Emulator, Fault

POLICY = trio_llm.RetryPolicy(max_attempts=3, initial_backoff=10.0, max_backoff=60.0)


async def call(emu: Emulator, target: Target, retry: trio_llm.RetryPolicy, **kwargs: object) -> None:
    provider = emu.provider(target.provider, retry=retry, **kwargs)
    if target.complete:
        await provider.complete(PROMPT, model=target.model)
        return
    async with provider.stream(PROMPT, model=target.model) as events:
        async for _event in events:
            pass


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
async def test_a_cancellation_while_waiting_for_the_answer_is_not_retried(
    emu: Emulator, target: Target, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject(target.provider, Fault(delay=100), route=target.route)
    with trio.move_on_after(1) as scope:
        await call(emu, target, POLICY)
    assert scope.cancelled_caught
    await trio.sleep(500)  # long enough for any retry to have been sent
    assert emu.count(target.provider, target.route) == 1
    with trio.fail_after(5):
        await emu.wait_for_connections(0)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
async def test_a_cancellation_while_waiting_to_retry_sends_nothing_more(
    emu: Emulator, target: Target, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject(target.provider, Fault(status=503), times=3, route=target.route)
    async with trio.open_nursery() as nursery:  # no deadline: the backoff (5 to 10 s) is slept
        nursery.start_soon(call, emu, target, POLICY)
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    await trio.sleep(500)
    assert emu.count(target.provider, target.route) == 1


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
async def test_a_wait_past_the_callers_deadline_raises_at_once(
    emu: Emulator, target: Target, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject(target.provider, Fault(status=503, retry_after="30"), route=target.route)
    with trio.move_on_after(10), pytest.raises(trio_llm.ServerError, match="would pass the deadline"):
        await call(emu, target, POLICY)
    assert trio.current_time() == 0  # the real error, at once: not a sleep, nor a timeout later
    assert emu.count(target.provider, target.route) == 1


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
async def test_a_wait_past_the_total_deadline_raises_at_once(
    emu: Emulator, target: Target, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject(target.provider, Fault(status=503), times=3, route=target.route)
    timeouts = trio_llm.Timeouts(total=4.0)  # the first backoff alone is 5 to 10 s
    with pytest.raises(trio_llm.ServerError, match="would pass the deadline"):
        await call(emu, target, POLICY, timeouts=timeouts)
    assert trio.current_time() == 0
    assert emu.count(target.provider, target.route) == 1


async def test_a_thousand_callers_that_failed_together_do_not_retry_in_lock_step(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes = {(target.provider, target.route): target for target in TARGETS}  # one caller kind per endpoint
    per_target = 1000 // len(routes) + 1
    policy = trio_llm.RetryPolicy(initial_backoff=1.0)  # the first retry after 0.5 to 1 s
    async with Emulator() as emu:
        for target in routes.values():
            emu.inject(target.provider, Fault(status=503), times=per_target, route=target.route)
        async with trio.open_nursery() as nursery:
            for target in routes.values():
                provider = emu.provider(target.provider, retry=policy)
                await nursery.start(_callers, provider, target, per_target)
        for target in routes.values():
            requests = [r.received_at for r in emu.requests_for(target.provider, target.route)]
            first, retries = requests[:per_target], sorted(requests[per_target:])
            assert len(retries) == per_target, target.id
            assert max(first) == 0.0  # they all failed at the same instant...
            # ... and came back spread over the whole window, each at its own time.
            assert 0.5 <= retries[0] < 0.55 and 0.95 < retries[-1] <= 1.0, target.id
            assert len(set(retries)) == per_target, target.id


async def _callers(provider: trio_llm.Provider, target: Target, count: int, task_status: trio.TaskStatus[None]) -> None:
    async with provider, trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(_complete, provider, target)
        task_status.started()


async def _complete(provider: trio_llm.Provider, target: Target) -> None:
    reply = await provider.complete(PROMPT, model=target.model)
    assert reply.finish is not None
