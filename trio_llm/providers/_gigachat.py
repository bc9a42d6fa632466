"""Sber GigaChat: OAuth access tokens, the Russian Trusted Root CA, and GigaChat's dialect of
chat completions.

Reads top to bottom: constants; credentials, scope and TLS; access tokens (sans-IO); request
building; errors; the provider class. Replies are decoded by the shared chat-completions core
(:mod:`trio_llm._chat_completions`) with GigaChat's finish reasons; nothing is decoded here.

The access token is cached on the provider instance (never in a module global), fetched by
one caller at a time under a :class:`trio.Lock`, and shared by every caller waiting for it.
"""

from __future__ import annotations

import base64
import binascii
import importlib.resources
import json
import logging
import math
import os
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import httpx
import trio

from .._chat_completions import ChatCompletionsInterpreter
from .._decoding import BodyDecoder, Decoder, SSEStreamDecoder, loads
from .._errors import (
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    FirstEventTimeout,
    InvalidRequestError,
    MissingAuthError,
    ModelNotFoundError,
    ProtocolError,
    TrioLLMError,
)
from .._events import FinishReason
from .._http import HTTPCall, make_client, parse_error_body, status_error, translate_httpx_error
from .._messages import Message, Tool
from .._provider import ChatRequest, Provider

__all__ = ["GigaChat"]

logger = logging.getLogger("trio_llm")

# -- constants ---------------------------------------------------------------------------------

BASE_URL = "https://gigachat.devices.sberbank.ru/api/v1"
AUTH_URL = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
DEFAULT_MODEL = "GigaChat"
#: The seeds' model list: ``GigaChat.models`` on the class, and what ``models()`` returns
#: when there are no credentials to ask the service with.
FALLBACK_MODELS = ("GigaChat-2", "GigaChat-2-Pro", "GigaChat-2-Max", "GigaChat", "GigaChat-Pro", "GigaChat-Max")
#: Names the seeds used at one time or another.
MODEL_ALIASES = {"gigachat": "GigaChat", "GigaChat:latest": "GigaChat"}
SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")
DEFAULT_SCOPE = "GIGACHAT_API_PERS"
#: A token is refreshed when less than this many seconds of its life remain.
REFRESH_MARGIN = 60.0
#: The bundled "Russian Trusted Root CA" (package data).
CA_RESOURCE = "data/russian_trusted_root_ca.pem"

FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "function_call": FinishReason.TOOL_CALLS,
    "blacklist": FinishReason.CONTENT_FILTER,
    "error": FinishReason.ERROR,
}

# -- credentials, scope and TLS ----------------------------------------------------------------


def _credentials(value: str | None) -> str | None:
    """The authorization key, from the argument or ``GIGACHAT_CREDENTIALS``, checked to be base64.

    Error messages never quote the value.
    """
    if value is None:
        value = os.environ.get("GIGACHAT_CREDENTIALS")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"credentials must be a str, got {type(value).__name__}", provider="gigachat")
    value = value.strip()
    if not value:
        return None
    if value[:6].lower() == "basic ":
        raise ConfigurationError("credentials: pass the authorization key alone, without 'Basic '", provider="gigachat")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        hint = " (it looks like client_id:client_secret: pass base64 of that)" if ":" in value else ""
        raise ConfigurationError(
            f"credentials is not base64: pass the authorization key from the Sber cabinet{hint}", provider="gigachat"
        ) from None
    if not decoded:
        raise ConfigurationError("credentials decode to nothing", provider="gigachat")
    return value


def _scope(value: str | None) -> str:
    if value is None:
        value = os.environ.get("GIGACHAT_SCOPE") or DEFAULT_SCOPE
    if value not in SCOPES:
        raise ConfigurationError(f"scope must be one of {', '.join(SCOPES)}, got {value!r}", provider="gigachat")
    return value


def _access_token(value: str | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"access_token must be a str, got {type(value).__name__}", provider="gigachat")
    return (value.strip() or None) if value else None


