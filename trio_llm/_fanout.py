"""Fan-out that owns its children: race, gather, fallback, hedge, race_stream, merge.

Every helper is a nursery. When it returns or raises, every child task has finished and every
HTTP response is closed: losers stop streaming (and billing) the moment the winner is known.
The nursery is an implementation detail, so the helpers raise one clear error
(:class:`AllFailedError`, or the one error that matters), never an ``ExceptionGroup`` of
internals; a caller's cancellation still cancels everything.

A *target* is a provider, or a ``(provider, model)`` pair.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, TypedDict, Union, Unpack

import attrs
import trio

from ._errors import AllFailedError, TrioLLMError
from ._events import Event, ImageOutput, ReasoningDelta, Reply, ReplyBuilder, TextDelta, ToolCall, Usage
from ._media import MediaList
from ._messages import MessagesInput, Tool
from ._provider import Provider

__all__ = [
    "AllFailedError",
    "ChatOptions",
    "Outcome",
    "Sourced",
    "Target",
    "fallback",
    "gather",
    "hedge",
    "is_content",
    "merge",
    "race",
    "race_stream",
    "split_target",
    "target_label",
]

#: A provider, or a provider and the model to ask it for.
Target = Union[Provider, tuple[Provider, str]]


class ChatOptions(TypedDict, total=False):
    """The request options every helper passes on to each target's ``stream``."""

    model: str
    temperature: float
    max_tokens: int
    top_p: float
    top_k: int
    stop: str | Sequence[str]
    tools: Sequence[Tool]
    media: MediaList


_CONTENT = (TextDelta, ReasoningDelta, ToolCall, ImageOutput)


def is_content(event: Event) -> bool:
    """Whether ``event`` is content (text, thoughts, a tool call, an image), as opposed to
    metadata (usage, finish): what "a target has started answering" means."""
    return isinstance(event, _CONTENT)


def split_target(target: Target) -> tuple[Provider, str | None]:
    if isinstance(target, Provider):
        return target, None
    if isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], Provider):
        provider, model = target
        if not isinstance(model, str):
            raise TypeError(f"a target's model must be a string, got {type(model).__name__}")
        return provider, model
    raise TypeError(f"a target is a provider or a (provider, model) pair, got {target!r}")


def target_label(target: Target) -> str:
    """``"gemini:gemini-2.5-flash"``: the provider's name and the model asked for."""
    provider, model = split_target(target)
    return f"{provider.name}:{model or provider.default_model}"


def _targets(targets: Sequence[Target]) -> list[Target]:
    checked = list(targets)
    if not checked:
        raise ValueError("at least one target is needed")
    for target in checked:
        split_target(target)
    return checked


@attrs.frozen
class Outcome:
    """What one target of :func:`gather` (or any helper) came to.

    Attributes:
        target: The target.
        reply: The reply, if it succeeded.
        error: The error, if it failed.
        elapsed: Seconds from its start to its end (or to its cancellation).
        time_to_first_event: Seconds until its first event, if one arrived.
        usage: Token counts, from the reply, or what the provider had sent before the target
            failed or was cancelled.
        cancelled: Whether the helper cancelled it (it lost a race).
    """

    target: Target
    reply: Reply | None
    error: Exception | None
    elapsed: float
    time_to_first_event: float | None = None
    usage: Usage | None = None
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """Whether the target produced a reply."""
        return self.reply is not None

    @property
    def label(self) -> str:
        """See :func:`target_label`."""
        return target_label(self.target)


@attrs.frozen
class Sourced:
    """One item of :func:`merge`: an event of a target, or the error that ended it.

    Attributes:
        target: Where the item comes from.
        event: The event (``None`` for the error item).
        error: The error that ended this target's stream (the last item for that target).
    """

    target: Target
    event: Event | None
    error: Exception | None = attrs.field(default=None, kw_only=True)


@attrs.define
class _Child:
    """Bookkeeping for one target while it runs."""

    target: Target
    started: float = 0.0
    first_event: float | None = None
    content_started: bool = False
    usage: Usage | None = None
    reply: Reply | None = None
    error: Exception | None = None
    ended: float | None = None
    cancelled: bool = False

    def outcome(self) -> Outcome:
        end = self.ended if self.ended is not None else trio.current_time()
        return Outcome(
            target=self.target,
            reply=self.reply,
            error=self.error,
            elapsed=end - self.started,
            time_to_first_event=None if self.first_event is None else self.first_event - self.started,
            usage=self.reply.usage if self.reply is not None else self.usage,
            cancelled=self.cancelled,
        )


def _report(outcomes: list[Outcome] | None, children: Sequence[_Child]) -> None:
    if outcomes is not None:
        outcomes.extend(child.outcome() for child in children)


@contextlib.asynccontextmanager
async def _borrow(limiter: trio.CapacityLimiter | None) -> AsyncIterator[None]:
    if limiter is None:
        yield
    else:
        async with limiter:
            yield


