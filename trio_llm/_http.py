"""The one layer that touches httpx: client construction, exception translation, error bodies.

Everything httpx raises becomes a trio_llm error here, with ``from`` keeping the cause, and no
message includes a URL query, a header or a request body, so no secret can leak through it.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from ._config import parse_retry_after
from ._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    CertificateError,
    ConfigurationError,
    ConnectTimeout,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ServerError,
    StreamTruncatedError,
    TransportError,
    TrioLLMError,
)

__all__ = [
    "HTTPCall",
    "error_class_for_status",
    "find_request_id",
    "html_reply_error",
    "make_client",
    "parse_error_body",
    "status_error",
    "translate_httpx_error",
]

#: Error bodies are read up to this size; the rest is not needed to explain the error.
MAX_ERROR_BODY = 1024 * 1024

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-goog-request-id", "x-requestid", "x-trace-id", "x-client-id")


@attrs.frozen
class HTTPCall:
    """One HTTP request as a provider describes it; the I/O layer sends it."""

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    json: Any = attrs.field(default=None, repr=False)
    data: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    #: Multipart fields as ``(filename, bytes, content type)``; a text field has neither.
    files: Mapping[str, tuple[str | None, bytes, str | None]] | None = attrs.field(default=None, repr=False)

    def build(self, client: httpx.AsyncClient, extra_headers: Mapping[str, str]) -> httpx.Request:
        """The httpx request, with per-attempt headers (auth) merged in."""
        headers = {**self.headers, **extra_headers} if extra_headers else self.headers
        if self.json is not None:
            # Compact and UTF-8 as-is: smaller bodies, and Cyrillic stays readable on the wire.
            content = json.dumps(self.json, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {**headers, "content-type": "application/json"}
            return client.build_request(self.method, self.url, headers=headers, content=content)
        return client.build_request(self.method, self.url, headers=headers, data=self.data, files=self.files)


def make_client(
    *,
    connect_timeout: float | None,
    proxy: str | None,
    verify: ssl.SSLContext | bool,
    max_connections: int | None = 1000,
) -> httpx.AsyncClient:
    """A client whose only httpx-level deadline is the connect phase.

    Every other deadline is a trio cancel scope owned by the stream; the pool never times out,
    because queuing belongs to trio (``CapacityLimiter``), where it is visible.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(None, connect=connect_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=100, keepalive_expiry=30.0),
        proxy=proxy,
        verify=verify,
        follow_redirects=False,
    )


def _is_cert_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def translate_httpx_error(
    exc: httpx.HTTPError | ssl.SSLError | OSError,
    *,
    provider: str,
    connect_timeout: float | None,
    trust_hint: str = "",
    reading_body: bool = False,
    events_delivered: int = 0,
) -> TrioLLMError:
    """The trio_llm error for an httpx (or socket) failure. Messages carry no URL or header."""
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectTimeout(
            f"could not connect within {connect_timeout} s", provider=provider, timeout=connect_timeout or 0.0
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigurationError(f"unusable base_url: {type(exc).__name__}", provider=provider)
    if isinstance(exc, httpx.DecodingError):
        return ProtocolError("the response body could not be decoded (bad Content-Encoding)", provider=provider)
    if _is_cert_failure(exc):
        hint = f" {trust_hint}" if trust_hint else ""
        return CertificateError(f"the server's TLS certificate did not verify.{hint}", provider=provider)
    if reading_body and isinstance(exc, httpx.RemoteProtocolError):
        return StreamTruncatedError(
            "the connection closed before the response was complete",
            provider=provider,
            events_delivered=events_delivered,
        )
    if isinstance(exc, httpx.ConnectError):
        return TransportError(f"could not connect: {_reason(exc)}", provider=provider)
    if isinstance(exc, httpx.ProxyError):
        return TransportError(f"proxy error: {_reason(exc)}", provider=provider)
    what = "reading the response" if reading_body else "sending the request"
    return TransportError(f"connection failed while {what}: {_reason(exc)}", provider=provider)


def _reason(exc: BaseException) -> str:
    # httpx messages for transport errors name the failure, not the URL; keep them short anyway.
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


_TITLE = re.compile(rb"<title[^>]*>([^<]{1,200})</title>", re.IGNORECASE)


def html_reply_error(status: int, body: bytes, *, provider: str) -> ProtocolError:
    """The error for a successful status whose body is an HTML page, not the API's reply."""
    found = _TITLE.search(body[:MAX_ERROR_BODY])
    title = " ".join(found.group(1).decode("utf-8", "replace").split()) if found else ""
    named = f" ({title!r})" if title else ""
    return ProtocolError(
        f"HTTP {status} with an HTML page{named} instead of the API's reply: check base_url, or whether"
        " a proxy or a captive portal answered",
        provider=provider,
    )


def find_request_id(headers: Mapping[str, str]) -> str | None:
    """The provider's request id from the usual headers, if any."""
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def parse_error_body(body: bytes, content_type: str) -> tuple[Any, str | None]:
    """``(decoded body, message)`` from an error body: JSON if it is, else shortened text.

    The message is taken from the usual places (``error.message``, ``message``, ``error``);
    an HTML page (from a proxy, say) is named as such rather than quoted.
    """
    text = body.decode("utf-8", "replace")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            decoded: Any = json.loads(text)
        except ValueError:
            decoded = None
        if decoded is not None:
            if isinstance(decoded, list) and decoded and isinstance(decoded[0], dict):
                decoded = decoded[0]
            return decoded, _message_from_json(decoded)
    if "html" in content_type.lower() or stripped[:15].lower().startswith(("<!doctype", "<html")):
        return text[:2000], "an HTML error page (from a proxy or gateway?)"
    short = text.strip()[:500]
    return short, (short or None)


def _message_from_json(decoded: Any) -> str | None:
    if not isinstance(decoded, dict):
        return None
    error = decoded.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str):
            return message
    if isinstance(error, str) and not isinstance(decoded.get("message"), str):
        return error
    for key in ("message", "error_description", "detail"):
        value = decoded.get(key)
        if isinstance(value, str):
            return value
    return None


def error_class_for_status(status: int) -> type[APIStatusError]:
    """The class of :class:`APIStatusError` that fits an HTTP status."""
    if status in (400, 413, 422):
        return BadRequestError
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status in (402, 429):  # 402 Payment Required: the account's quota or credit is used up
        return RateLimitError
    if status >= 500:
        return ServerError
    return APIStatusError


def status_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str,
    cls: type[APIStatusError] | None = None,
    message: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """The generic typed error for an error response; providers refine it."""
    decoded, found = parse_error_body(body, headers.get("content-type", ""))
    if retry_after is None:
        retry_after = parse_retry_after(headers)
    return (cls or error_class_for_status(status))(
        message or found or f"HTTP {status}",
        status_code=status,
        provider=provider,
        body=decoded,
        request_id=find_request_id(headers),
        retry_after=retry_after,
    )