def bundled_ca_pem() -> str:
    """The PEM of the "Russian Trusted Root CA" that ships with trio_llm."""
    return importlib.resources.files("trio_llm").joinpath(CA_RESOURCE).read_text(encoding="ascii")


def _load_ca_file(context: ssl.SSLContext, path: str) -> None:
    try:
        context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"ca_file {path!r}: no CA certificate could be loaded from it ({type(exc).__name__})", provider="gigachat"
        ) from exc


# -- access tokens (sans-IO) -------------------------------------------------------------------


@attrs.frozen
class AccessToken:
    """An access token and when to stop using it, on trio's clock.

    Attributes:
        value: The token (never shown in a repr).
        refresh_at: ``trio.current_time()`` from which a new one is fetched.
        expires_at: ``trio.current_time()`` at which the service stops accepting it.
    """

    value: str = attrs.field(repr=False)
    refresh_at: float
    expires_at: float

    def usable(self, now: float) -> bool:
        """Whether to send it (rather than fetch a new one first)."""
        return now < self.refresh_at


def token_from_reply(payload: Any, *, now: float, wall_now: float) -> AccessToken:
    """The token in an OAuth reply ``{"access_token", "expires_at"}``.

    ``expires_at`` (epoch milliseconds) is turned into a deadline on trio's clock once, here:
    ``now`` is ``trio.current_time()`` and ``wall_now`` is ``time.time()``, both taken when the
    reply arrived. The token is refreshed when less than 60 s of it remain (or half its life,
    for a token that lives under two minutes, so that it is still used at all). A reply whose
    ``expires_at`` is already past means the local clock is off, not that the token is dead:
    it is then used until the service refuses it (a 401 refreshes it once).
    """
    if not isinstance(payload, dict):
        raise ProtocolError("the OAuth reply is not a JSON object", provider="gigachat")
    value = payload.get("access_token")
    expires = payload.get("expires_at")
    if not isinstance(value, str) or not value:
        raise ProtocolError("the OAuth reply has no access_token", provider="gigachat")
    if not isinstance(expires, int | float) or isinstance(expires, bool) or not math.isfinite(expires):
        raise ProtocolError("the OAuth reply has no numeric expires_at", provider="gigachat")
    lifetime = expires / 1000.0 - wall_now
    if lifetime <= 0:
        return AccessToken(value, refresh_at=math.inf, expires_at=math.inf)
    deadline = now + lifetime
    return AccessToken(value, refresh_at=deadline - min(REFRESH_MARGIN, lifetime / 2), expires_at=deadline)


def _copy_error(error: TrioLLMError) -> TrioLLMError:
    """A new exception like ``error``, for another task to raise (one exception object raised
    in several tasks would collect all their tracebacks)."""
    twin = type(error).__new__(type(error), *error.args)
    twin.__dict__.update(error.__dict__)
    return twin


# -- request building --------------------------------------------------------------------------


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _function_result(message: Message, where: str) -> str:
    content = message.text
    try:
        json.loads(content)
    except ValueError:
        raise InvalidRequestError(
            f"{where}.content: GigaChat needs a tool result in JSON, and this is not JSON; pass a dict or a list"
            " to tool_result(), or json.dumps() the value",
            provider="gigachat",
        ) from None
    return content


