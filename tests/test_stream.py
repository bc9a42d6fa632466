"""Deadlines, retries and cleanup of streams: on trio's MockClock (autojump), over real sockets.

The emulator's delays and stalls are trio sleeps, so with the autojump clock a 60-second
deadline is reached at once, deterministically, and the test measures virtual time exactly.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import trio
import trio.testing

import trio_llm
import trio_llm._stream
from trio_llm import TextDelta
from trio_llm.testing import Emulator, Fault

NO_RETRY = trio_llm.RetryPolicy(max_attempts=1)


async def drain(stream: trio_llm.EventStream) -> list[trio_llm.Event]:
    async with stream as events:
        return [event async for event in events]


# -- deadlines per phase -----------------------------------------------------------------------


async def test_first_event_timeout_fires_at_its_deadline(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(delay=1000))
    gemini = emu.gemini(timeouts=trio_llm.Timeouts(first_event=12.5), retry=NO_RETRY)
    start = trio.current_time()
    with pytest.raises(trio_llm.FirstEventTimeout) as caught:
        await drain(gemini.stream("Hi"))
    assert trio.current_time() - start == pytest.approx(12.5)
    assert caught.value.timeout == 12.5
    with trio.fail_after(5):
        await emu.wait_for_connections(0)


async def test_first_event_timeout_applies_to_complete(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(delay=1000))
    gemini = emu.gemini(timeouts=trio_llm.Timeouts(first_event=3), retry=NO_RETRY)
    with pytest.raises(trio_llm.FirstEventTimeout):
        await gemini.complete("Hi")


async def test_idle_timeout_fires_between_events(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(stall_after=2))
    gemini = emu.gemini(timeouts=trio_llm.Timeouts(idle=4.0), retry=NO_RETRY)
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.IdleTimeout):
        async with gemini.stream("Hi") as events:
            async for event in events:
                received.append(event)
                stalled_from = trio.current_time()
    assert len(received) == 2
    assert trio.current_time() - stalled_from == pytest.approx(4.0)


async def test_idle_timeout_does_not_count_the_consumers_own_time(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator(chunk_delay=1.0) as emu:
        gemini = emu.gemini(timeouts=trio_llm.Timeouts(idle=2.0))
        async with gemini.stream("Hi") as events:
            async for _event in events:
                await trio.sleep(10)  # a slow consumer is not an idle provider
        assert events.events_delivered > 3


async def test_total_timeout_covers_the_whole_stream(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator(chunk_delay=1.0) as emu:
        gemini = emu.gemini(timeouts=trio_llm.Timeouts(idle=5.0, total=3.5))
        start = trio.current_time()
        with pytest.raises(trio_llm.TotalTimeout):
            await drain(gemini.stream("Hi"))
        assert trio.current_time() - start == pytest.approx(3.5)


async def test_slow_drip_under_the_idle_timeout_hits_the_total_deadline(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject("gemini", Fault(drip=0.01))
    gemini = emu.gemini(timeouts=trio_llm.Timeouts(idle=None, total=2.0))
    with pytest.raises(trio_llm.TotalTimeout):
        await drain(gemini.stream("Hi"))


@pytest.fixture
def full_listener() -> Iterator[int]:
    """A listening socket whose accept queue is full: connecting to it never completes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(server.getsockname())
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        yield server.getsockname()[1]
    finally:
        for filler in fillers:
            filler.close()
        server.close()


async def test_connect_timeout(full_listener: int, autojump_clock: trio.testing.MockClock) -> None:
    gemini = trio_llm.Gemini(
        api_key="k",
        base_url=f"http://127.0.0.1:{full_listener}/v1beta",
        timeouts=trio_llm.Timeouts(connect=2.0),
        retry=NO_RETRY,
    )
    start = trio.current_time()
    with pytest.raises(trio_llm.ConnectTimeout):
        await gemini.complete("Hi")
    assert trio.current_time() - start == pytest.approx(2.0, abs=0.1)


