"""A small HTTP/1.1 server on trio + h11, made for the emulator.

It serves keep-alive connections, fixed-length and chunked (streamed) responses, and can
misbehave on purpose: close mid-body, reset the TCP connection, stall, or drip bytes. While a
response is being written it also watches the socket, so a client that hangs up is noticed at
once (the open-connection count is then exact, not "whenever we next write").
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import ssl
import struct
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import attrs
import h11
import trio

__all__ = ["Connection", "FormField", "RecordedRequest", "ResponseWriter", "serve_connection"]


@attrs.frozen
class FormField:
    """One field of a form body, as :meth:`RecordedRequest.form` found it on the wire.

    Attributes:
        name: The field's name.
        value: Its bytes.
        filename: The part's ``filename`` (file parts only).
        content_type: The part's ``Content-Type`` header, if it had one.
    """

    name: str
    value: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        """The value decoded as UTF-8."""
        return self.value.decode("utf-8")


_PARAM = re.compile(r';\s*([\w*-]+)="((?:[^"\\]|\\.)*)"')
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')


def _parse_multipart(content_type: str, body: bytes) -> list[FormField]:
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise ValueError("multipart body without a boundary")
    delimiter = b"--" + found.group(1).encode("latin-1")
    fields: list[FormField] = []
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ValueError("malformed multipart body (no closing boundary)")
    for chunk in chunks[1:-1]:
        head, sep, value = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep or not value.endswith(b"\r\n"):
            raise ValueError("malformed multipart part")
        headers = {}
        for line in head.decode("utf-8").split("\r\n"):
            name, _, text = line.partition(":")
            headers[name.strip().lower()] = text.strip()
        params = dict(_PARAM.findall(headers.get("content-disposition", "")))
        if "name" not in params:
            raise ValueError("a multipart part without a name")
        fields.append(FormField(params["name"], value[:-2], params.get("filename"), headers.get("content-type")))
    return fields


@attrs.frozen
class RecordedRequest:
    """A request as the emulator received it (for tests to inspect the wire)."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    provider: str = ""
    route: str = ""
    #: ``trio.current_time()`` when the request had been read.
    received_at: float = 0.0

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    def form(self) -> list[FormField]:
        """The fields of a ``multipart/form-data`` or URL-encoded body, in wire order.

        Raises:
            ValueError: The body is not a (well-formed) form.
        """
        content_type = self.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            return _parse_multipart(content_type, self.body)
        if content_type.startswith("application/x-www-form-urlencoded"):
            pairs = parse_qsl(self.body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(self.body))
            return [FormField(name, value.encode()) for name, value in pairs]
        raise ValueError(f"not a form body: content-type {content_type!r}")

    @property
    def url_path_and_query(self) -> str:
        """The raw target, for asserting what the URL carried."""
        if not self.query:
            return self.path
        return f"{self.path}?{urlencode(self.query, doseq=True)}"


class ConnectionAborted(Exception):
    """Raised inside a handler when the response was cut short on purpose (or the peer left)."""


