"""The provider emulator: a real HTTP server on loopback speaking each provider's wire protocol.

Replies are deterministic (the same prompt gets the same answer), chunking and delays are
configurable, and any request can be made to fail in a chosen way with :meth:`Emulator.inject`.
Counters (requests, open connections, OAuth calls) let tests check what went over the wire.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import heapq
import json
import math
import secrets
import ssl
import uuid
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from ._server import RecordedRequest, ResponseWriter, serve_connection

if TYPE_CHECKING:
    import trustme

    from ..providers import AmigoChat, Dynaspark, Gemini, GigaChat, OpenAICompatible, Provider

__all__ = ["Emulator", "Fault", "RouteSet", "generation_delay", "send_event_stream"]


@attrs.frozen(kw_only=True)
class Fault:
    """How the emulator should answer one request instead of (or on top of) the normal reply.

    Stream faults count *events* (SSE frames, JSON-array elements): ``truncate_after=2`` sends
    two events and then closes the connection before the provider's end marker. A reply that is
    not streamed is one event: any ``*_after`` value applies to its body as a whole.

    Attributes:
        status: Answer with this HTTP status and the provider's own error body shape.
        message: The error message to put in that body.
        body: A raw body instead (``str``/``bytes`` as is; anything else JSON-encoded).
        content_type: Override the ``Content-Type`` header.
        headers: Extra response headers.
        retry_after: A ``Retry-After`` header value (seconds or an HTTP date).
        error_code: The provider's own error code in the error body, where it has one (Gemini's
            ``status`` such as ``"FAILED_PRECONDITION"``, OpenAI's ``code`` such as
            ``"insufficient_quota"``).
        delay: Seconds to wait before the response headers.
        truncate_after: Close the connection after this many events, before the end marker.
        truncate_mid_event: With ``truncate_after``: cut in the middle of the next event.
        truncate_cleanly: With ``truncate_after``: end the HTTP response properly instead of
            cutting the connection, so that only the missing end marker (or the half JSON body)
            tells that the reply is incomplete.
        stall_after: After this many events, go silent with the connection open.
        malformed_after: After this many events, send one that is not valid JSON.
        invalid_utf8_after: After this many events, send one with a byte that is never UTF-8.
        error_after: After this many events, send an error object inside the 200 stream.
        error_status: The status code inside that error object.
        reset_after: After this many events, reset the TCP connection.
        drip: Send the body one byte at a time, this many seconds apart.
        gzip: Compress the body (``Content-Encoding: gzip``).
        unknown_fields: Add a field no client knows (holding a new enum value and nested
            values) to every JSON object of the reply, as a provider's next API version might.
            Meant for text replies: tool-call arguments that are JSON objects would get it too.
        huge_event: Reply with one text of this many bytes (``"x"`` repeated), in one event. The
            emulator writes it in 64 KiB pieces, so it holds little of it in memory itself.
        whole_reply: Answer a streamed request with the whole (non-streamed) JSON reply, as a
            server that ignores the request to stream does.
        text: Reply with exactly this text.
        finish_reason: The provider's raw finish reason to report instead of the normal one.
        block_reason: Gemini: block the prompt (``promptFeedback.blockReason``, no candidates).
        chunk_delay: Seconds between events, instead of the emulator's setting.
    """

    status: int | None = None
    message: str | None = None
    body: Any = None
    content_type: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    retry_after: str | None = None
    error_code: str | None = None
    delay: float = 0.0
    truncate_after: int | None = None
    truncate_mid_event: bool = False
    truncate_cleanly: bool = False
    stall_after: int | None = None
    malformed_after: int | None = None
    invalid_utf8_after: int | None = None
    error_after: int | None = None
    error_status: int = 500
    reset_after: int | None = None
    drip: float | None = None
    gzip: bool = False
    unknown_fields: bool = False
    huge_event: int | None = None
    whole_reply: bool = False
    text: str | None = None
    finish_reason: str | None = None
    block_reason: str | None = None
    chunk_delay: float | None = None


_NO_FAULT = Fault()
_COALESCE = 16 * 1024
#: Stands for the text of a ``huge_event`` while a reply is planned; replaced on the wire.
HUGE_MARKER = "@@trio-llm-emulator-huge-event@@"
_HUGE_PIECE = 64 * 1024
#: What ``unknown_fields`` adds to every JSON object: a new enum value, nested and odd values.
_UNKNOWN_FIELD = b'"x_trio_llm_unknown":{"kind":"A_VALUE_FROM_THE_FUTURE","nested":[1,2.5,null,true,{"deep":[]}]}'


class RouteSet(Protocol):
    """One provider's routes, mounted below ``prefix``."""

    name: str
    prefix: str
    tls: bool

    def urls(self, origin: str) -> dict[str, str]:
        """The ``url_for`` names this provider answers, given ``scheme://host:port``."""
        ...

    async def handle(self, emu: Emulator, request: RecordedRequest, writer: ResponseWriter, path: str) -> None:
        """Answer ``request`` (``path`` is below the prefix)."""
        ...