async def _run(
    child: _Child,
    messages: MessagesInput,
    options: ChatOptions,
    limiter: trio.CapacityLimiter | None,
    on_event: Callable[[_Child, Event], Any] | None = None,
) -> None:
    """Stream one target to its end, recording everything on ``child``; never raises an
    ``Exception`` (it is recorded), only ``Cancelled``."""
    child.started = trio.current_time()
    provider, model = split_target(child.target)
    opts: ChatOptions = {**options}
    if model is not None:
        opts["model"] = model
    try:
        async with _borrow(limiter):
            stream = provider.stream(messages, **opts)
            try:
                async with stream as events:
                    builder = ReplyBuilder(provider=events.provider, model=events.model)
                    async for event in events:
                        if child.first_event is None:
                            child.first_event = trio.current_time()
                        if not child.content_started and is_content(event):
                            child.content_started = True
                        builder.add(event)
                        if on_event is not None:
                            await on_event(child, event)
                    child.reply = builder.build()
            finally:
                child.usage = stream.usage_so_far if child.reply is None else None
    except Exception as error:
        child.error = error
    except trio.Cancelled:
        child.cancelled = True
        raise
    finally:
        child.ended = trio.current_time()


# -- helpers returning one value ---------------------------------------------------------------


async def gather(
    targets: Sequence[Target],
    messages: MessagesInput,
    *,
    limiter: trio.CapacityLimiter | None = None,
    **options: Unpack[ChatOptions],
) -> list[Outcome]:
    """Ask every target at once; one :class:`Outcome` per target, in target order.

    A failure is an outcome, not an exception. A caller's cancellation cancels every target.

    Example::

        outcomes = await trio_llm.gather([gemini, (gigachat, "GigaChat-2-Max")], "Hi")
        for outcome in outcomes:
            print(outcome.label, outcome.reply.text if outcome.ok else outcome.error)
    """
    children = [_Child(target) for target in _targets(targets)]
    async with trio.open_nursery() as nursery:
        for child in children:
            nursery.start_soon(_run, child, messages, options, limiter)
    return [child.outcome() for child in children]


async def race(
    targets: Sequence[Target],
    messages: MessagesInput,
    *,
    limiter: trio.CapacityLimiter | None = None,
    outcomes: list[Outcome] | None = None,
    **options: Unpack[ChatOptions],
) -> Reply:
    """Ask every target at once; the first complete reply wins and the others are cancelled
    (their connections closed) before ``race`` returns.

    Pass a list as ``outcomes`` to receive one :class:`Outcome` per target (the losers'
    marked ``cancelled``, with the usage their provider had sent).

    Raises:
        AllFailedError: Every target failed; it carries each target's error.
    """
    children = [_Child(target) for target in _targets(targets)]
    winner: list[Reply] = []
    async with trio.open_nursery() as nursery:

        async def run(child: _Child) -> None:
            await _run(child, messages, options, limiter)
            if child.reply is not None and not winner:
                winner.append(child.reply)
                nursery.cancel_scope.cancel(reason="race won by another target")

        for child in children:
            nursery.start_soon(run, child)
    _report(outcomes, children)
    if winner:
        return winner[0]
    raise AllFailedError([child.outcome() for child in children])


async def fallback(
    targets: Sequence[Target],
    messages: MessagesInput,
    *,
    limiter: trio.CapacityLimiter | None = None,
    outcomes: list[Outcome] | None = None,
    **options: Unpack[ChatOptions],
) -> Reply:
    """Ask the targets one after another; move on only when a target failed *before* its
    first content event. A failure after content started is raised: two targets' output is
    never spliced.

    Raises:
        AllFailedError: Every target failed before producing content.
    """
    children: list[_Child] = []
    for target in _targets(targets):
        child = _Child(target)
        children.append(child)
        try:
            await _run(child, messages, options, limiter)
        finally:
            _report(outcomes, [child])
        if child.reply is not None:
            return child.reply
        assert child.error is not None
        if child.content_started:
            raise child.error
    raise AllFailedError([child.outcome() for child in children])


async def hedge(
    targets: Sequence[Target],
    messages: MessagesInput,
    *,
    delay: float,
    limiter: trio.CapacityLimiter | None = None,
    outcomes: list[Outcome] | None = None,
    **options: Unpack[ChatOptions],
) -> Reply:
    """Start the first target; start the next one only if no target has answered (sent a
    content event) ``delay`` seconds after the last one started — or at once if the last
    one failed. The first complete reply wins; the others are cancelled.

    Raises:
        AllFailedError: Every target failed.
    """
    if not delay >= 0 or math.isnan(delay):
        raise ValueError(f"delay must be a number >= 0, got {delay!r}")
    children = [_Child(target) for target in _targets(targets)]
    launched: list[_Child] = []
    winner: list[Reply] = []
    wake = [trio.Event()]
    answered = [False]

    async def on_event(child: _Child, event: Event) -> None:
        if is_content(event) and not answered[0]:
            answered[0] = True
            wake[0].set()
        await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:

        async def run(child: _Child) -> None:
            await _run(child, messages, options, limiter, on_event)
            if child.reply is not None and not winner:
                winner.append(child.reply)
                nursery.cancel_scope.cancel(reason="hedge won by another target")
            wake[0].set()

        for index, child in enumerate(children):
            launched.append(child)
            nursery.start_soon(run, child)
            if index == len(children) - 1:
                break
            deadline = trio.current_time() + delay
            with trio.move_on_at(deadline):
                while not (answered[0] or child.ended is not None):
                    await wake[0].wait()
                    wake[0] = trio.Event()
            if answered[0]:
                break
    _report(outcomes, launched)
    if winner:
        return winner[0]
    # Targets never started (an earlier one had answered, then failed) are not outcomes.
    raise AllFailedError([child.outcome() for child in launched])


