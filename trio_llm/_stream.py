"""The stream object: an async context manager and a hand-written async iterator of events.

It owns one HTTP response at a time and guarantees that leaving the ``async with`` block —
normally, by ``break``, by an exception or by cancellation — closes it at once.

Deadlines (:class:`~trio_llm.Timeouts`) are cancel scopes opened and closed *inside* each call
into this object, never across a ``yield`` to user code, so a slow consumer is never charged
for its own time. Retries (:class:`~trio_llm.RetryPolicy`) happen only while no event has
reached the caller: an answer is never repeated, never spliced.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import trio

from ._decoding import Decoder, SniffingDecoder
from ._errors import (
    APIStatusError,
    FirstEventTimeout,
    IdleTimeout,
    StreamTruncatedError,
    TotalTimeout,
    TrioLLMError,
)
from ._events import Event, Reply, ReplyBuilder, Usage
from ._http import MAX_ERROR_BODY, HTTPCall, find_request_id, html_reply_error, translate_httpx_error

if TYPE_CHECKING:
    from ._provider import ChatRequest, ClientLease, Provider

__all__ = ["EventStream"]

logger = logging.getLogger("trio_llm")

_HTTPX_ERRORS = (httpx.HTTPError, OSError)
#: Buffered events delivered between two schedule points (every call is a cancel point). A
#: schedule point costs ~3.5 us, so at 8 it was 8% of a streamed event's CPU; 32 is 1-2%, and
#: still lets other tasks run every ~0.2 ms of a stream (httpx alone yields once per socket
#: read: every few hundred events). See docs/benchmarks.md.
_SCHEDULE_EVERY = 32


class EventStream:
    """The events of one model call. Use as ``async with provider.stream(...) as events:``.

    Iterate it with ``async for``; or call :meth:`collect` for the whole :class:`Reply`.

    Attributes:
        provider: The provider's name.
        model: The model asked for (after alias resolution).
        attempts: How many HTTP attempts were made so far.
        events_delivered: How many events have reached the caller.
        status_code: The HTTP status of the current response (``None`` before it arrived).
        headers: The headers of the current response.
        started_at: ``trio.current_time()`` when the stream was entered.
        first_event_at: ``trio.current_time()`` when the first event reached the caller.
    """

    def __init__(self, provider: Provider, request: ChatRequest, *, streaming: bool) -> None:
        self._provider = provider
        self._request = request
        self._streaming = streaming
        self.provider: str = provider.name
        self.model: str = request.model
        self.attempts = 0
        self.events_delivered = 0
        self.status_code: int | None = None
        self.headers: Mapping[str, str] = {}
        self.started_at: float | None = None
        self.first_event_at: float | None = None
        self._call: HTTPCall | None = None
        self._client: httpx.AsyncClient | None = None
        self._lease: ClientLease | None = None
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._decoder: Decoder | None = None
        self._pending: deque[Event] = deque()
        self._produced = 0  # events decoded in the current attempt
        self._attempt_started = 0.0
        self._total_deadline = math.inf
        self._eof = False
        self._entered = False
        self._closed = False
        self._busy = False
        self._auth_refreshed = False
        self._sent_auth: Mapping[str, str] | None = None  # what the current attempt sent
        self._random: random.Random | None = None  # made on the first retry: seeding costs 11 us
        self._unscheduled = 0

    # -- context manager ---------------------------------------------------------------------

    async def __aenter__(self) -> EventStream:
        if self._entered:
            raise RuntimeError("a stream can only be entered once")
        self._entered = True
        timeouts = self._provider.timeouts
        self.started_at = trio.current_time()
        if timeouts.total is not None:
            self._total_deadline = self.started_at + timeouts.total
        opened = False
        try:
            self._lease = self._provider._lease()
            self._client = self._lease.client
            await self._open(first_attempt=True)
            opened = True
        finally:
            if not opened:  # failed or cancelled while opening: release what was taken
                await self.aclose()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the response (and the short-lived client, if this stream made one).

        Runs shielded, so it completes even inside a cancelled scope; it is idempotent.
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            await self._close_response()
            if self._lease is not None:
                await self._lease.release()
            self._client = None

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._busy:
            raise trio.BusyResourceError("another task is already iterating this stream")
        if not self._entered or self._closed:
            raise trio.ClosedResourceError("the stream is not open (use it inside 'async with')")
        pending = self._pending
        if pending:
            # Already decoded, no I/O needed: still a cancel point every time, and a schedule
            # point at least every few events so one fast stream cannot starve other tasks.
            # (A full checkpoint per event would cost 3.5 us, more than half of the whole
            # per-event budget; see docs/benchmarks.md.)
            self._unscheduled += 1
            if self._unscheduled >= _SCHEDULE_EVERY:
                self._unscheduled = 0
                await trio.lowlevel.checkpoint()
            else:
                await trio.lowlevel.checkpoint_if_cancelled()
            return self._deliver(pending.popleft())
        # httpcore may answer from bytes it already holds, with no I/O and so no checkpoint:
        # make sure this call is always a cancel point (the socket read is the schedule point).
        await trio.lowlevel.checkpoint_if_cancelled()
        self._unscheduled = 0
        self._busy = True
        try:
            await self._fill()
        finally:
            self._busy = False
        if pending:
            return self._deliver(pending.popleft())
        raise StopAsyncIteration

    @property
    def _rng(self) -> random.Random:
        """The jitter of this stream's retries."""
        if self._random is None:
            self._random = random.Random()
        return self._random

    def _deliver(self, event: Event) -> Event:
        if self.events_delivered == 0:
            self.first_event_at = trio.current_time()
        self.events_delivered += 1
        return event

    @property
    def usage_so_far(self) -> Usage | None:
        """Token counts the provider has sent so far, even if the stream was cut short.

        Gemini sends a running count in every chunk; other providers only at the end.
        """
        decoder = self._decoder
        return decoder.usage_so_far() if decoder is not None else None

    async def collect(self) -> Reply:
        """Read the rest of the stream and aggregate the events not yet read into a :class:`Reply`."""
        builder = ReplyBuilder(provider=self.provider, model=self.model)
        async for event in self:
            builder.add(event)
        return builder.build()

    # -- internals ---------------------------------------------------------------------------

    async def _fill(self) -> None:
        """Read until at least one event is decoded or the stream ends. Retries if allowed."""
        while True:
            try:
                await self._read_until_event()
                return
            except TrioLLMError as error:
                self._attribute(error)
                if self.events_delivered or self._pending:
                    raise
                await self._close_response()
                await self._retry_or_raise(error)
                await self._open(first_attempt=False)

    def _attribute(self, error: TrioLLMError) -> None:
        """Complete what a decoder could not know about an error found in a response body: the
        provider (framing errors come from shared code) and the response's request id (for an
        error object inside a 200 reply)."""
        if error.provider is None:
            error.provider = self.provider
        if isinstance(error, StreamTruncatedError):
            error.events_delivered = self.events_delivered
        elif isinstance(error, APIStatusError) and error.request_id is None:
            error.request_id = find_request_id(self.headers)

    async def _read_until_event(self) -> None:
        decoder = self._decoder
        chunks = self._chunks
        if decoder is None or chunks is None:
            return
        pending = self._pending
        # One scope for every read until an event: the deadline cannot change before one is
        # decoded (it depends on whether one was), and a scope costs ~5 us.
        deadline, expired = self._read_deadline(trio.current_time())
        with trio.CancelScope(deadline=deadline) as scope:
            while not pending:
                if decoder.pending_error is not None:
                    raise decoder.pending_error
                if self._eof:
                    return
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    chunk = None
                except _HTTPX_ERRORS as exc:
                    raise self._transport_error(exc, reading_body=True) from exc
                if chunk is None:
                    self._eof = True
                    events = decoder.close()
                    await self._close_response()
                else:
                    events = decoder.feed(chunk)
                if events:
                    self._produced += len(events)
                    pending.extend(events)
        if scope.cancelled_caught:
            expired()

    def _read_deadline(self, wait_started: float) -> tuple[float, Any]:
        """The deadline for the next read, and the function that raises when it expires."""
        timeouts = self._provider.timeouts
        if self._produced == 0:
            phase_deadline = (
                self._attempt_started + timeouts.first_event if timeouts.first_event is not None else math.inf
            )
            phase_error = self._first_event_expired
        else:
            phase_deadline = wait_started + timeouts.idle if timeouts.idle is not None else math.inf
            phase_error = self._idle_expired
        if self._total_deadline <= phase_deadline:
            return self._total_deadline, self._total_expired
        return phase_deadline, phase_error

    def _first_event_expired(self) -> NoReturn:
        timeout = self._provider.timeouts.first_event or 0.0
        raise FirstEventTimeout(
            f"no event within {timeout} s of sending the request", provider=self.provider, timeout=timeout
        )

    def _idle_expired(self) -> NoReturn:
        timeout = self._provider.timeouts.idle or 0.0
        raise IdleTimeout(
            f"no event for {timeout} s in the middle of the stream", provider=self.provider, timeout=timeout
        )

    def _total_expired(self) -> NoReturn:
        timeout = self._provider.timeouts.total or 0.0
        raise TotalTimeout(f"the call took longer than {timeout} s", provider=self.provider, timeout=timeout)

    def _transport_error(self, exc: BaseException, *, reading_body: bool) -> TrioLLMError:
        assert isinstance(exc, _HTTPX_ERRORS)
        error = translate_httpx_error(
            exc,
            provider=self.provider,
            connect_timeout=self._provider.timeouts.connect,
            trust_hint=self._provider._trust_hint(),
            reading_body=reading_body,
            events_delivered=self.events_delivered,
        )
        if isinstance(error, StreamTruncatedError):
            error.events_delivered = self.events_delivered
        return error

    async def _open(self, *, first_attempt: bool) -> None:
        """Send the request until a 2xx response arrives, retrying what the policy allows."""
        while True:
            try:
                await self._attempt()
                return
            except TrioLLMError as error:
                await self._retry_or_raise(error)

    async def _attempt(self) -> None:
        provider = self._provider
        client = self._client
        assert client is not None
        self.attempts += 1
        self._produced = 0
        self._eof = False
        self._pending.clear()
        self._attempt_started = trio.current_time()
        if self._call is None:
            self._call = provider._http_call(self._request, streaming=self._streaming)
        deadline, expired = self._read_deadline(self._attempt_started)
        with trio.CancelScope(deadline=deadline) as scope:
            self._sent_auth = None
            auth = await provider._auth_headers(client)
            self._sent_auth = auth
            request = self._call.build(client, auth)
            try:
                response = await client.send(request, stream=True)
            except _HTTPX_ERRORS as exc:
                raise self._transport_error(exc, reading_body=False) from exc
            self._response = response
            self.status_code = response.status_code
            self.headers = response.headers
            if logger.isEnabledFor(logging.DEBUG):  # copying the URL costs ~30 us per request
                logger.debug(
                    "%s %s %s -> %d (attempt %d)",
                    provider.name,
                    request.method,
                    request.url.copy_with(query=None),
                    response.status_code,
                    self.attempts,
                )
            if response.status_code >= 300:
                body = await self._read_error_body(response)
                await self._close_response()
                raise provider._status_error(response.status_code, response.headers, body)
            if "html" in response.headers.get("content-type", "").lower():
                # No provider answers with HTML: a captive portal, a proxy's page or a wrong
                # base_url did. Say so, rather than "malformed JSON" or "stream truncated".
                body = await self._read_error_body(response)
                await self._close_response()
                raise html_reply_error(response.status_code, body, provider=provider.name)
        if scope.cancelled_caught:
            await self._close_response()
            expired()
        decoder = provider._decoder(self._request, streaming=self._streaming)
        if self._streaming and "event-stream" not in response.headers.get("content-type", ""):
            # Not labelled as a stream: it may be one JSON reply (a server that ignores "stream",
            # a gateway's error object). Its first bytes tell, so that such a reply is read as
            # what it is, not taken for a stream cut short (and retried).
            decoder = SniffingDecoder(decoder, provider._decoder(self._request, streaming=False))
        self._decoder = decoder
        self._chunks = response.aiter_bytes()

    async def _read_error_body(self, response: httpx.Response) -> bytes:
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                parts.append(chunk)
                size += len(chunk)
                if size >= MAX_ERROR_BODY:
                    break
        except _HTTPX_ERRORS:
            pass  # An error body cut short still explains the status; the status is the error.
        return b"".join(parts)

    async def _retry_or_raise(self, error: TrioLLMError) -> None:
        """Sleep before the next attempt, or raise ``error`` if there will be none."""
        provider = self._provider
        sent = self._sent_auth
        if not self._auth_refreshed and sent is not None and provider._should_refresh_auth(error):
            # A rejected token: get a fresh one once and try again at once. (Only when the
            # server refused what was sent: failing to get credentials is not retried here.)
            self._auth_refreshed = True
            provider._auth_rejected(sent)
            return
        policy = provider.retry
        delay = policy.backoff(self.attempts, error, self._rng)
        if delay is None:
            retry_after = error.retry_after if isinstance(error, APIStatusError) else None
            retryable = policy.is_retryable(error)
            if retryable and retry_after is not None and self.attempts < policy.max_attempts:
                _explain(
                    error,
                    f"not retried: the provider asked to wait {retry_after:g} s, longer than"
                    f" RetryPolicy.retry_after_cap ({policy.retry_after_cap:g} s)",
                )
            elif retryable and self.attempts > 1:
                _explain(error, f"after {self.attempts} attempts")
            raise error
        now = trio.current_time()
        deadline = min(self._total_deadline, trio.current_effective_deadline())
        if now + delay >= deadline:
            # Waiting would outlive the caller's deadline: the real error is more useful.
            _explain(error, f"not retried: waiting {delay:.3g} s would pass the deadline")
            raise error
        logger.debug(
            "%s: retrying after %s in %.2f s (attempt %d of %d)",
            provider.name,
            _describe(error),
            delay,
            self.attempts + 1,
            provider.retry.max_attempts,
        )
        await trio.sleep(delay)

    async def _close_response(self) -> None:
        response = self._response
        chunks = self._chunks
        self._response = None
        self._chunks = None
        if chunks is None and response is None:
            return
        with trio.CancelScope(shield=True):  # one scope for both: a scope costs ~5 us
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except _HTTPX_ERRORS:
                    pass  # Closing a broken connection may fail; it is closed either way.
            if response is not None:
                try:
                    await response.aclose()
                except _HTTPX_ERRORS:
                    pass


def _explain(error: TrioLLMError, why: str) -> None:
    """Say in ``error``'s message why the call gave up (so that the user knows what to change)."""
    error.message = f"{error.message} ({why})"


def _describe(error: TrioLLMError) -> str:
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status_code}"
    return type(error).__name__
