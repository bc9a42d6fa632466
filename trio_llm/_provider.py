"""What every provider shares: construction, the client's lifetime, ``stream``/``complete``.

A provider module only describes its wire: how a :class:`ChatRequest` becomes an
:class:`~trio_llm._http.HTTPCall`, how the response decodes into events, how error bodies map
to the error tree. This module and :mod:`trio_llm._stream` do all the I/O.
"""

from __future__ import annotations

import contextlib
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar, overload

import attrs
import httpx
import trio

from ._config import RetryPolicy, Timeouts
from ._decoding import Decoder, loads
from ._errors import (
    APIStatusError,
    ConfigurationError,
    FirstEventTimeout,
    InvalidRequestError,
    ModelNotFoundError,
    TrioLLMError,
)
from ._events import Reply
from ._http import HTTPCall, make_client, status_error, translate_httpx_error
from ._media import MediaList
from ._messages import Message, MessagesInput, Tool, coerce_messages, coerce_tools
from ._stream import EventStream

__all__ = ["ChatRequest", "ClientLease", "ModelList", "Provider"]

P = TypeVar("P", bound="Provider")

#: Requests in flight per httpx client (and so connections in its pool) before an open
#: provider uses another client. httpcore's pool does O(requests x connections) work on every
#: operation, polling each idle connection's socket: 1,000 streams in one pool cost ~20 ms of
#: CPU each; at 128 requests in flight, pools of 32 cost 1.9 ms of CPU per request, pools of 4
#: 0.75 ms and pools of 1 0.56 ms (raw httpx at concurrency 1: 0.6 ms). See docs/benchmarks.md.
POOL_SIZE = 1


@attrs.define
class _Pool:
    client: httpx.AsyncClient
    in_flight: int = 0


@attrs.define
class ClientLease:
    """The client one call uses, and how to give it back (see :meth:`Provider._lease`)."""

    client: httpx.AsyncClient
    _pool: _Pool | None = None
    _owned: bool = False
    _free: list[_Pool] | None = None

    async def release(self) -> None:
        """Give the client back: a pooled one is freed for others, a short-lived one closed."""
        pool = self._pool
        if pool is not None:
            self._pool = None
            pool.in_flight -= 1
            if pool.in_flight == POOL_SIZE - 1 and self._free is not None:
                self._free.append(pool)  # it has room again; the next call takes it first
        if self._owned:
            self._owned = False
            with trio.CancelScope(shield=True):
                await self.client.aclose()
        else:
            await trio.lowlevel.checkpoint()


@attrs.frozen
class ChatRequest:
    """A validated, provider-neutral request. Built by :meth:`Provider.stream`."""

    messages: tuple[Message, ...]
    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()

    def options_as(self, names: Mapping[str, str]) -> dict[str, Any]:
        """The sampling options the caller set (and only those), under the provider's wire
        names, e.g. ``{"max_tokens": "maxOutputTokens"}``; ``stop`` as a list."""
        out: dict[str, Any] = {}
        for field, wire_name in names.items():
            value = getattr(self, field)
            if field == "stop":
                if value:
                    out[wire_name] = list(value)
            elif value is not None:
                out[wire_name] = value
        return out


