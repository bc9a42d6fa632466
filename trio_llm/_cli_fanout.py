"""The fan-out commands of ``trio-llm``: ``race``, ``demo`` and ``batch``.

The live view uses ``rich`` when it is installed (``pip install 'trio-llm[demo]'``); without
it the same commands print plain text. Nothing else in trio_llm imports it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from ._batch import run_batch
from ._errors import AllFailedError, ConfigurationError
from ._events import Event, Finish, ReasoningDelta, TextDelta, Usage
from ._fanout import Outcome, Target, merge, race, target_label
from ._provider import Provider

__all__ = ["batch_command", "demo_command", "open_targets", "race_command"]


@contextlib.asynccontextmanager
async def open_targets(
    specs: Sequence[str],
    providers: dict[str, Callable[[], Provider]],
    *,
    use_emulator: bool,
    emulator_delay: float = 0.0,
) -> AsyncIterator[list[Target]]:
    """Targets from ``-p NAME[:MODEL]`` specs, opened (and closed) together."""
    async with contextlib.AsyncExitStack() as stack:
        make: Callable[[str], Provider]
        if use_emulator:
            from .testing import Emulator

            emu = await stack.enter_async_context(Emulator(chunk_delay=emulator_delay))
            make = emu.provider
        else:
            make = lambda name: providers[name]()  # noqa: E731 - the two branches read alike
        targets: list[Target] = []
        for spec in specs:
            name, _, model = spec.partition(":")
            if name not in providers:
                raise ConfigurationError(f"unknown provider {name!r}; known: {', '.join(sorted(providers))}")
            provider = await stack.enter_async_context(make(name))
            targets.append((provider, model) if model else provider)
        yield targets


def _summary(outcome: Outcome, winner: bool) -> str:
    if outcome.ok:
        state = "won" if winner else "finished, unused"
    elif outcome.cancelled:
        state = "cancelled (lost)"
    else:
        state = f"failed: {outcome.error}"
    first = "-" if outcome.time_to_first_event is None else f"{outcome.time_to_first_event:.2f}s"
    tokens = outcome.usage.total_tokens if outcome.usage and outcome.usage.total_tokens is not None else "-"
    return f"{outcome.label:32} {state:18} first event {first:>7}  total {outcome.elapsed:.2f}s  tokens {tokens}"


async def race_command(targets: Sequence[Target], messages: Any, options: dict[str, Any]) -> None:
    """Print the winner's answer, then one summary line per target (on stderr)."""
    outcomes: list[Outcome] = []
    try:
        reply = await race(targets, messages, outcomes=outcomes, **options)
    except AllFailedError:
        for outcome in outcomes:
            print(_summary(outcome, winner=False), file=sys.stderr)
        raise
    print(reply.text)
    winner = next((o for o in outcomes if o.reply is reply), None)
    for outcome in outcomes:
        print(_summary(outcome, winner=outcome is winner), file=sys.stderr)


# -- demo --------------------------------------------------------------------------------------


@attrs.define
class _Lane:
    """What the demo shows for one target."""

    label: str
    started: float
    text: list[str] = attrs.Factory(list)
    first_event: float | None = None
    ended: float | None = None
    usage: Usage | None = None
    finish: str = "-"
    error: str | None = None

    def take(self, event: Event | None, error: Exception | None, now: float) -> None:
        if self.first_event is None and event is not None:
            self.first_event = now - self.started
        if isinstance(event, TextDelta | ReasoningDelta):
            self.text.append(event.text)
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, Finish):
            self.finish = event.reason.value if event.raw is None else f"{event.reason.value} ({event.raw})"
            self.ended = now - self.started
        if error is not None:
            self.error = str(error)
            self.finish = f"error: {type(error).__name__}"
            self.ended = now - self.started

    def row(self) -> tuple[str, str, str, str, str]:
        first = "-" if self.first_event is None else f"{self.first_event:.2f}s"
        total = "-" if self.ended is None else f"{self.ended:.2f}s"
        tokens = "-" if self.usage is None or self.usage.total_tokens is None else str(self.usage.total_tokens)
        return self.label, first, total, tokens, self.finish


_HEADERS = ("provider:model", "first event", "total", "tokens", "finish")


