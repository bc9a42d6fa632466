"""A sans-IO, incremental decoder of server-sent events (the WHATWG ``text/event-stream``).

Bytes in, :class:`SSEEvent` out; no trio, no httpx. It accepts ``\\n``, ``\\r`` and ``\\r\\n``
line endings (mixed, and split across chunks), comments, multi-line ``data:``, fields without
the optional space, and chunks split at any byte. Work is linear in the input: a partial line
is kept as a list of pieces and joined once, so an event fed one byte at a time costs no more
than the same event in one chunk.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._errors import ProtocolError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "SSEEvent"]

#: Generous on purpose: Gemini puts multi-megabyte base64 images into a single event.
DEFAULT_MAX_EVENT_SIZE = 128 * 1024 * 1024


@attrs.frozen
class SSEEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed it bytes, get complete events back.

    Args:
        max_event_size: The most bytes of ``data`` one event may carry. A larger event, or
            any line longer than that plus the ``data: `` prefix, raises
            :class:`~trio_llm.ProtocolError` instead of eating memory. The verdict does not
            depend on how the input was split into chunks.

    An error found after some events of a chunk were decoded is raised by the *next* call,
    so those events are not lost.
    """

    __slots__ = (
        "_data",
        "_data_size",
        "_error",
        "_event",
        "_id",
        "_line_limit",
        "_max",
        "_pieces",
        "_pieces_size",
        "_retry",
        "_skip_lf",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._max = max_event_size
        self._line_limit = max_event_size + len(b"data: ")
        self._pieces: list[bytes] = []  # the current, unterminated line
        self._pieces_size = 0
        self._skip_lf = False  # the last chunk ended in "\r": a "\n" opening the next is its pair
        self._data: list[bytes] = []
        self._data_size = 0
        self._event: bytes | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._error: ProtocolError | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode ``chunk`` and return the events it completes (often none, or several)."""
        return self._feed(chunk, data_only=False)

    def feed_data(self, chunk: bytes) -> list[str]:
        """:meth:`feed` for callers that read only the ``data`` of each event: the same
        decoding and the same errors, without building an :class:`SSEEvent` per event."""
        return self._feed(chunk, data_only=True)

    def _feed(self, chunk: bytes, *, data_only: bool) -> list[Any]:
        if self._error is not None:
            raise self._error
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\n" not in chunk and b"\r" not in chunk:
            self._pieces.append(chunk)
            self._pieces_size += len(chunk)
            if self._pieces_size > self._line_limit:
                raise self._too_large()
            return []
        lines = chunk.splitlines()
        if self._pieces:
            self._pieces.append(lines[0])
            lines[0] = b"".join(self._pieces)
            self._pieces = []
            self._pieces_size = 0
        last = chunk[-1]
        if last == 0x0D:
            self._skip_lf = True
        elif last != 0x0A:
            # The chunk ends inside a line: keep that line for the next chunk.
            tail = lines.pop()
            self._pieces = [tail]
            self._pieces_size = len(tail)
        events: list[Any] = []
        dispatch = self._dispatch_data if data_only else self._dispatch
        try:
            for line in lines:
                if not line:
                    if self._data:
                        events.append(dispatch())
                    else:
                        self._event = None  # an event with no data is not dispatched
                elif line.startswith(b"data:"):
                    # The line of almost every event, inlined from _field (same rules).
                    value = line[6:] if line[5:6] == b" " else line[5:]
                    if self._data:
                        self._data_size += 1
                    self._data_size += len(value)
                    self._data.append(value)
                    if self._data_size > self._max:
                        raise self._too_large()
                elif len(line) > self._line_limit:
                    raise self._too_large()
                elif line[0] != 0x3A:  # ":" starts a comment
                    self._field(line)
            if self._pieces_size > self._line_limit:
                raise self._too_large()
        except ProtocolError as error:
            if not events:
                raise
            self._error = error
        return events

    def close(self) -> list[SSEEvent]:
        """Signal end of input. An event not yet ended by a blank line is dispatched.

        Whether a stream that ended without a blank line is *complete* is for the provider's
        decoder to say (by its own end marker), so the pending event is not dropped here.
        """
        if self._error is not None:
            raise self._error
        if self._pieces:
            line = b"".join(self._pieces)
            self._pieces = []
            self._pieces_size = 0
            if line[:1] != b":":
                self._field(line)
        if self._data:
            return [self._dispatch()]
        return []

    @property
    def pending_error(self) -> ProtocolError | None:
        """An error found after the events last returned; the next call raises it."""
        return self._error

    @property
    def has_partial_event(self) -> bool:
        """Whether bytes of an event not yet dispatched are buffered."""
        return bool(self._pieces or self._data)

    def _too_large(self) -> ProtocolError:
        return ProtocolError(f"server-sent event exceeds {self._max} bytes")

    def _field(self, line: bytes) -> None:
        colon = line.find(b":")
        if colon == -1:
            name, value = line, b""
        else:
            name = line[:colon]
            value = line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            if self._data:
                self._data_size += 1  # the "\n" that will join this line to the previous one
            self._data_size += len(value)
            self._data.append(value)
            if self._data_size > self._max:
                raise self._too_large()
        elif name == b"event":
            self._event = value
        elif name == b"id" and b"\x00" not in value:
            self._id = _decode(value)
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)
        # Unknown fields are ignored, as the standard says.

    def _dispatch(self) -> SSEEvent:
        data = self._data
        raw = data[0] if len(data) == 1 else b"\n".join(data)
        event = SSEEvent(
            data=_decode(raw),
            event=_decode(self._event) if self._event else "message",
            id=self._id,
            retry=self._retry,
        )
        self._data = []
        self._data_size = 0
        self._event = None
        return event

    def _dispatch_data(self) -> str:
        data = self._data
        text = _decode(data[0] if len(data) == 1 else b"\n".join(data))
        self._data = []
        self._data_size = 0
        self._event = None
        return text


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"server-sent event is not valid UTF-8 (byte {exc.start})") from None