def _check_options(
    temperature: float | None,
    max_tokens: int | None,
    top_p: float | None,
    top_k: int | None,
    stop: str | Sequence[str] | None,
) -> tuple[str, ...]:
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 2 or math.isnan(temperature)
    ):
        raise InvalidRequestError(f"temperature must be a number from 0 to 2, got {temperature!r}")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise InvalidRequestError(f"max_tokens must be an int >= 1, got {max_tokens!r}")
    if top_p is not None and (not isinstance(top_p, int | float) or not 0 <= top_p <= 1):
        raise InvalidRequestError(f"top_p must be a number from 0 to 1, got {top_p!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise InvalidRequestError(f"top_k must be an int >= 1, got {top_k!r}")
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    if not all(isinstance(s, str) and s for s in stops):
        raise InvalidRequestError("stop must be a non-empty string or a list of them")
    return stops


class _ClassDefault:
    """``Provider.default_model`` on the class is the class's default; on an instance, its own.

    A non-data descriptor: an instance's own value (set by ``__init__``) takes precedence.
    """

    def __init__(self, source: str) -> None:
        self._source = source

    def __get__(self, instance: object, owner: type) -> Any:
        if instance is None:
            return getattr(owner, self._source)
        raise AttributeError(self._source)


class ModelList(Generic[P]):
    """``Provider.models`` on the class is the static model list (a tuple, as in the seeds);
    ``await provider.models()`` on an instance asks the provider (see :meth:`Provider.list_models`).
    """

    @overload
    def __get__(self, instance: None, owner: type[P]) -> tuple[str, ...]: ...

    @overload
    def __get__(self, instance: P, owner: type[P]) -> Callable[[], Awaitable[list[str]]]: ...

    def __get__(self, instance: P | None, owner: type[P]) -> tuple[str, ...] | Callable[[], Awaitable[list[str]]]:
        if instance is None:
            return owner.known_models
        return instance.list_models


@attrs.define(kw_only=True, slots=False)
class Provider:
    """Base class of the providers. Not used directly: see :class:`~trio_llm.Gemini` etc.

    Args:
        base_url: The API root; point it at a proxy or at :class:`trio_llm.testing.Emulator`.
        default_model: The model used when a call names none.
        timeouts: Deadlines per phase.
        retry: When to send a failed request again.
        proxy: An ``http://`` / ``https://`` / ``socks5://`` proxy URL.
        http_client: Your own ``httpx.AsyncClient``, used as is and never closed by trio_llm
            (its own ``timeout``, ``verify`` and ``proxy`` then apply).
    """

    #: Short name used in errors, logs and the command line.
    name: ClassVar[str] = "provider"
    #: The label shown to people.
    label: ClassVar[str] = "Provider"
    default_base_url: ClassVar[str] = ""
    needs_auth: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    supports_vision: ClassVar[bool] = False
    supports_tools: ClassVar[bool] = False
    supports_images_output: ClassVar[bool] = False
    #: The model used when neither the call nor the constructor names one.
    model_default: ClassVar[str] = ""
    #: The static model list (``Provider.models`` on the class).
    known_models: ClassVar[tuple[str, ...]] = ()
    #: Other names for models, resolved before the request is sent.
    model_aliases: ClassVar[Mapping[str, str]] = {}
    #: Whether ``known_models`` is the complete list (unknown names are then refused up front).
    closed_model_list: ClassVar[bool] = False

    models: ClassVar[ModelList[Any]] = ModelList()

    base_url: str = attrs.field(default=attrs.Factory(lambda self: type(self).default_base_url, takes_self=True))
    default_model: str = attrs.field(default=attrs.Factory(lambda self: type(self).model_default, takes_self=True))
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    proxy: str | None = None
    http_client: httpx.AsyncClient | None = attrs.field(default=None, repr=False)

    _pools: list[_Pool] | None = attrs.field(default=None, init=False, repr=False)
    _free_pools: list[_Pool] = attrs.field(factory=list, init=False, repr=False)  # pools with room
    _exit_stack: contextlib.AsyncExitStack | None = attrs.field(default=None, init=False, repr=False)
    _ssl: ssl.SSLContext | None = attrs.field(default=None, init=False, repr=False)
    _plain_ssl: ssl.SSLContext | None = attrs.field(default=None, init=False, repr=False)
    _model_cache: list[str] | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.timeouts, Timeouts):
            raise ConfigurationError(f"timeouts must be a trio_llm.Timeouts, got {type(self.timeouts).__name__}")
        if not isinstance(self.retry, RetryPolicy):
            raise ConfigurationError(f"retry must be a trio_llm.RetryPolicy, got {type(self.retry).__name__}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must be an http:// or https:// URL, got {self.base_url!r}")
        self.base_url = self.base_url.rstrip("/")

    # -- lifetime ----------------------------------------------------------------------------

    async def __aenter__(self: P) -> P:
        if self._exit_stack is not None:
            raise RuntimeError(f"{type(self).__name__} is already open")
        stack = contextlib.AsyncExitStack()
        self._pools = []
        self._free_pools = []
        stack.push_async_callback(self._close_pools)
        self._exit_stack = stack
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._exit_stack = self._exit_stack, None
        if stack is not None:
            with trio.CancelScope(shield=True):
                await stack.aclose()

    async def _close_pools(self) -> None:
        pools, self._pools = self._pools or [], None
        self._free_pools = []
        for pool in pools:
            await pool.client.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        if self.base_url.startswith("https:") or self.proxy:
            verify = self._ssl_context()
        else:
            # Plain HTTP never handshakes, and httpx would otherwise load the whole CA bundle
            # (~20 ms) for every client. This context verifies as strictly as any (it trusts
            # no CA at all), so nothing is ever accepted unverified. One per provider: each
            # costs ~25 KiB and ~0.1 ms, and an open provider makes a client per pool.
            if self._plain_ssl is None:
                self._plain_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            verify = self._plain_ssl
        return make_client(connect_timeout=self.timeouts.connect, proxy=self.proxy, verify=verify)

    def _ssl_context(self) -> ssl.SSLContext:
        """The TLS context, built once per provider (building one costs milliseconds)."""
        if self._ssl is None:
            self._ssl = self._build_ssl_context()
        return self._ssl

    def _build_ssl_context(self) -> ssl.SSLContext:
        return httpx.create_ssl_context()

    def _trust_hint(self) -> str:
        """Said in a certificate error: which CAs were trusted and how to add one."""
        return "The system's public root CAs were trusted; pass http_client= with your own verify= to change that."

    def _lease(self) -> ClientLease:
        """A client for one call: yours (``http_client=``); one of the open provider's pools
        (the one freed last, whose keep-alive connection is the most likely to be reused;
        O(1) however many there are); or, outside ``async with provider``, a short-lived
        client closed when the call ends."""
        if self.http_client is not None:
            return ClientLease(self.http_client)
        if self._pools is None:
            return ClientLease(self._new_client(), owned=True)
        free = self._free_pools
        if not free:
            new = _Pool(self._new_client())
            self._pools.append(new)
            free.append(new)
        pool = free[-1]
        pool.in_flight += 1
        if pool.in_flight == POOL_SIZE:
            free.pop()
        return ClientLease(pool.client, pool, free=free)

    @contextlib.asynccontextmanager
    async def _client_for_call(self) -> AsyncIterator[httpx.AsyncClient]:
        lease = self._lease()
        try:
            yield lease.client
        finally:
            await lease.release()

    # -- requests ----------------------------------------------------------------------------

    def resolve_model(self, model: str | None) -> str:
        """The model a call will use: the default if ``None``, aliases resolved.

        Raises:
            ModelNotFoundError: For a provider with a closed model list, an unknown name.
        """
        if model is None or model == "":
            model = self.default_model
        if not isinstance(model, str):
            raise InvalidRequestError(f"model must be a string, got {type(model).__name__}")
        model = self.model_aliases.get(model, model)
        if self.closed_model_list and model not in self.known_models:
            raise ModelNotFoundError(
                f"unknown model {model!r}; known models: {', '.join(self.known_models)}",
                status_code=404,
                provider=self.name,
            )
        return model

    def _make_request(
        self,
        messages: MessagesInput,
        *,
        model: str | None,
        temperature: float | None,
        max_tokens: int | None,
        top_p: float | None,
        top_k: int | None,
        stop: str | Sequence[str] | None,
        tools: Sequence[Tool | Mapping[str, Any]] | None,
        media: MediaList | None,
    ) -> ChatRequest:
        stops = _check_options(temperature, max_tokens, top_p, top_k, stop)
        request = ChatRequest(
            messages=coerce_messages(messages, media),
            model=self.resolve_model(model),
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            top_k=top_k,
            stop=stops,
            tools=coerce_tools(tools),
        )
        self._check_request(request)
        return request

    def _check_request(self, request: ChatRequest) -> None:
        """Refuse what this provider cannot do, before any I/O."""
        if request.tools and not self.supports_tools:
            raise InvalidRequestError(f"{self.label} does not support tools", provider=self.name)
        if not self.supports_vision and any(m.images for m in request.messages):
            raise InvalidRequestError(f"{self.label} does not accept images", provider=self.name)

    def stream(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        stop: str | Sequence[str] | None = None,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        media: MediaList | None = None,
    ) -> EventStream:
        """Stream the answer as typed events.

        Use it as ``async with provider.stream(messages) as events: async for event in events``.
        Leaving the block — normally, by ``break``, by an exception or by cancellation — closes
        the HTTP response at once.

        Args:
            messages: A ``str`` (one user message), :class:`~trio_llm.Message` objects, or
                OpenAI-style dicts.
            model: The model; the provider's default if omitted. Aliases are resolved.
            temperature: Sampling temperature, 0 to 2.
            max_tokens: The most tokens to generate.
            top_p: Nucleus sampling, 0 to 1.
            top_k: Top-k sampling (where the provider supports it).
            stop: Stop sequence(s).
            tools: :class:`~trio_llm.Tool` objects (or OpenAI-style tool dicts).
            media: The seeds' ``[(bytes | path | data URI, filename), ...]`` images, attached to
                the last user message.

        Raises:
            InvalidRequestError: At once, for bad messages or options (before any I/O).
        """
        request = self._make_request(
            messages,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            top_k=top_k,
            stop=stop,
            tools=tools,
            media=media,
        )
        return EventStream(self, request, streaming=True)

    async def complete(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        stop: str | Sequence[str] | None = None,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        media: MediaList | None = None,
    ) -> Reply:
        """The whole answer in one :class:`~trio_llm.Reply` (a non-streamed request).

        Takes the same arguments as :meth:`stream`.
        """
        request = self._make_request(
            messages,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            top_k=top_k,
            stop=stop,
            tools=tools,
            media=media,
        )
        async with EventStream(self, request, streaming=self._complete_streams()) as events:
            return await events.collect()

    def _complete_streams(self) -> bool:
        """Whether :meth:`complete` uses the streaming endpoint (where no other exists)."""
        return False

    async def list_models(self) -> list[str]:
        """The models the provider serves (``await provider.models()``), cached per instance."""
        if self._model_cache is not None:
            await trio.lowlevel.checkpoint()
            return list(self._model_cache)
        models = await self._fetch_models()
        self._model_cache = models
        return list(models)

    async def _fetch_models(self) -> list[str]:
        await trio.lowlevel.checkpoint()
        return list(self.known_models)

    async def _get_json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        """A GET whose JSON reply is returned, with the provider's error mapping; no retries
        (except one at once with fresh credentials, when :meth:`_should_refresh_auth` says so)."""
        refreshed = False
        while True:
            async with self._client_for_call() as client:
                headers = await self._auth_headers(client)
                timeout = self.timeouts.first_event
                with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
                    try:
                        response = await client.get(url, params=params, headers=headers)
                    except (httpx.HTTPError, OSError) as exc:
                        raise translate_httpx_error(
                            exc,
                            provider=self.name,
                            connect_timeout=self.timeouts.connect,
                            trust_hint=self._trust_hint(),
                        ) from exc
            if scope.cancelled_caught:
                raise FirstEventTimeout(f"no reply within {timeout} s", provider=self.name, timeout=timeout or 0.0)
            if response.status_code < 300:
                return loads(response.content, self.name)
            error = self._status_error(response.status_code, response.headers, response.content)
            if refreshed or not self._should_refresh_auth(error):
                raise error
            refreshed = True
            self._auth_rejected(headers)

    # -- what a provider module provides -------------------------------------------------------

    def _http_call(self, request: ChatRequest, *, streaming: bool) -> HTTPCall:
        raise NotImplementedError

    def _decoder(self, request: ChatRequest, *, streaming: bool) -> Decoder:
        raise NotImplementedError

    async def _auth_headers(self, client: httpx.AsyncClient) -> Mapping[str, str]:
        """Headers that authenticate one attempt (a token may be fetched here)."""
        await trio.lowlevel.checkpoint()
        return {}

    def _should_refresh_auth(self, error: TrioLLMError) -> bool:
        """Whether ``error`` means "get new credentials and try once more"."""
        return False

    def _auth_rejected(self, auth: Mapping[str, str]) -> None:
        """The server refused the attempt that carried the headers ``auth`` (and
        :meth:`_should_refresh_auth` said to retry): forget those credentials if they are still
        the cached ones, so that the retry's :meth:`_auth_headers` gets new ones. A credential
        refreshed meanwhile by another call is kept."""

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
        return status_error(status, headers, body, provider=self.name)


# After attrs has built the class (it clears field defaults off the class), so that
# ``Gemini.default_model`` reads the class default, as the seeds' class-level flag did.
setattr(Provider, "default_model", _ClassDefault("model_default"))  # noqa: B010
