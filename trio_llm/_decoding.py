"""Sans-IO decoders: framing (SSE, or one JSON body) around a provider's payload interpreter.

A provider writes only an :class:`Interpreter`: it is handed each payload as text and returns
events, and at the end says whether the stream was complete. The framing classes here turn
bytes into payloads. Nothing in this module imports trio or httpx, so every decoder can be fed
arbitrary fragmentation and fuzzed.

Errors raised while decoding are held back until the events decoded before them have been
returned: a mid-stream error never swallows the text that preceded it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from ._errors import ProtocolError, TrioLLMError
from ._events import Event, Usage
from ._sse import DEFAULT_MAX_EVENT_SIZE, SSEDecoder

__all__ = ["BodyDecoder", "Decoder", "Interpreter", "SSEStreamDecoder", "SniffingDecoder", "loads"]


class Decoder(Protocol):
    """What the I/O layer drives: bytes in, events out."""

    def feed(self, chunk: bytes) -> list[Event]:
        """Decode a chunk; returns the events it completes."""
        ...

    def close(self) -> list[Event]:
        """End of input; returns the last events, or raises if the stream was incomplete."""
        ...

    @property
    def pending_error(self) -> TrioLLMError | None:
        """An error decoded after the events last returned, to be raised next."""
        ...

    def usage_so_far(self) -> Usage | None:
        """The token counts the provider has sent so far (before its final usage event)."""
        ...


class Interpreter(Protocol):
    """A provider's meaning of each payload."""

    def on_data(self, data: str) -> list[Event]:
        """One payload (an SSE ``data`` field, or the whole body)."""
        ...

    def on_end(self) -> list[Event]:
        """End of the stream: final events, or :class:`~trio_llm.StreamTruncatedError`."""
        ...


#: The C scanner under ``json.loads`` (the standard decoder's, so the same rules). Calling it
#: directly skips the two regular-expression scans for leading and trailing whitespace that
#: ``json.loads`` makes: 40% of the time it takes for a streamed chunk (docs/benchmarks.md).
#: Nothing is kept between calls (its memo is cleared after each, as in ``json.loads``).
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads(data: str | bytes, provider: str | None = None) -> Any:
    """``json.loads`` that raises :class:`ProtocolError` quoting the start of the payload.

    A payload with no whitespace around it is parsed by the scanner directly; anything else
    (whitespace, a byte-order mark, bytes, a payload that is not JSON) by ``json.loads``
    itself, so the result and the error are always exactly its own.
    """
    try:
        if type(data) is str:
            try:
                value, end = _scan_once(data, 0)
            except StopIteration:  # not the start of a JSON value at offset 0
                pass
            else:
                if end == len(data):
                    return value
        return json.loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        text = data if isinstance(data, str) else data[:200].decode("utf-8", "replace")
        snippet = text[:120] + ("..." if len(text) > 120 else "")
        raise ProtocolError(f"malformed JSON from the provider: {snippet!r}", provider=provider) from exc


class _Base:
    __slots__ = ("_closed", "_error", "_interpreter")

    def __init__(self, interpreter: Interpreter) -> None:
        self._interpreter = interpreter
        self._error: TrioLLMError | None = None
        self._closed = False

    @property
    def pending_error(self) -> TrioLLMError | None:
        return self._error

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def usage_so_far(self) -> Usage | None:
        usage_so_far = getattr(self._interpreter, "usage_so_far", None)
        return usage_so_far() if usage_so_far is not None else None

    def _interpret(self, payloads: list[str], *, end: bool) -> list[Event]:
        """Events for ``payloads`` (and the end); an error after some events is held back."""
        out: list[Event] = []
        on_data = self._interpreter.on_data
        try:
            for payload in payloads:
                out += on_data(payload)
            if end:
                out += self._interpreter.on_end()
        except TrioLLMError as error:
            if not out:
                raise
            self._error = error
        return out


class SSEStreamDecoder(_Base):
    """Server-sent events whose ``data`` fields are payloads."""

    __slots__ = ("_sse",)

    def __init__(self, interpreter: Interpreter, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        super().__init__(interpreter)
        self._sse = SSEDecoder(max_event_size)

    @property
    def pending_error(self) -> TrioLLMError | None:
        return self._error or self._sse.pending_error

    def feed(self, chunk: bytes) -> list[Event]:
        self._raise_pending()
        return self._interpret(self._sse.feed_data(chunk), end=False)

    def close(self) -> list[Event]:
        self._raise_pending()
        if self._closed:
            return []
        self._closed = True
        return self._interpret([event.data for event in self._sse.close()], end=True)


class BodyDecoder(_Base):
    """A whole (non-streamed) body, one payload, decoded when the body is complete."""

    __slots__ = ("_chunks", "_max", "_size")

    def __init__(self, interpreter: Interpreter, *, max_body_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        super().__init__(interpreter)
        self._chunks: list[bytes] = []
        self._size = 0
        self._max = max_body_size

    def feed(self, chunk: bytes) -> list[Event]:
        self._size += len(chunk)
        if self._size > self._max:
            raise ProtocolError(f"response body exceeds {self._max} bytes")
        self._chunks.append(chunk)
        return []

    def close(self) -> list[Event]:
        self._raise_pending()
        if self._closed:
            return []
        self._closed = True
        body = b"".join(self._chunks)
        self._chunks = []
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"response body is not valid UTF-8 (byte {exc.start})") from None
        return self._interpret([text], end=True)


class SniffingDecoder:
    """For a streamed request whose answer is not labelled ``text/event-stream``: its first
    bytes decide. A body that starts with ``{`` or ``[`` (never valid server-sent events) is one
    JSON reply from a server that ignored the request to stream, or a gateway's error object,
    and is decoded by ``whole``; anything else is a stream with a wrong label, for ``events``.
    """

    __slots__ = ("_chosen", "_events", "_whole")

    def __init__(self, events: Decoder, whole: Decoder) -> None:
        self._events = events
        self._whole = whole
        self._chosen: Decoder | None = None

    @property
    def pending_error(self) -> TrioLLMError | None:
        return self._chosen.pending_error if self._chosen is not None else None

    def usage_so_far(self) -> Usage | None:
        return self._chosen.usage_so_far() if self._chosen is not None else None

    def feed(self, chunk: bytes) -> list[Event]:
        chosen = self._chosen
        if chosen is None:
            head = chunk.lstrip()[:1]
            if not head:
                return []  # only whitespace so far: meaningless to both, so far
            chosen = self._chosen = self._whole if head in (b"{", b"[") else self._events
        return chosen.feed(chunk)

    def close(self) -> list[Event]:
        if self._chosen is None:
            self._chosen = self._events  # an empty body: the stream's decoder says what it lacks
        return self._chosen.close()