async def test_callers_own_deadline_closes_everything(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(stall_after=1))
    with trio.move_on_after(7) as scope:
        async with emu.gemini(timeouts=trio_llm.Timeouts(idle=None)).stream("Hi") as events:
            async for _event in events:
                pass
    assert scope.cancelled_caught
    with trio.fail_after(5):
        await emu.wait_for_connections(0)


# -- retries -----------------------------------------------------------------------------------


async def test_retries_5xx_with_backoff_then_succeeds(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(status=503), times=2)
    policy = trio_llm.RetryPolicy(max_attempts=3, initial_backoff=1.0, max_backoff=8.0)
    start = trio.current_time()
    reply = await emu.gemini(retry=policy).complete("Hi")
    waited = trio.current_time() - start
    assert reply.text
    assert emu.count("gemini", "chat") == 3
    assert 0.5 + 1.0 <= waited <= 1.0 + 2.0  # jittered 1 s then 2 s: each between half and all


async def test_gives_up_after_max_attempts(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(status=500), times=5)
    with pytest.raises(trio_llm.ServerError):
        await emu.gemini(retry=trio_llm.RetryPolicy(max_attempts=4)).complete("Hi")
    assert emu.count("gemini", "chat") == 4


async def test_does_not_retry_client_errors(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(status=400), times=3)
    with pytest.raises(trio_llm.BadRequestError):
        await emu.gemini().complete("Hi")
    assert emu.count("gemini", "chat") == 1


async def test_honours_retry_after(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(status=429, headers={"retry-after": "7"}))
    start = trio.current_time()
    await emu.gemini().complete("Hi")
    assert trio.current_time() - start == pytest.approx(7.0)
    assert emu.count("gemini", "chat") == 2


async def test_honours_retry_info_delay(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(status=429, retry_after="3.5"))
    start = trio.current_time()
    await emu.gemini().complete("Hi")
    assert trio.current_time() - start == pytest.approx(3.5)


async def test_retry_after_beyond_the_cap_fails_fast(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(status=429, headers={"retry-after": "3600"}))
    start = trio.current_time()
    with pytest.raises(trio_llm.RateLimitError) as caught:
        await emu.gemini(retry=trio_llm.RetryPolicy(retry_after_cap=60)).complete("Hi")
    assert caught.value.retry_after == 3600
    assert trio.current_time() == start
    assert emu.count("gemini", "chat") == 1


async def test_never_sleeps_past_the_callers_deadline(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(status=503, headers={"retry-after": "30"}))
    start = trio.current_time()
    with trio.move_on_after(10), pytest.raises(trio_llm.ServerError):
        await emu.gemini().complete("Hi")
    assert trio.current_time() == start  # failed at once with the real error, not a timeout later


async def test_never_sleeps_past_its_own_total_deadline(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(status=503, headers={"retry-after": "30"}))
    with pytest.raises(trio_llm.ServerError):
        await emu.gemini(timeouts=trio_llm.Timeouts(total=20)).complete("Hi")


async def test_retries_a_reset_before_the_first_event(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(reset_after=0))
    events = await drain(emu.gemini().stream("Hi"))
    assert isinstance(events[-1], trio_llm.Finish)
    assert emu.count("gemini", "chat") == 2


