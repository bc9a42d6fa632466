"""Frozen configuration values: :class:`Timeouts` and :class:`RetryPolicy`."""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import (
    APIStatusError,
    CertificateError,
    ConfigurationError,
    ConnectTimeout,
    StreamTruncatedError,
    TransportError,
)

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "Timeouts", "parse_retry_after"]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _non_negative_or_none(_instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not (_is_number(value) and value > 0):
        raise ConfigurationError(f"Timeouts.{attribute.name} must be a positive number or None, got {value!r}")


@attrs.frozen
class Timeouts:
    """Deadlines per phase of a call, each enforced by a trio cancel scope.

    ``None`` disables a phase. A caller's own ``trio.fail_after``/``move_on_after`` around any
    call works as well and leaves nothing open.

    Attributes:
        connect: TCP connect and TLS handshake. Raises :class:`~trio_llm.ConnectTimeout`.
        first_event: From sending the request until the first event is decoded (for
            :meth:`~trio_llm.Provider.complete`, which is not streamed, until the whole reply has arrived).
            Raises :class:`~trio_llm.FirstEventTimeout`.
        idle: The longest gap between two events. Raises :class:`~trio_llm.IdleTimeout`.
        total: The whole call, from opening the stream to its last event, including retries.
            Raises :class:`~trio_llm.TotalTimeout`.
    """

    connect: float | None = attrs.field(default=10.0, validator=_non_negative_or_none)
    first_event: float | None = attrs.field(default=60.0, validator=_non_negative_or_none)
    idle: float | None = attrs.field(default=30.0, validator=_non_negative_or_none)
    total: float | None = attrs.field(default=None, validator=_non_negative_or_none)


#: HTTP statuses worth retrying: the request may succeed if sent again.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def _positive_int(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"RetryPolicy.{attribute.name} must be an int >= 1, got {value!r}")


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (_is_number(value) and value >= 0):
        raise ConfigurationError(f"RetryPolicy.{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """When and how long to wait before sending a failed request again.

    Retries connection errors (a reply cut short included) and HTTP 408, 429, 500, 502, 503,
    504 with jittered exponential backoff, honouring ``Retry-After`` up to ``retry_after_cap``
    (a longer wait fails at once). It never retries once an event has reached the caller, never
    retries a cancellation, and never sleeps past the caller's deadline.

    Attributes:
        max_attempts: Attempts in all, the first included (1 disables retries).
        initial_backoff: The nominal wait before the second attempt, in seconds.
        max_backoff: The cap on the nominal exponential wait.
        retry_after_cap: The longest ``Retry-After`` honoured; beyond it the error is raised.
    """

    max_attempts: int = attrs.field(default=3, validator=_positive_int)
    initial_backoff: float = attrs.field(default=0.5, validator=_non_negative)
    max_backoff: float = attrs.field(default=8.0, validator=_non_negative)
    retry_after_cap: float = attrs.field(default=60.0, validator=_non_negative)

    def is_retryable(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another attempt (regardless of attempts left)."""
        if isinstance(error, APIStatusError):
            return error.status_code in RETRYABLE_STATUSES
        if isinstance(error, ConnectTimeout | StreamTruncatedError):
            # A reply cut short is a connection that failed: worth another attempt, which
            # the stream makes only while no event has reached the caller.
            return True
        return isinstance(error, TransportError) and not isinstance(error, CertificateError)

    def backoff(self, attempt: int, error: BaseException, rng: random.Random | None = None) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        ``None`` means do not retry: attempts are used up, the error is not retryable, or the
        provider asked for a wait longer than ``retry_after_cap``.
        """
        if attempt >= self.max_attempts or not self.is_retryable(error):
            return None
        retry_after = error.retry_after if isinstance(error, APIStatusError) else None
        if retry_after is not None:
            if retry_after > self.retry_after_cap:
                return None
            return max(0.0, retry_after)
        nominal = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt - 1))
        # "Equal jitter": between half and all of the nominal wait, so a thousand callers
        # that failed together do not come back in lock-step.
        return nominal * (0.5 + 0.5 * (rng or random).random())


_NUMBER = re.compile(r"\d+(\.\d+)?")


def _seconds(text: str) -> float | None:
    """A non-negative decimal number (no "nan", "inf", signs or exponents), else ``None``."""
    text = text.strip()
    return float(text) if _NUMBER.fullmatch(text) else None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        milliseconds = _seconds(value)
        if milliseconds is not None:
            return milliseconds / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
