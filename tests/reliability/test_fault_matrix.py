"""The fault matrix (``fault_matrix.py``), run: every fault against every provider, over real
loopback sockets, on trio's MockClock.

Each case makes one clean call (the answer to compare with), injects the fault, makes the call
again and checks the row's outcome; then what must hold after every fault: the error names its
provider, no connection is left open, no output is repeated (what reached the caller is a
prefix of the clean answer), and no secret is in any repr, message, traceback or DEBUG log.
"""

from __future__ import annotations

import email.utils
import socket
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from fault_matrix import CASES, HUGE_PEAK_FACTOR, POLICY, PROMPT, REQUEST_ID, Case, Raises, Recovers, Target
from leakcheck import assert_no_secret, rendered, secrets_of

import trio_llm
from trio_llm import Event, Finish, ImageOutput, ReasoningDelta, TextDelta, ToolCall
from trio_llm.testing import Emulator, Fault

WRONG_GEMINI_KEY = "AIzaSy-a-wrong-but-still-secret-key-0123"
WRONG_OPENAI_KEY = "sk-proj-a-wrong-but-still-secret-key-0123"
WRONG_CREDENTIALS = "d3JvbmctY2xpZW50Ondyb25nLWJ1dC1zZWNyZXQtMDEyMw=="  # wrong-client:wrong-but-secret-0123


@attrs.define
class Observed:
    """What one call gave: the events that reached the caller, or the error (or both)."""

    events: list[Event] = attrs.Factory(list)
    error: trio_llm.TrioLLMError | None = None
    texts: list[str] = attrs.Factory(list)  # reprs to search for secrets


def _reply_events(reply: trio_llm.Reply) -> list[Event]:
    events: list[Event] = [TextDelta(reply.text)] if reply.text else []
    events += reply.images
    if reply.usage is not None:
        events.append(reply.usage)
    if reply.finish is not None:
        events.append(reply.finish)
    return events


async def observe(target: Target, provider: trio_llm.Provider) -> Observed:
    seen = Observed()
    try:
        if target.complete:
            reply = await provider.complete(PROMPT, model=target.model)
            seen.texts.append(repr(reply))
            seen.events = _reply_events(reply)
        else:
            async with provider.stream(PROMPT, model=target.model) as events:
                seen.texts.append(repr(events))
                async for event in events:
                    seen.events.append(event)
    except trio_llm.TrioLLMError as error:
        seen.error = error
        seen.texts += rendered(error)
    return seen


def content(events: list[Event]) -> list[Event]:
    """The answer itself (not its usage or finish), which must never be repeated."""
    return [e for e in events if isinstance(e, TextDelta | ReasoningDelta | ToolCall | ImageOutput)]


def answer(events: list[Event]) -> tuple[str, list[Event]]:
    """The text of the answer, however it was cut into events, and its other parts in order."""
    text = "".join(e.text for e in events if isinstance(e, TextDelta | ReasoningDelta))
    return text, [e for e in events if isinstance(e, ToolCall | ImageOutput)]


# -- special arrangements (Row.setup) ------------------------------------------------------------

Setup = Callable[[Emulator, Target, dict[str, Any]], Awaitable[Callable[[trio_llm.Provider], Awaitable[None]] | None]]