def gigachat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages in GigaChat's shape, refusing what GigaChat refuses.

    A system message only first; an assistant message's one tool call as ``function_call``
    (with its ``functions_state_id`` when the call id is one); tool results as ``function``
    messages whose content is JSON, named after the function they answer.
    """
    call_names = {call.id: call.name for message in messages for call in message.tool_calls}
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if message.images:
            raise InvalidRequestError(
                f"{where}.content: GigaChat takes images only as uploaded files, which trio_llm does not send",
                provider="gigachat",
            )
        if message.role == "system":
            if index != 0:
                raise InvalidRequestError(
                    f"{where}.role: GigaChat accepts a system message only as the first message", provider="gigachat"
                )
            out.append({"role": "system", "content": message.text})
        elif message.role == "user":
            out.append({"role": "user", "content": message.text})
        elif message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.text}
            if len(message.tool_calls) > 1:
                raise InvalidRequestError(
                    f"{where}.tool_calls: GigaChat makes one function call per message, this one has"
                    f" {len(message.tool_calls)}",
                    provider="gigachat",
                )
            if message.tool_calls:
                call = message.tool_calls[0]
                entry["function_call"] = {"name": call.name, "arguments": call.arguments}
                if _is_uuid(call.id):
                    entry["functions_state_id"] = call.id
            out.append(entry)
        else:
            name = message.name or call_names.get(message.tool_call_id or "")
            if name is None:
                raise InvalidRequestError(
                    f"{where}.tool_call_id: {message.tool_call_id!r} answers no earlier tool call;"
                    " pass name= to tool_result",
                    provider="gigachat",
                )
            out.append({"role": "function", "name": name, "content": _function_result(message, where)})
    return out


def gigachat_functions(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """Tools as GigaChat ``functions`` (the JSON schema kept whole)."""
    out = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
        if tool.description:
            function["description"] = tool.description
        out.append(function)
    return out


def build_body(
    request: ChatRequest, *, streaming: bool, update_interval: float, repetition_penalty: float | None
) -> dict[str, Any]:
    """The ``/chat/completions`` JSON for ``request``, with only the options that were set."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": gigachat_messages(request.messages),
        "stream": streaming,
        "update_interval": update_interval,
    }
    body.update(request.options_as({"temperature": "temperature", "top_p": "top_p", "max_tokens": "max_tokens"}))
    if repetition_penalty is not None:
        body["repetition_penalty"] = repetition_penalty
    if request.tools:
        body["functions"] = gigachat_functions(request.tools)
        # GigaChat's default is "none": without this it never calls a function.
        body["function_call"] = "auto"
    return body


# -- errors ------------------------------------------------------------------------------------

_SCOPE_CODES = {1, 5, 7}


def oauth_error(status: int, headers: Mapping[str, str], body: bytes, *, scope: str) -> APIStatusError:
    """The typed error for a refused token request, with Sber's message and what to check.

    Sber's bodies are ``{"code": ..., "message": ...}``: 400 for a scope the key does not have
    (or a malformed one), 401 for a wrong key.
    """
    decoded, message = parse_error_body(body, headers.get("content-type", ""))
    code = decoded.get("code") if isinstance(decoded, dict) else None
    text = f"OAuth: {message or f'HTTP {status}'}"
    if isinstance(code, int):
        text += f" (code {code})"
    cls: type[APIStatusError] | None = None
    if status == 401:
        cls = AuthenticationError
        text += "; check the authorization key (credentials= or GIGACHAT_CREDENTIALS)"
    elif status == 400 and (code in _SCOPE_CODES or (message and "scope" in message.lower())):
        cls = AuthenticationError
        text += f"; check that your key has scope {scope!r} (one of {', '.join(SCOPES)})"
    return status_error(status, headers, body, provider="gigachat", cls=cls, message=text)


def chat_error(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """The typed error for a refused chat or models request (``{"status", "message"}`` bodies)."""
    _decoded, message = parse_error_body(body, headers.get("content-type", ""))
    cls: type[APIStatusError] | None = None
    if status == 404 and message and "model" in message.lower():
        cls = ModelNotFoundError
    return status_error(status, headers, body, provider="gigachat", cls=cls)


# -- the provider ------------------------------------------------------------------------------


def _check_number(name: str, value: Any, *, allow_zero: bool) -> None:
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a number, got {value!r}", provider="gigachat")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(
            f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}", provider="gigachat"
        )


