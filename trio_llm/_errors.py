"""Every exception trio_llm raises, in one tree.

::

    TrioLLMError
    ├── ConfigurationError              bad constructor arguments, unusable settings
    │   └── MissingAuthError            no key / credentials where the provider needs them
    ├── InvalidRequestError             bad messages, options or media, found before any I/O
    │   └── BadRequestError             ... or refused by the provider (HTTP 400, 413, 422)
    ├── APIStatusError                  the provider answered with an error status
    │   ├── BadRequestError
    │   ├── AuthenticationError         401, or a key the provider says is invalid
    │   ├── PermissionDeniedError       403
    │   ├── NotFoundError               404
    │   │   └── ModelNotFoundError      the model does not exist (or is not served)
    │   ├── RateLimitError              429, or 402 (quota or credit used up); carries ``retry_after``
    │   └── ServerError                 5xx
    ├── ContentBlockedError             the provider refused the prompt itself
    ├── AllFailedError                  every target of a fan-out helper failed
    ├── ProtocolError                   the provider sent something we cannot decode
    │   └── StreamTruncatedError        the stream ended without the provider's end marker
    ├── TransportError                  connection refused, reset, TLS failure, ...
    │   └── CertificateError            the server's certificate did not verify
    └── TimeoutError                    a phase deadline of :class:`~trio_llm.Timeouts` expired
        ├── ConnectTimeout
        ├── FirstEventTimeout
        ├── IdleTimeout
        └── TotalTimeout

Third-party exceptions never escape raw: they are wrapped with ``raise ... from exc``.
No message ever contains a key, credential or access token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fanout import Outcome, Target

__all__ = [
    "APIStatusError",
    "AllFailedError",
    "AuthenticationError",
    "BadRequestError",
    "CertificateError",
    "ConfigurationError",
    "ConnectTimeout",
    "ContentBlockedError",
    "FirstEventTimeout",
    "IdleTimeout",
    "InvalidRequestError",
    "MissingAuthError",
    "ModelNotFoundError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "ServerError",
    "StreamTruncatedError",
    "TimeoutError",
    "TotalTimeout",
    "TransportError",
    "TrioLLMError",
]


class TrioLLMError(Exception):
    """Base class of every error trio_llm raises.

    Attributes:
        provider: The provider's name (``"gemini"``, ``"gigachat"``, ...), when known.
    """

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __str__(self) -> str:
        if self.provider:
            return f"{self.provider}: {self.message}"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigurationError(TrioLLMError):
    """The provider cannot work with the settings it was given."""


class MissingAuthError(ConfigurationError):
    """The provider needs a key or credentials and none were given or found."""


class InvalidRequestError(TrioLLMError):
    """The request is malformed: messages, options, media or model.

    Raised before any I/O when trio_llm can tell; :class:`BadRequestError` (also an
    ``InvalidRequestError``) when the provider refused it.
    """


class APIStatusError(TrioLLMError):
    """The provider answered with an HTTP error status.

    Attributes:
        status_code: The HTTP status.
        body: The decoded error body (a dict for JSON bodies, else the text, shortened).
        request_id: The provider's request id, when it sent one.
        retry_after: Seconds the provider asked us to wait (``Retry-After`` or the like).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        provider: str | None = None,
        body: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        text = f"{self.status_code} {self.message}"
        if self.provider:
            text = f"{self.provider}: {text}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class BadRequestError(APIStatusError, InvalidRequestError):
    """The provider refused the request as malformed (HTTP 400, 413, 422)."""


class AuthenticationError(APIStatusError):
    """The key, credentials or token were refused (HTTP 401, or an invalid-key 400)."""


class PermissionDeniedError(APIStatusError):
    """The credentials are valid but not allowed to do this (HTTP 403)."""


class NotFoundError(APIStatusError):
    """The resource does not exist (HTTP 404)."""


class ModelNotFoundError(NotFoundError):
    """The model does not exist, is retired, or is not in the provider's closed list.

    When raised before any I/O (a provider with a closed model list), ``status_code`` is 404
    by convention and ``body`` is ``None``.
    """


class RateLimitError(APIStatusError):
    """Too many requests (HTTP 429), or quota or credit used up (HTTP 402); see ``retry_after``."""


class ServerError(APIStatusError):
    """The provider failed (HTTP 5xx)."""


class ContentBlockedError(TrioLLMError):
    """The provider refused the prompt itself (e.g. Gemini's ``promptFeedback.blockReason``).

    Attributes:
        reason: The provider's own reason code, e.g. ``"SAFETY"``.
    """

    def __init__(self, message: str, *, provider: str | None = None, reason: str | None = None):
        super().__init__(message, provider=provider)
        self.reason = reason


class AllFailedError(TrioLLMError):
    """Every target of a fan-out helper (``race``, ``fallback``, ...) failed.

    Attributes:
        outcomes: One :class:`~trio_llm.Outcome` per target that ran, each with its error.
    """

    def __init__(self, outcomes: Sequence[Outcome]) -> None:
        self.outcomes = list(outcomes)
        parts = "; ".join(f"{o.label}: {o.error}" for o in self.outcomes)
        super().__init__(f"all {len(self.outcomes)} targets failed: {parts}")

    @property
    def errors(self) -> list[tuple[Target, Exception]]:
        """``(target, error)`` for every target that failed."""
        return [(o.target, o.error) for o in self.outcomes if o.error is not None]


class ProtocolError(TrioLLMError):
    """The provider sent data trio_llm cannot decode (malformed JSON, bad framing, ...)."""


class StreamTruncatedError(ProtocolError):
    """The stream ended before the provider's end marker: the reply is incomplete.

    Attributes:
        events_delivered: How many events had been decoded before the stream broke.
    """

    def __init__(self, message: str, *, provider: str | None = None, events_delivered: int = 0) -> None:
        super().__init__(message, provider=provider)
        self.events_delivered = events_delivered


class TransportError(TrioLLMError):
    """The connection failed: refused, reset, closed early, or a TLS failure."""


class CertificateError(TransportError):
    """The server's TLS certificate could not be verified against the trusted CAs."""


class TimeoutError(TrioLLMError):  # noqa: A001 - the name is part of the public contract
    """A phase deadline from :class:`~trio_llm.Timeouts` expired.

    Attributes:
        timeout: The configured seconds for the phase that expired.
    """

    phase: str = "total"

    def __init__(self, message: str, *, provider: str | None = None, timeout: float) -> None:
        super().__init__(message, provider=provider)
        self.timeout = timeout


class ConnectTimeout(TimeoutError):
    """Connecting to the provider (TCP and TLS) took longer than ``Timeouts.connect``."""

    phase = "connect"


class FirstEventTimeout(TimeoutError):
    """No event arrived within ``Timeouts.first_event`` of sending the request."""

    phase = "first_event"


class IdleTimeout(TimeoutError):
    """The gap between two events exceeded ``Timeouts.idle``."""

    phase = "idle"


class TotalTimeout(TimeoutError):
    """The whole call took longer than ``Timeouts.total``."""

    phase = "total"
