"""Fan-out helpers own their children: winners, losers, deadlines, limits and accounting.

Each target gets its own emulator, so what each one received and whether its connection is
still open can be checked separately. Time is trio's MockClock (autojump).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

import trio_llm
from trio_llm import Finish, TextDelta, Usage
from trio_llm.testing import Emulator, Fault

NO_RETRY = trio_llm.RetryPolicy(max_attempts=1)


@contextlib.asynccontextmanager
async def emulators(*configs: dict[str, Any]) -> AsyncIterator[list[Emulator]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(Emulator(**config)) for config in configs]


async def settle() -> None:
    """Let the emulators notice closed connections, without letting time pass."""
    await trio.testing.wait_all_tasks_blocked()


# -- race --------------------------------------------------------------------------------------


async def test_race_returns_the_first_reply_and_closes_the_losers(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({}, {"first_chunk_delay": 30}) as (fast, slow):
        outcomes: list[trio_llm.Outcome] = []
        start = trio.current_time()
        reply = await trio_llm.race([fast.gemini(), slow.gemini()], "Hi", outcomes=outcomes)
        assert trio.current_time() == start  # did not wait for the loser
        await settle()
        assert slow.open_connections == 0 and fast.open_connections == 0
        assert slow.count("gemini", "chat") == 1
    assert reply.text and reply.finish is not None
    assert [o.ok for o in outcomes] == [True, False]
    assert outcomes[1].cancelled and outcomes[1].error is None


async def test_race_reports_the_usage_a_cancelled_loser_had_received(autojump_clock: trio.testing.MockClock) -> None:
    # The winner answers whole at t=3; by then one loser has streamed 4 chunks (each with
    # Gemini's running usage count) and the other has sent nothing at all.
    async with emulators({"first_chunk_delay": 3, "words": 4}, {"chunk_delay": 1}, {"first_chunk_delay": 100}) as (
        quick,
        dripping,
        silent,
    ):
        outcomes: list[trio_llm.Outcome] = []
        await trio_llm.race([quick.gemini(), dripping.gemini(), silent.gemini()], "Hi", outcomes=outcomes)
    winner, streamed, nothing = outcomes
    assert winner.ok and not winner.cancelled
    assert streamed.cancelled and streamed.time_to_first_event == 0
    assert streamed.usage is not None and streamed.usage.completion_tokens == 4 * 4  # 4 chunks of 4 words
    assert nothing.cancelled and nothing.usage is None and nothing.time_to_first_event is None


async def test_race_skips_failures_and_raises_all_failed_when_all_fail(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({}, {}) as (broken, fine):
        broken.inject("gemini", Fault(status=500))
        reply = await trio_llm.race([broken.gemini(retry=NO_RETRY), fine.gemini()], "Hi")
        assert reply.text
        broken.inject("gemini", Fault(status=500))
        fine.inject("gemini", Fault(status=401))
        with pytest.raises(trio_llm.AllFailedError) as caught:
            await trio_llm.race([broken.gemini(retry=NO_RETRY), fine.gemini()], "Hi")
    errors = caught.value.errors
    assert [type(error) for _, error in errors] == [trio_llm.ServerError, trio_llm.AuthenticationError]
    assert "all 2 targets failed" in str(caught.value)


async def test_targets_may_name_the_model(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({}) as (emu,):
        gemini = emu.gemini()
        outcomes = await trio_llm.gather([(gemini, "gemini-2.5-pro"), gemini], "Hi")
    assert [o.reply.model for o in outcomes if o.reply] == ["gemini-2.5-pro", "gemini-2.5-flash"]
    assert [o.label for o in outcomes] == ["gemini:gemini-2.5-pro", "gemini:gemini-2.5-flash"]


# -- gather ------------------------------------------------------------------------------------


async def test_gather_gives_one_outcome_per_target_in_order(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({"first_chunk_delay": 3}, {}, {}) as (slow, fine, broken):
        broken.inject("gemini", Fault(status=404, message="no such model"))
        outcomes = await trio_llm.gather([slow.gemini(), fine.gemini(), broken.gemini()], "Hi", max_tokens=5)
    assert [o.ok for o in outcomes] == [True, True, False]
    assert isinstance(outcomes[2].error, trio_llm.NotFoundError)
    assert outcomes[0].time_to_first_event == pytest.approx(3)
    assert outcomes[0].elapsed >= 3 and outcomes[1].elapsed < 3
    assert outcomes[0].reply is not None and outcomes[0].reply.usage == outcomes[0].usage
    assert all(len(o.reply.text.split()) == 5 for o in outcomes[:2] if o.reply)


async def test_a_big_gather_finishes_together(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator(first_chunk_delay=0.1, chunk_delay=0.01, words=20, words_per_chunk=1) as emu:
        gemini = emu.gemini()
        start = trio.current_time()
        outcomes = await trio_llm.gather([gemini] * 300, "Hi")  # 1,000 and real time: bench/run.py
        assert all(o.ok for o in outcomes)
        assert trio.current_time() - start == pytest.approx(max(o.elapsed for o in outcomes))
        await settle()
        assert emu.open_connections == 0


# -- fallback ----------------------------------------------------------------------------------


async def test_fallback_moves_on_when_a_target_fails_before_content(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({}, {}) as (first, second):
        first.inject("gemini", Fault(status=503))
        outcomes: list[trio_llm.Outcome] = []
        reply = await trio_llm.fallback([first.gemini(retry=NO_RETRY), second.gemini()], "Hi", outcomes=outcomes)
        assert reply.text
        assert (first.count("gemini", "chat"), second.count("gemini", "chat")) == (1, 1)
    assert [o.ok for o in outcomes] == [False, True]


async def test_fallback_never_switches_after_content(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({}, {}) as (first, second):
        first.inject("gemini", Fault(reset_after=2))
        with pytest.raises(trio_llm.TransportError):
            await trio_llm.fallback([first.gemini(), second.gemini()], "Hi")
        assert second.count("gemini", "chat") == 0  # never spliced with another target's output


async def test_fallback_all_failing_is_all_failed(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({}, {}) as (first, second):
        first.inject("gemini", Fault(status=500))
        second.inject("gemini", Fault(block_reason="SAFETY"))
        with pytest.raises(trio_llm.AllFailedError) as caught:
            await trio_llm.fallback([first.gemini(retry=NO_RETRY), second.gemini()], "Hi")
    assert isinstance(caught.value.errors[1][1], trio_llm.ContentBlockedError)


# -- hedge -------------------------------------------------------------------------------------


async def test_hedge_starts_the_backup_at_exactly_delay(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({"first_chunk_delay": 10}, {"first_chunk_delay": 1}) as (slow, backup):
        start = trio.current_time()
        reply = await trio_llm.hedge([slow.gemini(), backup.gemini()], "Hi", delay=2.5)
        (request,) = backup.requests_for("gemini", "chat")
        assert request.received_at - start == pytest.approx(2.5)
        assert trio.current_time() - start == pytest.approx(3.5)
        await settle()
        assert slow.open_connections == 0
    assert reply.text


async def test_hedge_does_not_start_the_backup_when_the_first_answers_in_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with emulators({"first_chunk_delay": 1, "chunk_delay": 1}, {}) as (first, backup):
        await trio_llm.hedge([first.gemini(), backup.gemini()], "Hi", delay=2)
        assert backup.count("gemini", "chat") == 0


async def test_hedge_starts_the_next_at_once_when_one_fails(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({}, {}) as (first, backup):
        first.inject("gemini", Fault(status=400))
        start = trio.current_time()
        outcomes: list[trio_llm.Outcome] = []
        await trio_llm.hedge([first.gemini(), backup.gemini()], "Hi", delay=60, outcomes=outcomes)
        assert backup.requests_for("gemini")[0].received_at == start
    assert [o.ok for o in outcomes] == [False, True]


# -- race_stream -------------------------------------------------------------------------------


async def test_race_stream_commits_on_content_not_on_metadata(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({}, {"first_chunk_delay": 1}) as (empty, talker):
        empty.inject("gemini", Fault(text=""))  # only usage and finish, at once
        async with trio_llm.race_stream([empty.gemini(), talker.gemini()], "Hi") as events:
            received = [event async for event in events]
    assert isinstance(received[0], TextDelta)
    assert trio_llm.Reply.from_events(received).text == (await_text := received and "".join(
        e.text for e in received if isinstance(e, TextDelta)))  # fmt: skip
    assert await_text and isinstance(received[-1], Finish)


async def test_race_stream_gives_the_winners_events_only_and_cancels_at_commit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with emulators({"chunk_delay": 1}, {"first_chunk_delay": 0.5, "chunk_delay": 1}) as (winner, loser):
        expected = (await winner.gemini().complete("Hi")).text
        async with trio_llm.race_stream([loser.gemini(), winner.gemini()], "Hi") as events:
            first = await events.receive()
            await settle()
            assert loser.open_connections == 0  # cancelled at the commit, not at the end
            rest = [event async for event in events]
    received = [first, *rest]
    assert "".join(e.text for e in received if isinstance(e, TextDelta)) == expected
    assert sum(isinstance(e, Usage) for e in received) == 1


async def test_race_stream_raises_the_winners_error_after_the_commit(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({}, {"first_chunk_delay": 5}) as (winner, other):
        winner.inject("gemini", Fault(reset_after=2))
        received: list[trio_llm.Event] = []
        with pytest.raises(trio_llm.TransportError):
            async with trio_llm.race_stream([winner.gemini(), other.gemini()], "Hi") as events:
                async for event in events:
                    received.append(event)
    assert len(received) == 2


async def test_race_stream_with_no_content_anywhere_is_all_failed(autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({}, {}) as (a, b):
        a.inject("gemini", Fault(status=500))
        b.inject("gemini", Fault(text=""))
        with pytest.raises(trio_llm.AllFailedError, match="without any content"):
            async with trio_llm.race_stream([a.gemini(retry=NO_RETRY), b.gemini()], "Hi") as events:
                async for _event in events:
                    pass


# -- merge -------------------------------------------------------------------------------------


async def test_merge_interleaves_every_target_and_a_failure_ends_only_that_target(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with emulators({"chunk_delay": 1}, {"chunk_delay": 1}, {}) as (a, b, broken):
        broken.inject("gemini", Fault(status=500))
        targets = [a.gemini(), b.gemini(), broken.gemini(retry=NO_RETRY)]
        async with trio_llm.merge(targets, "Hi") as items:
            received = [item async for item in items]
    by_target = {id(t): [i for i in received if i.target is t] for t in targets}
    for target in targets[:2]:
        events = [i.event for i in by_target[id(target)]]
        assert isinstance(events[-1], Finish) and all(i.error is None for i in by_target[id(target)])
    (failure,) = by_target[id(targets[2])]
    assert failure.event is None and isinstance(failure.error, trio_llm.ServerError)
    sources = [id(i.target) for i in received[:6]]
    assert len(set(sources)) >= 2  # interleaved as the events arrived, not one after the other


# -- ownership: outside cancellation and a shared limiter --------------------------------------


async def _drain_race_stream(targets: list[trio_llm.Provider]) -> None:
    async with trio_llm.race_stream(targets, "Hi") as events:
        async for _event in events:
            pass


async def _drain_merge(targets: list[trio_llm.Provider]) -> None:
    async with trio_llm.merge(targets, "Hi") as items:
        async for _item in items:
            pass


HELPERS: dict[str, Callable[[list[trio_llm.Provider]], Awaitable[object]]] = {
    "race": lambda t: trio_llm.race(t, "Hi"),
    "gather": lambda t: trio_llm.gather(t, "Hi"),
    "fallback": lambda t: trio_llm.fallback(t, "Hi"),
    "hedge": lambda t: trio_llm.hedge(t, "Hi", delay=0.5),
    "race_stream": _drain_race_stream,
    "merge": _drain_merge,
}


@pytest.mark.parametrize("helper", sorted(HELPERS))
async def test_an_outside_deadline_leaves_nothing_open(helper: str, autojump_clock: trio.testing.MockClock) -> None:
    async with emulators({"chunk_delay": 1}, {"chunk_delay": 1}) as (a, b):
        with trio.move_on_after(3.5) as scope:
            await HELPERS[helper]([a.gemini(), b.gemini()])
        assert scope.cancelled_caught
        await settle()
        assert a.open_connections == 0 and b.open_connections == 0


async def test_a_shared_limiter_caps_requests_in_flight_across_helpers(autojump_clock: trio.testing.MockClock) -> None:
    async with Emulator(chunk_delay=0.5, words=8) as emu:
        limiter = trio.CapacityLimiter(3)
        gemini = emu.gemini()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: trio_llm.gather([gemini] * 5, "Hi", limiter=limiter))
            nursery.start_soon(lambda: trio_llm.race([gemini] * 4, "Hi", limiter=limiter))
            nursery.start_soon(_drain_merge_limited, [gemini] * 3, limiter)
        assert emu.peak_connections == 3
        assert emu.count("gemini", "chat") >= 9


async def _drain_merge_limited(targets: list[trio_llm.Provider], limiter: trio.CapacityLimiter) -> None:
    async with trio_llm.merge(targets, "Hi", limiter=limiter) as items:
        async for _item in items:
            pass


def test_bad_targets_are_refused() -> None:
    with pytest.raises(TypeError, match="provider or a"):
        trio.run(trio_llm.gather, ["gemini"], "Hi")
    with pytest.raises(ValueError, match="at least one"):
        trio.run(trio_llm.race, [], "Hi")