@attrs.define(slots=False)
class GigaChat(Provider):
    """Sber's GigaChat API.

    Args:
        credentials: The authorization key from the Sber cabinet (base64 of
            ``client_id:client_secret``); ``GIGACHAT_CREDENTIALS`` from the environment when
            omitted. Exchanged for access tokens at ``auth_url``.
        scope: ``"GIGACHAT_API_PERS"``, ``"GIGACHAT_API_B2B"`` or ``"GIGACHAT_API_CORP"``;
            ``GIGACHAT_SCOPE`` from the environment when omitted, else ``GIGACHAT_API_PERS``.
        auth_url: The OAuth endpoint.
        access_token: A token you already have. It is used until the service refuses it;
            then a new one is fetched with ``credentials``, if there are any.
        ca_file: A PEM file of one more CA to trust, on top of the public roots and the
            bundled Russian Trusted Root CA.
        ssl_context: A context used instead of all of the above (it must verify certificates).
        update_interval: GigaChat's ``update_interval`` (how often a stream sends text).
        repetition_penalty: Sent as ``repetition_penalty`` with every request when set.

    Example::

        async with trio_llm.GigaChat() as giga:          # credentials from GIGACHAT_CREDENTIALS
            reply = await giga.complete("Привет!", model="GigaChat-2-Max")
    """

    name = "gigachat"
    label = "GigaChat"
    default_base_url = BASE_URL
    needs_auth = True
    supports_tools = True
    model_default = DEFAULT_MODEL
    known_models = FALLBACK_MODELS
    model_aliases = MODEL_ALIASES

    # The token cache belongs to one key and one scope: neither can change after construction.
    credentials: str | None = attrs.field(
        default=None, converter=_credentials, repr=False, on_setattr=attrs.setters.frozen
    )
    scope: str = attrs.field(default=None, converter=_scope, kw_only=True, on_setattr=attrs.setters.frozen)
    auth_url: str = attrs.field(default=AUTH_URL, kw_only=True, on_setattr=attrs.setters.frozen)
    access_token: str | None = attrs.field(
        default=None, converter=_access_token, kw_only=True, repr=False, on_setattr=attrs.setters.frozen
    )
    ca_file: str | os.PathLike[str] | None = attrs.field(default=None, kw_only=True)
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, kw_only=True, repr=False)
    update_interval: float = attrs.field(default=0, kw_only=True)
    repetition_penalty: float | None = attrs.field(default=None, kw_only=True)

    _token: AccessToken | None = attrs.field(default=None, init=False, repr=False, eq=False)
    _token_lock: trio.Lock = attrs.field(factory=trio.Lock, init=False, repr=False, eq=False)
    _refreshes: int = attrs.field(default=0, init=False, repr=False, eq=False)
    _refresh_error: TrioLLMError | None = attrs.field(default=None, init=False, repr=False, eq=False)
    _served_models: frozenset[str] | None = attrs.field(default=None, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if not isinstance(self.auth_url, str) or not self.auth_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"auth_url must be an http:// or https:// URL, got {self.auth_url!r}", provider=self.name
            )
        _check_number("update_interval", self.update_interval, allow_zero=True)
        _check_number("repetition_penalty", self.repetition_penalty, allow_zero=False)
        if self.ssl_context is not None:
            if not isinstance(self.ssl_context, ssl.SSLContext):
                raise ConfigurationError(
                    f"ssl_context must be an ssl.SSLContext, got {type(self.ssl_context).__name__}",
                    provider=self.name,
                )
            if self.ca_file is not None:
                raise ConfigurationError(
                    "pass ca_file= or ssl_context=, not both: ssl_context replaces the whole trust store"
                    " (load the CA into it with load_verify_locations())",
                    provider=self.name,
                )
            if self.ssl_context.verify_mode != ssl.CERT_REQUIRED or not self.ssl_context.check_hostname:
                raise ConfigurationError(
                    "ssl_context must verify certificates and host names; trust the CA instead"
                    " (ca_file= or ssl_context.load_verify_locations())",
                    provider=self.name,
                )
        if self.ca_file is not None:
            # Checked now, on a throwaway context, so that a bad path fails before any I/O.
            _load_ca_file(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), os.fspath(self.ca_file))
        if self.access_token is not None:
            self._token = AccessToken(self.access_token, refresh_at=math.inf, expires_at=math.inf)

    # -- TLS -----------------------------------------------------------------------------------

    def _new_client(self) -> httpx.AsyncClient:
        # Always the real context: the token endpoint is HTTPS even if base_url is not.
        return make_client(connect_timeout=self.timeouts.connect, proxy=self.proxy, verify=self._ssl_context())

    def _build_ssl_context(self) -> ssl.SSLContext:
        if self.ssl_context is not None:
            return self.ssl_context
        context = httpx.create_ssl_context()  # certifi's roots, or SSL_CERT_FILE / SSL_CERT_DIR
        context.load_verify_locations(cadata=bundled_ca_pem())
        if self.ca_file is not None:
            _load_ca_file(context, os.fspath(self.ca_file))
        return context

    def _trust_hint(self) -> str:
        if self.http_client is not None:
            return "The http_client you passed verified it with its own verify= setting; add the CA there."
        if self.ssl_context is not None:
            return (
                "Only the CAs of the ssl_context you passed were trusted; add the server's CA to it"
                " with ssl_context.load_verify_locations(cafile=...)."
            )
        trusted = ["the public root CAs (certifi's, or SSL_CERT_FILE / SSL_CERT_DIR when set)"]
        trusted.append("the bundled Russian Trusted Root CA")
        if self.ca_file is not None:
            trusted.append(f"the CA in ca_file={os.fspath(self.ca_file)!r}")
        return (
            f"Trusted: {', '.join(trusted[:-1])} and {trusted[-1]}. To trust another CA (a corporate proxy's,"
            " say), pass ca_file='/path/to/ca.pem', or ssl_context= to replace the whole trust store."
        )

    # -- access tokens -------------------------------------------------------------------------

    async def _auth_headers(self, client: httpx.AsyncClient) -> Mapping[str, str]:
        token = await self._current_token(client)
        return {"authorization": f"Bearer {token.value}"}

    async def _current_token(self, client: httpx.AsyncClient) -> AccessToken:
        """The cached token, or a new one: one OAuth request however many callers wait for it.

        The lock is not shielded. A caller cancelled while it fetches (its own deadline, or a
        ``trio.fail_after`` of its caller) stops at once and releases the lock without a
        result; the next waiter then fetches. Nobody else fails because of it, and no
        cancellation is held up for an OAuth round trip. A fetch that *fails* fails everyone
        who was waiting for it, each with a copy of the error, instead of each trying again.
        """
        token = self._token
        if token is not None and token.usable(trio.current_time()):
            await trio.lowlevel.checkpoint()
            return token
        ticket = self._refreshes
        async with self._token_lock:
            if self._refreshes != ticket:
                # A fetch finished while this caller waited: take its outcome.
                failure = self._refresh_error
                if failure is not None:
                    raise _copy_error(failure) from failure
                token = self._token
                if token is not None and trio.current_time() < token.expires_at:
                    return token
            try:
                token = await self._fetch_token(client)
            except TrioLLMError as error:
                self._refreshes += 1
                self._refresh_error = error
                raise
            self._refreshes += 1
            self._refresh_error = None
            self._token = token
            return token

    async def _fetch_token(self, client: httpx.AsyncClient) -> AccessToken:
        """``POST auth_url``: Basic credentials, a fresh ``RqUID``, the form ``scope=...``."""
        if not self.credentials:
            await trio.lowlevel.checkpoint()
            raise MissingAuthError(self._no_credentials_message(), provider=self.name)
        headers = {
            "authorization": f"Basic {self.credentials}",
            "rquid": str(uuid.uuid4()),
            "accept": "application/json",
        }
        timeout = self.timeouts.first_event
        with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
            try:
                response = await client.post(self.auth_url, headers=headers, data={"scope": self.scope})
            except (httpx.HTTPError, OSError) as exc:
                raise translate_httpx_error(
                    exc, provider=self.name, connect_timeout=self.timeouts.connect, trust_hint=self._trust_hint()
                ) from exc
        if scope.cancelled_caught:
            raise FirstEventTimeout(f"no OAuth reply within {timeout} s", provider=self.name, timeout=timeout or 0.0)
        if response.status_code >= 300:
            raise oauth_error(response.status_code, response.headers, response.content, scope=self.scope)
        token = token_from_reply(loads(response.content, self.name), now=trio.current_time(), wall_now=time.time())
        if math.isinf(token.expires_at):
            logger.debug("%s: the OAuth reply's expires_at is already past; is the clock right?", self.name)
        else:
            logger.debug("%s: new access token, valid for %.0f s", self.name, token.expires_at - trio.current_time())
        return token

    def _should_refresh_auth(self, error: TrioLLMError) -> bool:
        # A 401 on a chat or models request: the token expired or was revoked. Not for a
        # pre-issued token alone, which cannot be renewed.
        return isinstance(error, AuthenticationError) and error.status_code == 401 and bool(self.credentials)

    def _auth_rejected(self, auth: Mapping[str, str]) -> None:
        token = self._token
        if token is not None and auth.get("authorization") == f"Bearer {token.value}":
            self._token = None

    def _no_credentials_message(self) -> str:
        return (
            "no credentials: pass credentials= (the authorization key from the Sber cabinet) or set"
            " GIGACHAT_CREDENTIALS, or pass access_token="
        )

    # -- requests ------------------------------------------------------------------------------

    def resolve_model(self, model: str | None) -> str:
        """The model a call will use: the default if ``None``, aliases resolved.

        Raises:
            ModelNotFoundError: Once :meth:`~trio_llm.Provider.models` has read the service's list, for a name
                not on it.
        """
        resolved = super().resolve_model(model)
        served = self._served_models
        if served is not None and resolved not in served:
            raise ModelNotFoundError(
                f"unknown model {resolved!r}; the service offers: {', '.join(sorted(served))}",
                status_code=404,
                provider=self.name,
            )
        return resolved

    def _check_request(self, request: ChatRequest) -> None:
        if any(message.images for message in request.messages):
            raise InvalidRequestError(
                "GigaChat takes images only as uploaded files, which trio_llm does not send yet", provider=self.name
            )
        super()._check_request(request)
        if request.top_k is not None:
            raise InvalidRequestError("GigaChat has no top_k; use top_p", provider=self.name)
        if request.stop:
            raise InvalidRequestError("GigaChat has no stop sequences", provider=self.name)
        if not self.credentials and self._token is None:
            raise MissingAuthError(self._no_credentials_message(), provider=self.name)
        gigachat_messages(request.messages)  # GigaChat's message rules, checked before any I/O

    def _http_call(self, request: ChatRequest, *, streaming: bool) -> HTTPCall:
        body = build_body(
            request,
            streaming=streaming,
            update_interval=self.update_interval,
            repetition_penalty=self.repetition_penalty,
        )
        accept = "text/event-stream" if streaming else "application/json"
        return HTTPCall("POST", f"{self.base_url}/chat/completions", headers={"accept": accept}, json=body)

    def _decoder(self, request: ChatRequest, *, streaming: bool) -> Decoder:
        interpreter = ChatCompletionsInterpreter(self.name, streaming=streaming, finish_reasons=FINISH_REASONS)
        return SSEStreamDecoder(interpreter) if streaming else BodyDecoder(interpreter)

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
        return chat_error(status, headers, body)

    async def _fetch_models(self) -> list[str]:
        """``GET /models``: the chat models the account can use (embedding models left out)."""
        if not self.credentials and self._token is None:
            await trio.lowlevel.checkpoint()
            return list(FALLBACK_MODELS)
        payload = await self._get_json(f"{self.base_url}/models")
        entries = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(entries, list):
            raise ProtocolError("the model list has no data array", provider=self.name)
        names: list[str] = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise ProtocolError("a model entry has no id", provider=self.name)
            if entry.get("type", "chat") == "chat":
                names.append(entry["id"])
        # Only a list the service sent closes the model list (the seeds' fallback does not).
        self._served_models = frozenset(names)
        return sorted(self._served_models)