class ResponseWriter:
    """Writes one response; used by route handlers."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self._h11 = connection.h11
        self._stream = connection.stream
        self.started = False
        self.finished = False
        self._gzip: Any = None

    async def _send(self, data: bytes) -> None:
        if data:
            await self._stream.send_all(data)

    async def start(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        *,
        content_length: int | None = None,
        gzip_body: bool = False,
    ) -> None:
        """Send the status line and headers; the body follows (chunked unless a length is given)."""
        await self._send(self._head(status, headers, content_length=content_length, gzip_body=gzip_body))

    def _head(
        self, status: int, headers: Mapping[str, str] | None, *, content_length: int | None, gzip_body: bool
    ) -> bytes:
        pairs = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        pairs.append((b"server", b"trio-llm-emulator"))
        if gzip_body:
            pairs.append((b"content-encoding", b"gzip"))
            self._gzip = zlib.compressobj(wbits=31)
        if content_length is not None:
            pairs.append((b"content-length", str(content_length).encode()))
        self.started = True
        return self._h11.send(h11.Response(status_code=status, headers=pairs))

    async def write(self, data: bytes) -> None:
        """Send body bytes (one chunk)."""
        if self._gzip is not None:
            data = self._gzip.compress(data) + self._gzip.flush(zlib.Z_SYNC_FLUSH)
        if data:
            await self._send(self._h11.send(h11.Data(data=data)))

    async def drip(self, data: bytes, interval: float) -> None:
        """Send body bytes one at a time, ``interval`` seconds apart."""
        for i in range(len(data)):
            await self.write(data[i : i + 1])
            await trio.sleep(interval)

    async def end(self) -> None:
        """Finish the body."""
        if self._gzip is not None:
            tail = self._gzip.flush()
            self._gzip = None
            if tail:
                await self._send(self._h11.send(h11.Data(data=tail)))
        await self._send(self._h11.send(h11.EndOfMessage()))
        self.finished = True

    async def respond(
        self, status: int, body: bytes, headers: Mapping[str, str] | None = None, *, gzip_body: bool = False
    ) -> None:
        """A whole response with a ``Content-Length``, in one write (one segment on the wire,
        as a server that has the whole reply sends it; half the system calls of two)."""
        if gzip_body:
            body = gzip.compress(body)
            headers = {**(headers or {}), "content-encoding": "gzip"}
        head = self._head(status, headers, content_length=len(body), gzip_body=False)
        data = self._h11.send(h11.Data(data=body)) if body else b""
        await self._send(head + data + self._h11.send(h11.EndOfMessage()))
        self.finished = True

    async def abort(self) -> None:
        """Close the connection at once, mid-response: a truncated body."""
        await self._conn.close()
        raise ConnectionAborted("response cut short on purpose")

    async def reset(self) -> None:
        """Reset the TCP connection (RST), mid-response."""
        sock = self._conn.raw_socket()
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self._conn.close()
        raise ConnectionAborted("connection reset on purpose")


#: What writing to or reading from a client that went away raises.
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)

Handler = Callable[["Connection", RecordedRequest, ResponseWriter], Awaitable[None]]


class Connection:
    """One client connection and its h11 state."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER)
        self.closed = False

    def raw_socket(self) -> socket.socket | None:
        stream: Any = self.stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        sock = getattr(stream, "socket", None)
        return sock if isinstance(sock, trio.socket.SocketType) else None  # type: ignore[return-value]

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            with trio.CancelScope(shield=True):
                try:
                    await trio.aclose_forcefully(self.stream)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError):
                    pass  # Already gone: closing is all we wanted.

    async def read_request(self) -> tuple[h11.Request, bytes] | None:
        """The next request and its body, or ``None`` when the client closed the connection."""
        request: h11.Request | None = None
        body: list[bytes] = []
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = await self.stream.receive_some(65536)
                self.h11.receive_data(bytes(data))
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return request, b"".join(body)
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    async def watch_for_hangup(self, scope: trio.CancelScope) -> None:
        """While a response is written: cancel ``scope`` if the client goes away."""
        try:
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                self.h11.receive_data(bytes(data))  # a next request, kept for the next cycle
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError, h11.RemoteProtocolError):
            pass
        self.closed = True
        scope.cancel()


def record(request: h11.Request, body: bytes) -> RecordedRequest:
    target = request.target.decode("latin-1")
    parts = urlsplit(target)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
    return RecordedRequest(
        method=request.method.decode("ascii"),
        path=parts.path,
        query=parse_qs(parts.query, keep_blank_values=True),
        headers=headers,
        body=body,
        received_at=trio.current_time(),
    )


async def serve_connection(
    stream: trio.abc.Stream,
    handler: Handler,
    on_open: Callable[[], None],
    on_close: Callable[[], None],
) -> None:
    """Serve requests on one connection until either side closes it."""
    conn = Connection(stream)
    on_open()
    try:
        while not conn.closed:
            received = await conn.read_request()
            if received is None:
                break
            request = record(*received)
            writer = ResponseWriter(conn)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.watch_for_hangup, nursery.cancel_scope)
                try:
                    await handler(conn, request, writer)
                except ConnectionAborted:
                    pass  # cut short on purpose: the connection is closed
                except _GONE:
                    conn.closed = True  # the client hung up while we were writing
                nursery.cancel_scope.cancel()
            if conn.closed or not writer.finished or conn.h11.our_state is h11.MUST_CLOSE:
                break
            conn.h11.start_next_cycle()
    except (*_GONE, h11.ProtocolError):
        pass  # The client went away or spoke nonsense: that connection is over, the server is not.
    finally:
        on_close()
        await conn.close()