def _default_routes() -> list[RouteSet]:
    from ._amigochat import AmigoChatRoutes
    from ._dynaspark import DynasparkRoutes
    from ._gemini import GeminiRoutes
    from ._gigachat import GigaChatRoutes
    from ._openai import OpenAIRoutes

    return [GeminiRoutes(), GigaChatRoutes(), DynasparkRoutes(), AmigoChatRoutes(), OpenAIRoutes()]


def _random_credentials() -> str:
    """A GigaChat authorization key: base64 of ``client_id:client_secret``."""
    return base64.b64encode(f"{uuid.uuid4()}:{uuid.uuid4()}".encode()).decode("ascii")


@attrs.define(kw_only=True)
class Emulator:
    """A local, wire-faithful stand-in for every provider.

    Example::

        async with trio_llm.testing.Emulator() as emu:
            async with emu.gemini() as gemini:
                reply = await gemini.complete("Hello")

    Args:
        host: The address to listen on (loopback).
        port: The plain HTTP port (0 picks a free one).
        tls_port: The HTTPS port (0 picks a free one): GigaChat, which is served only over TLS,
            and every provider at ``url_for(name, tls=True)``.
        words: Words in a default reply.
        words_per_chunk: Words per streamed event.
        chunk_delay: Seconds between streamed events.
        first_chunk_delay: Seconds before the first streamed event.
        models_page_size: The most models per page of a model list (small, so that clients'
            pagination is exercised).
        token_lifetime: Seconds (of trio's clock) an OAuth access token is accepted for.
        tick: When set, waits between streamed events end on a multiple of this many seconds
            (rounded up), so that streams waiting at the same time share one timer: a trio
            timer costs ~25 us of CPU, waking a waiting stream ~5. ``trio-llm emulate --tick
            0.001`` serves the benchmarks' 1,000 streams at once this way.
    """

    host: str = "127.0.0.1"
    port: int = 0
    tls_port: int = 0
    words: int = 40
    words_per_chunk: int = 4
    chunk_delay: float = 0.0
    first_chunk_delay: float = 0.0
    models_page_size: int = 4
    token_lifetime: float = 1800.0
    tick: float = 0.0
    #: The API key the emulator accepts; a wrong one gets the provider's real error body.
    api_key: str = attrs.field(factory=lambda: "emu-" + secrets.token_urlsafe(18), repr=False)
    #: The GigaChat authorization key (base64 of ``client_id:client_secret``) it accepts.
    credentials: str = attrs.field(factory=_random_credentials, repr=False)

    requests: int = attrs.field(default=0, init=False)
    request_counts: Counter[str] = attrs.field(factory=Counter, init=False)
    open_connections: int = attrs.field(default=0, init=False)
    peak_connections: int = attrs.field(default=0, init=False)
    received: list[RecordedRequest] = attrs.field(factory=list, init=False, repr=False)

    _routes: list[RouteSet] = attrs.field(factory=_default_routes, init=False, repr=False)
    _faults: dict[str, deque[Fault]] = attrs.field(factory=dict, init=False, repr=False)
    _changed: trio.Event = attrs.field(factory=trio.Event, init=False, repr=False)
    _stack: contextlib.AsyncExitStack | None = attrs.field(default=None, init=False, repr=False)
    _ca: trustme.CA | None = attrs.field(default=None, init=False, repr=False)
    _bound_port: int | None = attrs.field(default=None, init=False)
    _bound_tls_port: int | None = attrs.field(default=None, init=False)
    _ticker: _Ticker | None = attrs.field(default=None, init=False, repr=False)

    # -- lifetime ----------------------------------------------------------------------------

    async def __aenter__(self) -> Emulator:
        if self._stack is not None:
            raise RuntimeError("the emulator is already running")
        stack = contextlib.AsyncExitStack()
        started = False
        try:
            nursery = await stack.enter_async_context(trio.open_nursery())
            stack.callback(nursery.cancel_scope.cancel)
            if self.tick > 0:
                self._ticker = _Ticker(self.tick)
                nursery.start_soon(self._ticker.run)
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, self._serve_plain, self.port, host=self.host)
            )
            self._bound_port = listeners[0].socket.getsockname()[1]
            if self._routes:
                serve_tls = functools.partial(
                    trio.serve_ssl_over_tcp, self._serve_tls, self.tls_port, self._server_ssl_context(), host=self.host
                )
                tls_listeners = await nursery.start(serve_tls)
                self._bound_tls_port = tls_listeners[0].transport_listener.socket.getsockname()[1]
            started = True
        finally:
            if not started:  # failed or cancelled while starting: stop what was started
                await stack.aclose()
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def serve_forever(self) -> None:
        """Run until cancelled (what ``trio-llm emulate`` does)."""
        async with self:
            await trio.sleep_forever()

    # -- addresses ---------------------------------------------------------------------------

    def providers(self) -> list[str]:
        """The names of the providers this emulator serves, e.g. ``["gemini", ...]``."""
        return [route.name for route in self._routes]

    def url_for(self, name: str, *, tls: bool = False) -> str:
        """The ``base_url`` to give a provider: ``"gemini"``, ``"gigachat"``, ``"gigachat-auth"``,
        ``"dynaspark"``, ``"amigochat"`` or ``"openai"`` (the ones this emulator serves).

        With ``tls=True``, the address on the emulator's HTTPS listener, which serves every
        provider (GigaChat, like the real service, only there): to test TLS with any of them.
        """
        urls = self.urls(tls=tls)
        try:
            return urls[name]
        except KeyError:
            raise KeyError(f"the emulator serves no {name!r}; it serves {', '.join(sorted(urls))}") from None

    def urls(self, *, tls: bool = False) -> dict[str, str]:
        """Every ``url_for`` name and its URL (on the HTTPS listener with ``tls=True``)."""
        if self._bound_port is None:
            raise RuntimeError("the emulator is not running: use 'async with Emulator() as emu'")
        out: dict[str, str] = {}
        for route in self._routes:
            if route.tls or tls:
                origin = f"https://{self.host}:{self._bound_tls_port}"
            else:
                origin = f"http://{self.host}:{self._bound_port}"
            out.update(route.urls(origin + route.prefix))
        return out

    @property
    def ca_pem(self) -> bytes:
        """The PEM of the CA that the emulator's TLS certificates chain to."""
        return self._certificate_authority().cert_pem.bytes()

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the emulator's CA (and nothing else)."""
        # Not create_default_context(): that also loads the system's CAs (~20 ms a context).
        # PROTOCOL_TLS_CLIENT verifies certificates and host names all the same.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._certificate_authority().configure_trust(context)
        return context

    def _certificate_authority(self) -> trustme.CA:
        if self._ca is None:
            import trustme

            self._ca = trustme.CA(organization_name="trio-llm emulator")
        return self._ca

    def _server_ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._certificate_authority().issue_cert(self.host, "localhost").configure_cert(context)
        return context

    # -- providers configured for this emulator ------------------------------------------------

    def provider(self, name: str, **kwargs: Any) -> Provider:
        """The provider called ``name`` (``"gemini"``, ...) configured for this emulator."""
        factory = getattr(self, name.replace("-", "_"), None)
        if name not in self.urls() or factory is None:
            raise KeyError(f"the emulator serves no provider {name!r}")
        provider: Provider = factory(**kwargs)
        return provider

    def gemini(self, **kwargs: Any) -> Gemini:
        """A :class:`~trio_llm.Gemini` pointed at this emulator, with its key."""
        from ..providers import Gemini

        kwargs.setdefault("base_url", self.url_for("gemini"))
        kwargs.setdefault("api_key", self.api_key)
        return Gemini(**kwargs)

    def gigachat(self, **kwargs: Any) -> GigaChat:
        """A :class:`~trio_llm.GigaChat` pointed at this emulator, with its credentials, trusting
        its CA (``ssl_context=``, unless you pass ``ca_file=`` or ``http_client=``)."""
        from ..providers import GigaChat

        kwargs.setdefault("base_url", self.url_for("gigachat"))
        kwargs.setdefault("auth_url", self.url_for("gigachat-auth"))
        kwargs.setdefault("credentials", self.credentials)
        if not {"ca_file", "http_client", "ssl_context"} & kwargs.keys():
            kwargs["ssl_context"] = self.client_ssl_context()
        return GigaChat(**kwargs)

    def dynaspark(self, **kwargs: Any) -> Dynaspark:
        """A :class:`~trio_llm.Dynaspark` pointed at this emulator."""
        from ..providers import Dynaspark

        kwargs.setdefault("base_url", self.url_for("dynaspark"))
        return Dynaspark(**kwargs)

    def amigochat(self, **kwargs: Any) -> AmigoChat:
        """An :class:`~trio_llm.AmigoChat` pointed at this emulator."""
        from ..providers import AmigoChat

        kwargs.setdefault("base_url", self.url_for("amigochat"))
        return AmigoChat(**kwargs)

    def openai(self, **kwargs: Any) -> OpenAICompatible:
        """An :class:`~trio_llm.OpenAICompatible` pointed at this emulator's OpenAI API, with its key."""
        from ..providers import OpenAICompatible

        kwargs.setdefault("base_url", self.url_for("openai"))
        kwargs.setdefault("api_key", self.api_key)
        return OpenAICompatible(**kwargs)

    # -- faults and counters -----------------------------------------------------------------

    def inject(self, provider: str, fault: Fault, *, times: int = 1, route: str = "chat") -> None:
        """Make the next ``times`` requests to ``provider``'s ``route`` answer with ``fault``.

        ``route`` is ``"chat"`` (generation, streamed or not), ``"models"`` or ``"oauth"``
        (AmigoChat's image generation: ``"images"``).
        Faults queue up: each request takes the next one.
        """
        queue = self._faults.setdefault(f"{provider}.{route}", deque())
        queue.extend([fault] * times)

    def clear_faults(self) -> None:
        """Forget every injected fault not yet used."""
        self._faults.clear()

    def take_fault(self, provider: str, route: str) -> Fault:
        """The next fault for a request (routes call this); the no-op fault if none."""
        queue = self._faults.get(f"{provider}.{route}")
        if not queue:
            return _NO_FAULT
        fault = queue.popleft()
        if fault.huge_event is not None and fault.text is None:
            # The routes plan the reply with this text; the writers put the huge one in its place.
            fault = attrs.evolve(fault, text=HUGE_MARKER)
        return fault

    def count(self, provider: str, route: str) -> int:
        """How many requests ``provider``'s ``route`` has received."""
        return self.request_counts[f"{provider}.{route}"]

    @property
    def oauth_requests(self) -> int:
        """How many token requests (``"oauth"`` routes) the emulator has received."""
        return sum(n for key, n in self.request_counts.items() if key.endswith(".oauth"))

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far: the next request with one gets a 401."""
        for route in self._routes:
            revoke = getattr(route, "revoke_tokens", None)
            if revoke is not None:
                revoke()

    def requests_for(self, provider: str, route: str | None = None) -> list[RecordedRequest]:
        """The recorded requests to ``provider`` (optionally one route), oldest first."""
        return [r for r in self.received if r.provider == provider and (route is None or r.route == route)]

    async def wait_for_connections(self, count: int = 0) -> None:
        """Wait until exactly ``count`` connections are open.

        Bound the wait with your own scope: ``with trio.fail_after(5): await emu.wait_for_connections(0)``.
        """
        while self.open_connections != count:
            await self._changed.wait()
        await trio.lowlevel.checkpoint()

    async def sleep(self, seconds: float) -> None:
        """``trio.sleep(seconds)``; with ``tick`` set, until the next multiple of it at or after."""
        if self._ticker is None or seconds <= 0:
            await trio.sleep(seconds)
        else:
            await self._ticker.sleep(seconds)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _opened(self) -> None:
        self.open_connections += 1
        self.peak_connections = max(self.peak_connections, self.open_connections)
        self._notify()

    def _closed(self) -> None:
        self.open_connections -= 1
        self._notify()

    # -- serving -----------------------------------------------------------------------------

    async def _serve_plain(self, stream: trio.abc.Stream) -> None:
        await serve_connection(stream, self._dispatch_plain, self._opened, self._closed)

    async def _serve_tls(self, stream: trio.abc.Stream) -> None:
        await serve_connection(stream, self._dispatch_tls, self._opened, self._closed)

    async def _dispatch_plain(self, conn: Any, request: RecordedRequest, writer: ResponseWriter) -> None:
        await self._dispatch(request, writer, tls=False)

    async def _dispatch_tls(self, conn: Any, request: RecordedRequest, writer: ResponseWriter) -> None:
        await self._dispatch(request, writer, tls=True)

    async def _dispatch(self, request: RecordedRequest, writer: ResponseWriter, *, tls: bool) -> None:
        self.requests += 1
        for route in self._routes:
            served = tls or not route.tls  # the HTTPS listener serves every provider
            if served and (request.path == route.prefix or request.path.startswith(route.prefix + "/")):
                await route.handle(self, request, writer, request.path[len(route.prefix) :])
                return
        self.received.append(request)
        await send_json(writer, 404, {"error": f"no route for {request.method} {request.path}"})

    def record(self, request: RecordedRequest, provider: str, route: str) -> None:
        """Count and keep ``request`` as a request to ``provider``'s ``route``."""
        self.request_counts[f"{provider}.{route}"] += 1
        self.received.append(attrs.evolve(request, provider=provider, route=route))