# -- helpers that stream -----------------------------------------------------------------------


@attrs.frozen
class _Failed:
    error: Exception


@trio.as_safe_channel
async def _race_stream(
    targets: Sequence[Target],
    messages: MessagesInput,
    limiter: trio.CapacityLimiter | None,
    options: ChatOptions,
) -> AsyncGenerator[Event, None]:
    children = [_Child(target) for target in _targets(targets)]
    scopes = [trio.CancelScope() for _ in children]
    winner: list[int] = []
    send, receive = trio.open_memory_channel[Union[Event, _Failed]](0)

    async def run(index: int, child: _Child, send: trio.MemorySendChannel[Union[Event, _Failed]]) -> None:
        buffered: list[Event] = []

        async def on_event(_child: _Child, event: Event) -> None:
            if winner and winner[0] == index:
                await send.send(event)
            elif not winner:
                buffered.append(event)
                if is_content(event):
                    winner.append(index)
                    for number, scope in enumerate(scopes):
                        if number != index:
                            scope.cancel(reason="race_stream committed to another target")
                    for early in buffered:
                        await send.send(early)
            else:
                await trio.lowlevel.checkpoint()

        async with send:
            with scopes[index]:
                await _run(child, messages, options, limiter, on_event)
            if winner and winner[0] == index and child.error is not None:
                await send.send(_Failed(child.error))

    failure: Exception | None = None
    async with trio.open_nursery() as nursery, receive:
        async with send:
            for index, child in enumerate(children):
                nursery.start_soon(run, index, child, send.clone())
        async for item in receive:
            if isinstance(item, _Failed):
                failure = item.error
                break
            yield item
    # Raised here, outside the nursery, so the caller gets the error itself, not a group.
    if failure is not None:
        raise failure
    if not winner:
        for child in children:
            if child.error is None:
                child.error = _no_content(child)
        raise AllFailedError([child.outcome() for child in children])


def _no_content(child: _Child) -> Exception:
    return TrioLLMError(f"{target_label(child.target)} finished without any content")


def race_stream(
    targets: Sequence[Target],
    messages: MessagesInput,
    *,
    limiter: trio.CapacityLimiter | None = None,
    **options: Unpack[ChatOptions],
) -> contextlib.AbstractAsyncContextManager[trio.abc.ReceiveChannel[Event]]:
    """Stream from the first target to produce a content event; cancel the others then.

    Use as ``async with trio_llm.race_stream(targets, messages) as events:``. The events are
    the winner's only, from its first (events that arrived before the commit included). The
    commit happens on content (text, thoughts, a tool call, an image), never on usage or
    metadata. An error of the winner after the commit is raised as itself.

    Raises:
        AllFailedError: No target produced content.
    """
    return _race_stream(targets, messages, limiter, options)


@trio.as_safe_channel
async def _merge(
    targets: Sequence[Target],
    messages: MessagesInput,
    limiter: trio.CapacityLimiter | None,
    options: ChatOptions,
) -> AsyncGenerator[Sourced, None]:
    children = [_Child(target) for target in _targets(targets)]
    send, receive = trio.open_memory_channel[Sourced](0)

    async def run(child: _Child, send: trio.MemorySendChannel[Sourced]) -> None:
        async def on_event(_child: _Child, event: Event) -> None:
            await send.send(Sourced(child.target, event))

        async with send:
            await _run(child, messages, options, limiter, on_event)
            if child.error is not None:
                await send.send(Sourced(child.target, None, error=child.error))

    async with trio.open_nursery() as nursery, receive:
        async with send:
            for child in children:
                nursery.start_soon(run, child, send.clone())
        async for item in receive:
            yield item


def merge(
    targets: Sequence[Target],
    messages: MessagesInput,
    *,
    limiter: trio.CapacityLimiter | None = None,
    **options: Unpack[ChatOptions],
) -> contextlib.AbstractAsyncContextManager[trio.abc.ReceiveChannel[Sourced]]:
    """Every target's stream at once, interleaved as events arrive, each item a
    :class:`Sourced`.

    A failing target does not end the merge: its last item is ``Sourced(target, None,
    error=...)`` and the other targets go on. The merge ends when every target has ended.
    """
    return _merge(targets, messages, limiter, options)