async def test_retries_an_error_event_before_the_first_event(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject("gemini", Fault(error_after=0, error_status=503))
    events = await drain(emu.gemini().stream("Hi"))
    assert isinstance(events[-1], trio_llm.Finish)
    assert emu.count("gemini", "chat") == 2


async def test_never_retries_after_an_event_reached_the_caller(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    emu.inject("gemini", Fault(reset_after=2))
    received: list[trio_llm.Event] = []
    with pytest.raises(trio_llm.TransportError):
        async with emu.gemini().stream("Hi") as events:
            async for event in events:
                received.append(event)
    assert len(received) == 2
    assert emu.count("gemini", "chat") == 1  # the answer is never repeated or spliced


async def test_a_cancellation_is_never_retried(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(delay=100))
    with trio.move_on_after(1):
        await emu.gemini().complete("Hi")
    await trio.sleep(200)
    assert emu.count("gemini", "chat") == 1


async def test_connection_refused_is_retried_then_a_transport_error(autojump_clock: trio.testing.MockClock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gemini = trio_llm.Gemini(api_key="k", base_url=f"http://127.0.0.1:{port}/v1beta")
    start = trio.current_time()
    with pytest.raises(trio_llm.TransportError, match="could not connect"):
        await gemini.complete("Hi")
    assert trio.current_time() - start >= 0.25 + 0.5  # two jittered backoffs: it did retry


# -- cleanup -----------------------------------------------------------------------------------


async def test_break_closes_the_connection_at_once(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    async with emu.gemini() as gemini:
        async with gemini.stream("Hi") as events:
            async for event in events:
                assert isinstance(event, TextDelta)
                break
        with trio.fail_after(5):
            await emu.wait_for_connections(0)


async def test_an_error_in_the_block_closes_the_connection(
    emu: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(KeyError):
        async with emu.gemini().stream("Hi") as events:
            async for _event in events:
                raise KeyError("boom")
    with trio.fail_after(5):
        await emu.wait_for_connections(0)


async def test_cancelling_a_thousand_streams_leaves_no_connection_open(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator(chunk_delay=1.0) as emu:
        started = 0

        async def one() -> None:
            nonlocal started
            async with emu.gemini().stream("Hi") as events:
                async for _event in events:
                    started += 1
                    break
                await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            for _ in range(1000):
                nursery.start_soon(one)
            await trio.sleep(5)
            assert emu.open_connections == 1000
            nursery.cancel_scope.cancel()
        with trio.fail_after(5):
            await emu.wait_for_connections(0)
        assert started == 1000


async def test_iterating_outside_the_block_is_an_error(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    stream = emu.gemini().stream("Hi")
    with pytest.raises(trio.ClosedResourceError):
        await stream.__anext__()
    async with stream:
        pass
    with pytest.raises(trio.ClosedResourceError):
        await stream.__anext__()
    with pytest.raises(RuntimeError, match="once"):
        async with stream:
            pass


async def test_two_tasks_cannot_iterate_one_stream(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    emu.inject("gemini", Fault(stall_after=0))
    gemini = emu.gemini(timeouts=trio_llm.Timeouts(first_event=None))
    async with gemini.stream("Hi") as events, trio.open_nursery() as nursery:
        nursery.start_soon(events.__anext__)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await events.__anext__()
        nursery.cancel_scope.cancel()


async def test_buffered_events_are_still_checkpoints(emu: Emulator, autojump_clock: trio.testing.MockClock) -> None:
    async with emu.gemini().stream("Hi") as events:
        await events.__anext__()
        with trio.CancelScope() as scope:
            scope.cancel()
            await events.__anext__()  # already decoded, but still a cancel point
            pytest.fail("not a checkpoint")
        assert scope.cancelled_caught


class _Steps(trio.abc.Instrument):
    """Counts the steps one task runs: a step ends each time it yields to the scheduler."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


async def test_a_fast_stream_still_lets_other_tasks_run(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The production period (32, chosen by the benchmarks) is close to the number of events
    # one body chunk decodes into here, so the test shrinks it to see the mechanism itself.
    period = 4
    monkeypatch.setattr(trio_llm._stream, "_SCHEDULE_EVERY", period)
    longest = run = 0
    seen = -1
    async with Emulator(words=3000, words_per_chunk=1) as emu:
        steps = _Steps(trio.lowlevel.current_task())
        async with emu.openai().stream("Hi") as events:
            await trio.sleep(1)  # the whole reply is now waiting in the socket buffer
            trio.lowlevel.add_instrument(steps)
            try:
                async for _event in events:
                    run = run + 1 if steps.steps == seen else 1
                    seen = steps.steps
                    longest = max(longest, run)
            finally:
                trio.lowlevel.remove_instrument(steps)
    # Without schedule points a whole body chunk (dozens of events) goes out in one step; with
    # them the iterator yields at least every `period` buffered events (twice that when a chunk
    # came from httpcore's own buffer with no I/O in between).
    assert events.events_delivered > 3000
    assert longest <= 2 * period