class _Ticker:
    """One timer for every wait that ends on the same tick: the others park until it fires."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self.lots: dict[int, trio.lowlevel.ParkingLot] = {}
        self.due: list[int] = []  # a heap of the ticks someone waits for
        self.changed = trio.Event()

    async def sleep(self, seconds: float) -> None:
        tick = round((trio.current_time() + seconds) / self.tick)
        lot = self.lots.get(tick)
        if lot is None:
            lot = self.lots[tick] = trio.lowlevel.ParkingLot()
            heapq.heappush(self.due, tick)
            if self.due[0] == tick:
                self.changed.set()  # sooner than the timer that runs: set it again
        await lot.park()

    async def run(self) -> None:
        while True:
            with trio.move_on_at(self.due[0] * self.tick if self.due else math.inf):
                await self.changed.wait()
            self.changed = trio.Event()
            now = trio.current_time()
            while self.due and self.due[0] * self.tick <= now:
                self.lots.pop(heapq.heappop(self.due)).unpark_all()


# -- writing helpers shared by the provider routes ---------------------------------------------


async def generation_delay(emu: Emulator, events: int, fault: Fault) -> None:
    """Wait as long as streaming ``events`` events would take: a whole (non-streamed) reply
    arrives when the model would have finished it."""
    gap = emu.chunk_delay if fault.chunk_delay is None else fault.chunk_delay
    total = emu.first_chunk_delay + gap * max(events - 1, 0)
    if total:
        await trio.sleep(total)


def with_unknown_fields(data: bytes) -> bytes:
    """``data`` with a field no client knows added to every JSON object in it (strings are
    left alone, so the text of a reply is unchanged)."""
    out = bytearray()
    in_string = escaped = False
    size = len(data)
    for index, byte in enumerate(data):
        out.append(byte)
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x7B:  # "{": the new field goes first, so it is seen before the known ones
            following = index + 1
            while following < size and data[following] in b" \t\r\n":
                following += 1
            empty = following < size and data[following] == 0x7D
            out += _UNKNOWN_FIELD if empty else _UNKNOWN_FIELD + b","
    return bytes(out)


def with_invalid_utf8(data: bytes) -> bytes:
    """``data`` with the byte 0xFF (never valid UTF-8) inside its last JSON string."""
    at = data.rfind(b'"')
    if at == -1:
        at = len(data.rstrip(b"\r\n"))
    return data[:at] + b"\xff" + data[at:]


def _malformed_body(body: bytes) -> bytes:
    """A JSON body that no longer parses: a stray comma after its first character."""
    return body[:1] + b"," + body[1:]


def _huge_size(data: bytes, fault: Fault) -> int | None:
    """The number of bytes ``data`` stands for, if it carries the ``huge_event`` marker."""
    if fault.huge_event is None or HUGE_MARKER.encode() not in data:
        return None
    return len(data) - len(HUGE_MARKER) + fault.huge_event


async def _write_huge(write: Any, data: bytes, size: int) -> None:
    """Write ``data`` with the (first) marker replaced by ``size`` bytes of ``x``, in 64 KiB
    pieces."""
    await trio.lowlevel.checkpoint()  # (a write of nothing is none)
    prefix, _, suffix = data.partition(HUGE_MARKER.encode())
    await write(prefix)
    piece = b"x" * _HUGE_PIECE
    whole, rest = divmod(size, _HUGE_PIECE)
    for _ in range(whole):
        await write(piece)
    if rest:
        await write(piece[:rest])
    await write(suffix)


async def send_json(
    writer: ResponseWriter,
    status: int,
    payload: Any,
    *,
    headers: Mapping[str, str] | None = None,
    fault: Fault = _NO_FAULT,
    error: Any = None,
) -> None:
    """A whole JSON response (``payload``, or bytes as they are), misbehaving as ``fault`` says.

    The body counts as one event. ``error_after`` (any value) replaces it with ``error``, the
    provider's error object, under the same status; ``malformed_after`` and
    ``invalid_utf8_after`` corrupt it; ``truncate_after`` cuts it halfway (closing the
    connection, or ending the response there with ``truncate_cleanly``); ``reset_after`` resets
    the connection halfway; ``stall_after`` sends the headers and then nothing; ``drip`` sends
    it byte by byte. ``delay``, ``headers``, ``content_type``, ``retry_after``, ``gzip``,
    ``unknown_fields`` and ``huge_event`` apply as for a stream.
    """
    if fault.delay:
        await trio.sleep(fault.delay)
    if fault.error_after is not None and error is not None:
        payload = error
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    merged = {
        "content-type": fault.content_type or "application/json; charset=UTF-8",
        **(headers or {}),
        **fault.headers,
    }
    if fault.retry_after is not None:
        merged["retry-after"] = fault.retry_after
    if fault.unknown_fields:
        body = with_unknown_fields(body)
    if fault.malformed_after is not None:
        body = _malformed_body(body)
    if fault.invalid_utf8_after is not None:
        body = with_invalid_utf8(body)
    huge = _huge_size(body, fault)
    if huge is not None:
        await writer.start(status, merged, content_length=huge)
        await _write_huge(writer.write, body, fault.huge_event or 0)
        await writer.end()
        return
    cut = fault.truncate_after is not None or fault.reset_after is not None
    if not cut and fault.stall_after is None and fault.drip is None:
        await writer.respond(status, body, merged, gzip_body=fault.gzip)
        return
    if fault.gzip:
        body = gzip.compress(body)
        merged["content-encoding"] = "gzip"
    half = body[: len(body) // 2]
    clean_cut = cut and fault.truncate_cleanly and fault.reset_after is None
    await writer.start(status, merged, content_length=len(half) if clean_cut else len(body))
    if fault.stall_after is not None:
        await trio.sleep_forever()
    sent = half if cut else body
    if fault.drip is not None:
        await writer.drip(sent, fault.drip)
    else:
        await writer.write(sent)
    if fault.reset_after is not None:
        await writer.reset()
    if cut and not clean_cut:
        await writer.abort()
    await writer.end()


async def send_raw_fault_body(writer: ResponseWriter, status: int, fault: Fault) -> None:
    """The fault's own ``body`` (str/bytes as is, else JSON)."""
    body = fault.body
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode()
    content_type = fault.content_type or ("text/html" if body.lstrip()[:1] == b"<" else "application/json")
    await send_json(
        writer,
        status,
        body,
        headers={"content-type": content_type},
        fault=attrs.evolve(fault, content_type=content_type),
    )