async def demo_command(prompt: str) -> None:
    """Fan one prompt out to every provider of an in-process emulator, side by side."""
    from .testing import Emulator, Fault

    async with Emulator(words=48, words_per_chunk=2, chunk_delay=0.03) as emu, contextlib.AsyncExitStack() as stack:
        names = [name for name in emu.providers() if name in emu.urls()]
        targets: list[Target] = []
        for index, name in enumerate(names):
            # Different speeds, so that the race is visible: later lanes start later.
            emu.inject(name, Fault(delay=0.1 * index, chunk_delay=0.02 + 0.01 * index))
            targets.append(await stack.enter_async_context(emu.provider(name)))
        start = trio.current_time()
        lanes = [_Lane(target_label(t), start) for t in targets]
        print(f"trio-llm demo: {len(targets)} providers served by the built-in emulator, no keys, no network")
        print(f"> {prompt}\n")
        try:
            import rich  # noqa: F401 - only to know whether the live view is available
        except ImportError:
            await _demo_plain(targets, prompt, lanes)
        else:
            await _demo_rich(targets, prompt, lanes)


async def _feed(targets: Sequence[Target], prompt: str, lanes: list[_Lane], on_item: Callable[[], None]) -> None:
    index = {id(target): number for number, target in enumerate(targets)}
    async with merge(targets, prompt, max_tokens=200) as items:
        async for item in items:
            lanes[index[id(item.target)]].take(item.event, item.error, trio.current_time())
            on_item()


async def _demo_plain(targets: Sequence[Target], prompt: str, lanes: list[_Lane]) -> None:
    await _feed(targets, prompt, lanes, lambda: None)
    for lane in lanes:
        print(f"[{lane.label}]")
        print("".join(lane.text) or lane.error or "", end="\n\n")
    widths = [max(len(h), *(len(lane.row()[i]) for lane in lanes)) for i, h in enumerate(_HEADERS)]
    print("  ".join(h.ljust(w) for h, w in zip(_HEADERS, widths, strict=True)))
    for lane in lanes:
        print("  ".join(c.ljust(w) for c, w in zip(lane.row(), widths, strict=True)))


async def _demo_rich(targets: Sequence[Target], prompt: str, lanes: list[_Lane]) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console = Console()

    def view() -> Table:
        grid = Table.grid(expand=True, padding=(0, 1))
        for _ in lanes:
            grid.add_column(ratio=1)
        panels = []
        for lane in lanes:
            body = Text("".join(lane.text)[-600:])
            if lane.error:
                body.append(lane.error, style="red")
            style = "green" if lane.finish.startswith("stop") else ("red" if lane.error else "yellow")
            panels.append(Panel(body, title=lane.label, border_style=style, height=14))
        grid.add_row(*panels)
        return grid

    with Live(view(), console=console, refresh_per_second=12) as live:
        await _feed(targets, prompt, lanes, lambda: live.update(view()))
    console.print()
    table = Table(title="trio_llm.merge: every provider at once")
    for header in _HEADERS:
        table.add_column(header)
    for lane in lanes:
        table.add_row(*lane.row())
    console.print(table)


# -- batch -------------------------------------------------------------------------------------


async def batch_command(
    in_path: Path, out_path: Path, targets: Sequence[Target], concurrency: int, show_progress: bool
) -> None:
    """Run the batch with a progress bar (rich when available, else a counter on stderr)."""
    progress_cm: Any = contextlib.nullcontext()
    update: Callable[[int, int], None] | None = None
    if show_progress:
        try:
            from rich.progress import Progress
        except ImportError:

            def update(done: int, total: int) -> None:
                print(f"\r{done}/{total}", end="", file=sys.stderr, flush=True)

        else:
            progress_cm = Progress(transient=False)
            task: list[Any] = []

            def update(done: int, total: int) -> None:
                if not task:
                    task.append(progress_cm.add_task("batch", total=total))
                progress_cm.update(task[0], completed=done)

    with progress_cm:
        answered, skipped = await run_batch(in_path, out_path, targets, concurrency=concurrency, progress=update)
    print(f"\nanswered {answered}, skipped {skipped} already in {out_path}", file=sys.stderr)
