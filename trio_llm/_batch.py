"""``trio-llm batch``: a JSONL file of prompts through one provider (or a race), with bounded
concurrency, resumable, and never a half-written output line.

Input lines are objects with an ``id`` and either a ``prompt`` string or ``messages`` (plus
optional ``system``, ``model``, ``max_tokens``, ``temperature``). Every input line yields one
output line: the reply, or the error. Re-running skips ids already in the output.

Each output line is written with one ``write`` system call of the whole line, so a kill or
Ctrl-C leaves whole lines only; a torn last line (from a power cut, say) is cut off when the
file is opened again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from ._errors import InvalidRequestError, TrioLLMError
from ._events import Reply
from ._fanout import Target, race, split_target
from ._messages import system, user

__all__ = ["BatchItem", "read_items", "run_batch"]


@attrs.frozen
class BatchItem:
    """One input line."""

    id: str
    messages: Any
    options: dict[str, Any]


_OPTIONS = ("model", "max_tokens", "temperature", "top_p", "top_k", "stop")


def read_items(path: Path) -> list[BatchItem]:
    """Parse the input file; a bad line is an :class:`InvalidRequestError` naming it."""
    items: list[BatchItem] = []
    seen: set[str] = set()
    if not path.is_file():
        raise InvalidRequestError(f"no such input file: {path}")
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
            except ValueError:
                raise InvalidRequestError(f"{where}: not a JSON object") from None
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str | int):
                raise InvalidRequestError(f'{where}: each line needs an "id" (a string or a number)')
            item_id = str(raw["id"])
            if item_id in seen:
                raise InvalidRequestError(f"{where}: duplicate id {item_id!r}")
            seen.add(item_id)
            if isinstance(raw.get("prompt"), str):
                messages: Any = [user(raw["prompt"])]
            elif isinstance(raw.get("messages"), list):
                messages = raw["messages"]
            else:
                raise InvalidRequestError(f'{where}: each line needs a "prompt" string or a "messages" list')
            if isinstance(raw.get("system"), str):
                messages = [system(raw["system"]), *messages]
            options = {key: raw[key] for key in _OPTIONS if key in raw}
            items.append(BatchItem(item_id, messages, options))
    return items


def _done_ids(path: Path) -> set[str]:
    """Ids already answered; a torn last line is cut off so appending stays clean."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with path.open("r+b") as file:
            file.truncate(end)
    done: set[str] = set()
    for line in data[:end].splitlines():
        try:
            done.add(str(json.loads(line)["id"]))
        except (ValueError, KeyError, TypeError):
            continue  # not one of ours: leave it, and do not count it as done
    return done


def _result_line(item: BatchItem, reply: Reply | None, error: Exception | None, elapsed: float) -> bytes:
    record: dict[str, Any] = {"id": item.id}
    if reply is not None:
        record.update(
            provider=reply.provider,
            model=reply.model,
            text=reply.text,
            finish=reply.finish.reason.value if reply.finish else None,
            usage=attrs.asdict(reply.usage) if reply.usage else None,
            tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls],
        )
    else:
        record["error"] = {"type": type(error).__name__, "message": str(error)}
    record["elapsed"] = round(elapsed, 3)
    return (json.dumps(record, ensure_ascii=False) + "\n").encode()


def _write_line(fd: int, line: bytes) -> None:
    view = memoryview(line)
    while view:
        written = os.write(fd, view)
        view = view[written:]


async def run_batch(
    in_path: Path,
    out_path: Path,
    targets: Sequence[Target],
    *,
    concurrency: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Answer every input line not yet in the output; returns ``(answered, skipped)``.

    With one target each line goes to it; with several, each line is a :func:`race`.
    """
    if concurrency < 1:
        raise InvalidRequestError(f"--concurrency must be >= 1, got {concurrency}")
    items = read_items(in_path)
    done = _done_ids(out_path)
    todo = [item for item in items if item.id not in done]
    limiter = trio.CapacityLimiter(concurrency)
    answered = 0
    fd = os.open(out_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:

        async def one(item: BatchItem) -> None:
            nonlocal answered
            async with limiter:
                start = trio.current_time()
                reply: Reply | None = None
                error: Exception | None = None
                try:
                    if len(targets) == 1:
                        provider, model = split_target(targets[0])
                        options = {"model": model, **item.options} if model else item.options
                        reply = await provider.complete(item.messages, **options)
                    else:
                        reply = await race(targets, item.messages, **item.options)
                except TrioLLMError as exc:
                    error = exc
                _write_line(fd, _result_line(item, reply, error, trio.current_time() - start))
                answered += 1
                if progress is not None:
                    progress(answered, len(todo))

        if progress is not None:
            progress(0, len(todo))
        async with trio.open_nursery() as nursery:
            for item in todo:
                nursery.start_soon(one, item)
    finally:
        os.close(fd)
    return answered, len(items) - len(todo)