async def send_event_stream(
    emu: Emulator,
    writer: ResponseWriter,
    frames: Sequence[bytes],
    *,
    fault: Fault,
    content_type: str,
    malformed: bytes,
    error_frame: bytes,
    head: bytes = b"",
    separator: bytes = b"",
    tail: bytes = b"",
    complete_frames: int | None = None,
) -> None:
    """Stream ``frames`` (already framed: SSE events, JSON-array elements), applying faults.

    ``head``/``separator``/``tail`` frame JSON arrays; ``complete_frames`` is how many frames
    make the stream complete (truncation sends fewer, and never the ``tail``).
    """
    if fault.delay:
        await trio.sleep(fault.delay)
    headers = {"content-type": fault.content_type or content_type, "cache-control": "no-cache", **fault.headers}
    await writer.start(200, headers, gzip_body=fault.gzip)
    if fault.unknown_fields:
        frames = [with_unknown_fields(frame) for frame in frames]
        error_frame = with_unknown_fields(error_frame)
    total = len(frames) if complete_frames is None else complete_frames
    truncate_at = fault.truncate_after
    if truncate_at is not None:
        truncate_at = min(truncate_at, max(total - 1, 0))
    gap = emu.chunk_delay if fault.chunk_delay is None else fault.chunk_delay

    async def send(data: bytes) -> None:
        if fault.huge_event is not None and HUGE_MARKER.encode() in data:
            await _write_huge(writer.write, data, fault.huge_event)
        elif fault.drip is not None:
            await writer.drip(data, fault.drip)
        else:
            await writer.write(data)

    per_event = (
        fault.truncate_after,
        fault.stall_after,
        fault.reset_after,
        fault.malformed_after,
        fault.invalid_utf8_after,
        fault.error_after,
        fault.huge_event,
    )
    plain = gap == 0 and emu.first_chunk_delay == 0 and fault.drip is None and all(n is None for n in per_event)
    if plain:
        # Nothing depends on event timing: write in large pieces, as a fast server's TCP
        # stream would arrive, so that benchmarks measure the client and not this server.
        batch = [head]
        size = len(head)
        for index, frame in enumerate(frames):
            piece = (separator if index else b"") + frame
            batch.append(piece)
            size += len(piece)
            if size >= _COALESCE:
                await writer.write(b"".join(batch))
                batch, size = [], 0
        batch.append(tail)
        await writer.write(b"".join(batch))
        await writer.end()
        return
    if head:
        await send(head)
    for index, frame in enumerate(frames):
        lead = separator if index else b""
        if index == truncate_at:
            if fault.truncate_mid_event:
                await send(lead + frame[: max(1, len(frame) // 2)])
            if fault.truncate_cleanly:
                await writer.end()
                return
            await writer.abort()
        if index == fault.stall_after:
            await trio.sleep_forever()
        if index == fault.reset_after:
            await writer.reset()
        if index == fault.malformed_after:
            await send(lead + malformed)
            await writer.end()
            return
        if index == fault.invalid_utf8_after:
            await send(lead + with_invalid_utf8(frame))
            await writer.end()
            return
        if index == fault.error_after:
            await send(lead + error_frame)
            await writer.end()
            return
        delay = emu.first_chunk_delay if index == 0 else gap
        if delay:
            await emu.sleep(delay)
        await send(lead + frame)
    if fault.stall_after is not None and fault.stall_after >= len(frames):
        await trio.sleep_forever()
    if tail:
        await send(tail)
    await writer.end()
