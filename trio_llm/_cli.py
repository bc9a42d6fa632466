"""The ``trio-llm`` command (also ``python -m trio_llm``).

Keys come from the environment (``GEMINI_API_KEY``, ``GIGACHAT_CREDENTIALS``, ...). ``-p openai``
talks to ``OPENAI_BASE_URL`` (OpenAI's API when unset) with the key in ``OPENAI_API_KEY``, if
any, as OpenAI's own SDK reads them. ``--emulator`` runs any command against an in-process
emulator instead of the real service. Errors print one line and exit non-zero; no traceback
reaches the user.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import trio

from ._cli_fanout import batch_command, demo_command, open_targets, race_command
from ._errors import ConfigurationError, TrioLLMError
from ._events import Finish, ImageOutput, ReasoningDelta, TextDelta, ToolCall, Usage
from ._media import MediaItem
from ._messages import Message, system, user
from ._provider import Provider
from .providers import AmigoChat, Dynaspark, Gemini, GigaChat, OpenAICompatible

__all__ = ["main"]


def _openai_from_environment() -> Provider:
    """``-p openai``: ``OPENAI_BASE_URL`` (default OpenAI's API) and ``OPENAI_API_KEY``.

    The library never reads a key from the environment for a URL it was not given; on the
    command line the user named both in the same environment, as for OpenAI's own SDK.
    """
    base_url = os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    return OpenAICompatible(base_url, api_key=os.environ.get("OPENAI_API_KEY") or None)


#: The providers the command line knows, by ``-p`` name.
PROVIDERS: dict[str, Callable[[], Provider]] = {
    "gemini": Gemini,
    "gigachat": GigaChat,
    "dynaspark": Dynaspark,
    "amigochat": AmigoChat,
    "openai": _openai_from_environment,
}

DEMO_PROMPT = "Tell me a short story about a lantern on a river."


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--emulator", action="store_true", help="run against an in-process emulator (no keys, no network)"
    )
    common.add_argument("--emulator-delay", type=float, default=0.0, help=argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="trio-llm", description="Talk to LLM chat providers from the terminal, the trio way."
    )
    parser.add_argument("--emulator", action="store_true", dest="emulator_top", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    chat = commands.add_parser("chat", parents=[common], help="stream one answer to stdout")
    chat.add_argument("-p", "--provider", required=True, choices=sorted(PROVIDERS))
    chat.add_argument("-m", "--model", help="the model (the provider's default if omitted)")
    chat.add_argument("--system", help="a system message")
    chat.add_argument("--image", action="append", default=[], metavar="PATH", help="attach an image (repeatable)")
    chat.add_argument("--max-tokens", type=int, help="the most tokens to generate")
    chat.add_argument("--temperature", type=float, help="sampling temperature, 0 to 2")
    chat.add_argument("prompt", help="what to ask")

    models = commands.add_parser("models", parents=[common], help="list the models a provider serves")
    models.add_argument("-p", "--provider", required=True, choices=sorted(PROVIDERS))

    emulate = commands.add_parser("emulate", help="serve the provider emulator until Ctrl-C")
    emulate.add_argument("--port", type=int, default=8000, help="plain HTTP port (default 8000; 0 picks one)")
    emulate.add_argument("--tls-port", type=int, default=0, help="HTTPS port (default: N+1, or 0 to pick one)")
    emulate.add_argument("--words", type=int, default=40, help="words in a default reply")
    emulate.add_argument("--words-per-chunk", type=int, default=4, help="words per streamed event")
    emulate.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed events")
    emulate.add_argument("--first-chunk-delay", type=float, default=0.0, help="seconds before the first event")
    emulate.add_argument(
        "--tick", type=float, default=0.0, help="end waits between events on multiples of this (shared timers)"
    )
    emulate.add_argument(
        "--ca-file",
        type=Path,
        help="write the CA of the TLS routes (GigaChat) here, as PEM, for other clients to trust",
    )

    race = commands.add_parser("race", parents=[common], help="ask several providers, print the first answer")
    race.add_argument(
        "-p", "--provider", action="append", required=True, metavar="NAME[:MODEL]", help="a target (repeatable)"
    )
    race.add_argument("-m", "--model", help="the model for targets that name none")
    race.add_argument("--system", help="a system message")
    race.add_argument("--max-tokens", type=int, help="the most tokens to generate")
    race.add_argument("prompt", help="what to ask")

    batch = commands.add_parser("batch", parents=[common], help="answer a JSONL file of prompts, resumably")
    batch.add_argument("input", type=Path, help='JSONL: one {"id", "prompt" | "messages", ...} per line')
    batch.add_argument("output", type=Path, help="JSONL answers (ids already there are skipped)")
    batch.add_argument(
        "-p", "--provider", action="append", required=True, metavar="NAME[:MODEL]", help="a target (repeatable)"
    )
    batch.add_argument("--concurrency", type=int, default=8, help="requests in flight at most (default 8)")
    batch.add_argument("--race", action="store_true", help="race every -p target for each line")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")

    demo = commands.add_parser("demo", help="fan one prompt out to every emulated provider (no keys, no network)")
    demo.add_argument("prompt", nargs="?", default=DEMO_PROMPT, help="what to ask")
    return parser


@contextlib.asynccontextmanager
async def _provider(name: str, use_emulator: bool) -> AsyncIterator[Provider]:
    if use_emulator:
        from .testing import Emulator

        async with Emulator() as emu, emu.provider(name) as provider:
            yield provider
    else:
        async with PROVIDERS[name]() as provider:
            yield provider


def _messages(args: argparse.Namespace) -> tuple[list[Message], list[MediaItem]]:
    messages = [system(args.system)] if args.system else []
    messages.append(user(args.prompt))
    media: list[MediaItem] = [(path, None) for path in args.image]
    return messages, media


async def stream_to(events: Any, out: TextIO, err: TextIO) -> None:
    """Print a stream: text to ``out`` as it comes, everything else to ``err``.

    Tool calls and images get lines of their own (an image as its URL), so that
    ``trio-llm chat -p amigochat -m flux/dev ...`` prints just the URLs.
    """
    midline = False  # whether ``out`` is in the middle of a line
    async for event in events:
        if isinstance(event, TextDelta):
            out.write(event.text)
            out.flush()
            midline = not event.text.endswith("\n")
        elif isinstance(event, ReasoningDelta):
            err.write(event.text)
            err.flush()
        elif isinstance(event, ToolCall):
            arguments = json.dumps(event.arguments, ensure_ascii=False)
            out.write(("\n" if midline else "") + f"[tool call] {event.name}({arguments}) id={event.id}\n")
            midline = False
        elif isinstance(event, ImageOutput):
            line = event.url or f"[image: {len(event.data or b'')} bytes {event.mime_type}]"
            out.write(("\n" if midline else "") + line + "\n")
            out.flush()
            midline = False
        elif isinstance(event, Usage):
            counts = f"prompt={event.prompt_tokens} completion={event.completion_tokens} total={event.total_tokens}"
            err.write(f"\n[usage] {counts}")
        elif isinstance(event, Finish):
            if midline:
                out.write("\n")
            out.flush()
            midline = False
            err.write(f"\n[finish] {event.reason.value} ({event.raw})\n")
    err.flush()


async def _chat(args: argparse.Namespace, use_emulator: bool) -> None:
    messages, media = _messages(args)
    async with (
        _provider(args.provider, use_emulator) as provider,
        provider.stream(
            messages, model=args.model, max_tokens=args.max_tokens, temperature=args.temperature, media=media or None
        ) as events,
    ):
        await stream_to(events, sys.stdout, sys.stderr)


async def _models(args: argparse.Namespace, use_emulator: bool) -> None:
    async with _provider(args.provider, use_emulator) as provider:
        for model in await provider.models():
            print(model)


async def _emulate(args: argparse.Namespace) -> None:
    from .testing import Emulator

    tls_port = args.tls_port or (args.port + 1 if args.port else 0)
    emulator = Emulator(
        port=args.port,
        tls_port=tls_port,
        words=args.words,
        words_per_chunk=args.words_per_chunk,
        chunk_delay=args.chunk_delay,
        first_chunk_delay=args.first_chunk_delay,
        tick=args.tick,
    )
    async with emulator as emu:
        if args.ca_file is not None:
            await trio.Path(args.ca_file).write_bytes(emu.ca_pem)
        print("trio-llm emulator running; Ctrl-C stops it.")
        for name, url in sorted(emu.urls().items()):
            print(f"  {name:14} {url}")
        print(f"  {'api key':14} {emu.api_key}")
        print(f"  {'credentials':14} {emu.credentials}")
        if args.ca_file is not None:
            print(f"  {'ca file':14} {args.ca_file}")
        sys.stdout.flush()
        await trio.sleep_forever()


async def _race(args: argparse.Namespace, use_emulator: bool) -> None:
    messages = ([system(args.system)] if args.system else []) + [user(args.prompt)]
    options = {k: v for k, v in {"model": args.model, "max_tokens": args.max_tokens}.items() if v is not None}
    async with open_targets(
        args.provider, PROVIDERS, use_emulator=use_emulator, emulator_delay=args.emulator_delay
    ) as targets:
        await race_command(targets, messages, options)


async def _batch(args: argparse.Namespace, use_emulator: bool) -> None:
    if len(args.provider) > 1 and not args.race:
        raise ConfigurationError("several -p targets need --race (each line is then a race)")
    async with open_targets(
        args.provider, PROVIDERS, use_emulator=use_emulator, emulator_delay=args.emulator_delay
    ) as targets:
        await batch_command(args.input, args.output, targets, args.concurrency, not args.no_progress)


async def _run(args: argparse.Namespace) -> None:
    use_emulator = bool(getattr(args, "emulator", False) or args.emulator_top)
    if args.command == "chat":
        await _chat(args, use_emulator)
    elif args.command == "models":
        await _models(args, use_emulator)
    elif args.command == "emulate":
        await _emulate(args)
    elif args.command == "race":
        await _race(args, use_emulator)
    elif args.command == "batch":
        await _batch(args, use_emulator)
    elif args.command == "demo":
        await demo_command(args.prompt)
    else:  # pragma: no cover - argparse refuses unknown commands
        raise ConfigurationError(f"unknown command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trio-llm`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        trio.run(_run, args)
    except BaseException as exc:
        return _exit_status(exc)
    return 0


def _exit_status(exc: BaseException) -> int:
    # Ctrl-C reaches trio's main task wherever it is, often inside a nursery, so it can come
    # wrapped in an exception group; so can an error from a command's own nursery.
    if isinstance(exc, BaseExceptionGroup):
        interrupted, rest = exc.split(KeyboardInterrupt)
        if interrupted is not None and rest is None:
            exc = KeyboardInterrupt()
        elif len(exc.exceptions) == 1:
            return _exit_status(exc.exceptions[0])
    if isinstance(exc, TrioLLMError):
        print(f"trio-llm: error: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, KeyboardInterrupt):
        print("trio-llm: interrupted", file=sys.stderr)
        return 130
    if isinstance(exc, BrokenPipeError):
        return 0
    raise exc