def closed_port_url(url: str) -> str:
    """``url`` with its port replaced by one where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    scheme, _, rest = url.partition("://")
    _host, _, path = rest.partition("/")
    return f"{scheme}://127.0.0.1:{port}/{path}"


async def _http_date(emu: Emulator, target: Target, kwargs: dict[str, Any]) -> None:
    await trio.lowlevel.checkpoint()
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    emu.inject(target.provider, Fault(status=503, retry_after=when), route=target.route)


async def _refused(emu: Emulator, target: Target, kwargs: dict[str, Any]) -> None:
    await trio.lowlevel.checkpoint()
    kwargs["base_url"] = closed_port_url(emu.url_for(target.provider))


async def _wrong_ca(emu: Emulator, target: Target, kwargs: dict[str, Any]) -> None:
    await trio.lowlevel.checkpoint()
    kwargs["base_url"] = emu.url_for(target.provider, tls=True)
    if target.provider == "gigachat":
        kwargs["default_trust"] = True  # the public roots and the bundled Russian CA, not the emulator's


async def _wrong_key(emu: Emulator, target: Target, kwargs: dict[str, Any]) -> None:
    await trio.lowlevel.checkpoint()
    key = {"gemini": ("api_key", WRONG_GEMINI_KEY), "openai": ("api_key", WRONG_OPENAI_KEY)}
    name, value = key.get(target.provider, ("credentials", WRONG_CREDENTIALS))
    kwargs[name] = value


async def _wrong_scope(emu: Emulator, target: Target, kwargs: dict[str, Any]) -> None:
    await trio.lowlevel.checkpoint()
    kwargs["scope"] = "GIGACHAT_API_B2B"  # the emulator's key has GIGACHAT_API_PERS only


async def _token_revoked(
    emu: Emulator, target: Target, kwargs: dict[str, Any]
) -> Callable[[trio_llm.Provider], Awaitable[None]]:
    await trio.lowlevel.checkpoint()

    async def warm_up(provider: trio_llm.Provider) -> None:
        await provider.complete(PROMPT)  # the provider now holds a token...
        emu.revoke_tokens()  # ... which the service stops accepting

    return warm_up


async def _token_expired(
    emu: Emulator, target: Target, kwargs: dict[str, Any]
) -> Callable[[trio_llm.Provider], Awaitable[None]]:
    await trio.lowlevel.checkpoint()
    emu.token_lifetime = 120.0

    async def warm_up(provider: trio_llm.Provider) -> None:
        await provider.complete(PROMPT)
        await trio.sleep(100)  # 20 s of the token's life left: less than the refresh margin

    return warm_up


SETUPS: dict[str, Setup] = {
    "retry-after-http-date": _http_date,
    "connection-refused": _refused,
    "wrong-ca": _wrong_ca,
    "wrong-key": _wrong_key,
    "wrong-scope": _wrong_scope,
    "token-revoked": _token_revoked,
    "token-expired": _token_expired,
}


def make_provider(emu: Emulator, target: Target, **kwargs: Any) -> trio_llm.Provider:
    if kwargs.pop("default_trust", False):
        kwargs.setdefault("credentials", emu.credentials)
        return trio_llm.GigaChat(auth_url=emu.url_for("gigachat-auth"), **kwargs)
    return emu.provider(target.provider, **kwargs)


# -- the test ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_fault(
    case: Case, emu: Emulator, autojump_clock: trio.testing.MockClock, debug_logs: pytest.LogCaptureFixture
) -> None:
    row, target, expected = case.row, case.target, case.outcome
    clean = await observe(target, make_provider(emu, target, retry=POLICY))
    assert clean.error is None, clean.error

    kwargs: dict[str, Any] = {"timeouts": row.timeouts_for(target), "retry": POLICY}
    warm_up = None
    if row.setup is not None:
        warm_up = await SETUPS[row.setup](emu, target, kwargs)
    fault = row.fault_for(target)
    if fault is not None:
        emu.inject(target.provider, fault, times=row.times, route=row.route or target.route)
    provider = make_provider(emu, target, **kwargs)
    if warm_up is not None:
        await warm_up(provider)

    requests, oauth = emu.count(target.provider, target.route), emu.oauth_requests
    tracing = isinstance(expected, Recovers) and expected.huge is not None
    if tracing:
        tracemalloc.start()
    try:
        start = trio.current_time()
        seen = await observe(target, provider)
        elapsed = trio.current_time() - start
        peak = tracemalloc.get_traced_memory()[1] if tracing else 0
    finally:
        tracemalloc.stop()
    attempts = emu.count(target.provider, target.route) - requests

    # The outcome of this row, for this target.
    low, high = expected.elapsed
    assert low - 1e-6 <= elapsed <= high + 1e-6, f"took {elapsed} s"
    if expected.oauth is not None:
        assert emu.oauth_requests - oauth == expected.oauth
    if isinstance(expected, Recovers):
        assert seen.error is None, repr(seen.error)
        assert attempts == expected.attempts
        if expected.huge is not None:
            (text,) = content(seen.events)
            assert text == TextDelta("x" * expected.huge)
            assert isinstance(seen.events[-1], Finish)
            assert peak < HUGE_PEAK_FACTOR * expected.huge, f"peak traced memory {peak / expected.huge:.1f}x the event"
        elif expected.whole:
            assert trio_llm.Reply.from_events(seen.events) == trio_llm.Reply.from_events(clean.events)
            assert len(seen.events) < len(clean.events)
        elif expected.finish is not None:
            assert seen.events[-1] == expected.finish
            assert seen.events[:-1] == clean.events[:-1]
        else:
            assert seen.events == clean.events
    else:
        check_error(seen, expected, target, attempts)

    # What must hold after every fault.
    with trio.fail_after(5):
        await emu.wait_for_connections(0)
    if not (isinstance(expected, Recovers) and expected.huge is not None):
        text, others = answer(seen.events)
        clean_text, clean_others = answer(clean.events)
        assert clean_text.startswith(text), "output repeated or spliced"
        assert others == clean_others[: len(others)], "output repeated or spliced"
    seen.texts += [repr(provider), debug_logs.text]
    assert debug_logs.records, "no DEBUG record captured: the secret check would prove nothing"
    assert_no_secret(secrets_of(emu, WRONG_GEMINI_KEY, WRONG_OPENAI_KEY, WRONG_CREDENTIALS), seen.texts)


def check_error(seen: Observed, expected: Raises, target: Target, attempts: int) -> None:
    error = seen.error
    assert error is not None, f"no error; got {len(seen.events)} events"
    assert type(error) is expected.error, repr(error)
    assert error.provider == target.provider
    assert str(error).startswith(f"{target.provider}: ")
    for part in (expected.match,) if isinstance(expected.match, str) else expected.match:
        assert part in str(error)
    if expected.attempts is not None:
        assert attempts == expected.attempts
    if expected.events is not None:
        assert len(seen.events) == expected.events
    else:
        assert seen.events, "no event before the deadline: the case proves less than it says"
    if isinstance(error, trio_llm.StreamTruncatedError):
        assert error.events_delivered == len(seen.events)
    if expected.status is not None:
        assert isinstance(error, trio_llm.APIStatusError)
        assert error.status_code == expected.status
    if expected.request_id:
        assert isinstance(error, trio_llm.APIStatusError)
        assert error.request_id == REQUEST_ID
        assert f"(request id {REQUEST_ID})" in str(error)


def test_every_case_is_a_distinct_test() -> None:
    ids = [str(case) for case in CASES]
    assert len(ids) == len(set(ids))
