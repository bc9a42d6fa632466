"""The ``trio-llm`` command (also ``python -m trio_llm``).

Keys come from the environment (``GEMINI_API_KEY``, ``GIGACHAT_CREDENTIALS``, ...). ``--emulator`` runs any command
against an in-process emulator instead of the real service. Errors print one line and exit
non-zero; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TextIO

import trio

from ._errors import ConfigurationError, TrioLLMError
from ._events import Finish, ImageOutput, ReasoningDelta, TextDelta, ToolCall, Usage
from ._media import MediaItem
from ._messages import Message, system, user
from ._provider import Provider
from .providers import Gemini, GigaChat

__all__ = ["main"]

#: The providers the command line knows, by ``-p`` name.
PROVIDERS: dict[str, Callable[[], Provider]] = {"gemini": Gemini, "gigachat": GigaChat}

DEMO_PROMPT = "Tell me a short story about a lantern on a river."


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--emulator", action="store_true", help="run against an in-process emulator (no keys, no network)"
    )

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

    demo = commands.add_parser("demo", help="stream an answer from the built-in emulator (no keys, no network)")
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
    """Print a stream: text to ``out`` as it comes, everything else to ``err``."""
    async for event in events:
        if isinstance(event, TextDelta):
            out.write(event.text)
            out.flush()
        elif isinstance(event, ReasoningDelta):
            err.write(event.text)
            err.flush()
        elif isinstance(event, ToolCall):
            out.write(f"\n[tool call] {event.name}({json.dumps(event.arguments, ensure_ascii=False)}) id={event.id}\n")
        elif isinstance(event, ImageOutput):
            out.write(
                f"\n{event.url}\n" if event.url else f"\n[image: {len(event.data or b'')} bytes {event.mime_type}]\n"
            )
        elif isinstance(event, Usage):
            counts = f"prompt={event.prompt_tokens} completion={event.completion_tokens} total={event.total_tokens}"
            err.write(f"\n[usage] {counts}")
        elif isinstance(event, Finish):
            out.write("\n")
            out.flush()
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
    )
    async with emulator as emu:
        print("trio-llm emulator running; Ctrl-C stops it.")
        for name, url in sorted(emu.urls().items()):
            print(f"  {name:14} {url}")
        print(f"  {'api key':14} {emu.api_key}")
        print(f"  {'credentials':14} {emu.credentials}")
        sys.stdout.flush()
        await trio.sleep_forever()


async def _demo(args: argparse.Namespace) -> None:
    from .testing import Emulator

    async with Emulator(words=60, chunk_delay=0.03) as emu:
        print(f"trio-llm demo: the built-in emulator is serving on {emu.url_for('gemini')}")
        print(f"> {args.prompt}\n")
        async with emu.provider("gemini") as gemini, gemini.stream(args.prompt, max_tokens=200) as events:
            print(f"[{gemini.label}, {events.model}]")
            await stream_to(events, sys.stdout, sys.stderr)


async def _run(args: argparse.Namespace) -> None:
    use_emulator = bool(getattr(args, "emulator", False) or args.emulator_top)
    if args.command == "chat":
        await _chat(args, use_emulator)
    elif args.command == "models":
        await _models(args, use_emulator)
    elif args.command == "emulate":
        await _emulate(args)
    elif args.command == "demo":
        await _demo(args)
    else:  # pragma: no cover - argparse refuses unknown commands
        raise ConfigurationError(f"unknown command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trio-llm`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        trio.run(_run, args)
    except TrioLLMError as error:
        print(f"trio-llm: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("trio-llm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0
