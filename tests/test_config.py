"""Timeouts and RetryPolicy: validation, which errors are retried, backoff, and Retry-After."""

from __future__ import annotations

import math
import random

import attrs
import httpx
import pytest

import trio_llm
from trio_llm import RetryPolicy, Timeouts
from trio_llm._config import parse_retry_after
from trio_llm._http import error_class_for_status


def status(code: int, *, retry_after: float | None = None) -> trio_llm.APIStatusError:
    """The error the HTTP layer raises for ``code``."""
    return error_class_for_status(code)(f"HTTP {code}", status_code=code, retry_after=retry_after)


# -- Timeouts ------------------------------------------------------------------------------------


def test_timeouts_defaults() -> None:
    assert Timeouts() == Timeouts(connect=10.0, first_event=60.0, idle=30.0, total=None)


def test_timeouts_accept_none_to_disable_a_phase() -> None:
    timeouts = Timeouts(connect=None, first_event=None, idle=None, total=None)

    assert attrs.astuple(timeouts) == (None, None, None, None)


def test_timeouts_accept_positive_numbers() -> None:
    assert Timeouts(connect=0.5, first_event=1, idle=2.5, total=600).total == 600


@pytest.mark.parametrize("field", ["connect", "first_event", "idle", "total"])
@pytest.mark.parametrize("value", [0, -1, -0.5, math.nan], ids=["zero", "minus-one", "negative", "nan"])
def test_timeouts_refuse_non_positive_values(field: str, value: float) -> None:
    with pytest.raises(trio_llm.ConfigurationError, match=rf"Timeouts\.{field}"):
        Timeouts(**{field: value})


@pytest.mark.parametrize("value", ["5", [5]], ids=["str", "list"])
def test_timeouts_refuse_values_that_are_not_numbers(value: object) -> None:
    with pytest.raises(trio_llm.ConfigurationError, match=r"Timeouts\.connect"):
        Timeouts(connect=value)  # type: ignore[arg-type]


def test_timeouts_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Timeouts().idle = 1.0  # type: ignore[misc]


# -- RetryPolicy validation ----------------------------------------------------------------------


def test_retry_policy_defaults() -> None:
    assert RetryPolicy() == RetryPolicy(max_attempts=3, initial_backoff=0.5, max_backoff=8.0, retry_after_cap=60.0)


def test_retry_policy_accepts_zero_waits() -> None:
    policy = RetryPolicy(max_attempts=1, initial_backoff=0, max_backoff=0, retry_after_cap=0)

    assert policy.max_attempts == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", 0),
        ("max_attempts", -1),
        ("max_attempts", 1.5),
        ("max_attempts", "3"),
        ("initial_backoff", -0.1),
        ("initial_backoff", math.nan),
        ("max_backoff", -1),
        ("max_backoff", math.nan),
        ("retry_after_cap", -1),
        ("retry_after_cap", math.nan),
    ],
)
def test_retry_policy_refuses_bad_values(field: str, value: object) -> None:
    with pytest.raises(trio_llm.ConfigurationError, match=rf"RetryPolicy\.{field}"):
        RetryPolicy(**{field: value})


@pytest.mark.parametrize("field", ["initial_backoff", "max_backoff", "retry_after_cap"])
def test_retry_policy_refuses_waits_that_are_not_numbers(field: str) -> None:
    with pytest.raises(trio_llm.ConfigurationError, match=rf"RetryPolicy\.{field}"):
        RetryPolicy(**{field: "1"})


# -- what is retried -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_get_a_backoff(code: int) -> None:
    policy = RetryPolicy()

    assert policy.is_retryable(status(code))
    assert policy.backoff(1, status(code), random.Random(1)) is not None


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 413, 422, 501])
def test_non_retryable_statuses_get_none(code: int) -> None:
    policy = RetryPolicy()

    assert not policy.is_retryable(status(code))
    assert policy.backoff(1, status(code), random.Random(1)) is None


@pytest.mark.parametrize(
    "error",
    [
        trio_llm.TransportError("connection reset"),
        trio_llm.ConnectTimeout("no connection", timeout=10.0),
        # A reply cut short (the stream retries it only while nothing reached the caller).
        trio_llm.StreamTruncatedError("cut short"),
    ],
    ids=["transport", "connect-timeout", "truncated"],
)
def test_connection_failures_are_retried(error: trio_llm.TrioLLMError) -> None:
    policy = RetryPolicy()

    assert policy.is_retryable(error)
    assert policy.backoff(1, error, random.Random(1)) is not None


@pytest.mark.parametrize(
    "error",
    [
        trio_llm.ContentBlockedError("blocked", reason="SAFETY"),
        trio_llm.CertificateError("bad certificate"),
        trio_llm.InvalidRequestError("bad messages"),
        trio_llm.ProtocolError("bad JSON"),
        trio_llm.IdleTimeout("idle", timeout=30.0),
        trio_llm.ConfigurationError("bad settings"),
        ValueError("not ours"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_other_errors_are_not_retried(error: BaseException) -> None:
    policy = RetryPolicy()

    assert not policy.is_retryable(error)
    assert policy.backoff(1, error, random.Random(1)) is None


def test_no_backoff_once_attempts_are_used_up() -> None:
    policy = RetryPolicy(max_attempts=3)
    error = status(503)

    assert policy.backoff(1, error, random.Random(1)) is not None
    assert policy.backoff(2, error, random.Random(1)) is not None
    assert policy.backoff(3, error, random.Random(1)) is None
    assert policy.backoff(4, error, random.Random(1)) is None


def test_one_attempt_means_no_retry() -> None:
    assert RetryPolicy(max_attempts=1).backoff(1, status(503), random.Random(1)) is None


# -- backoff -------------------------------------------------------------------------------------


def test_backoff_is_jittered_between_half_and_all_of_a_doubling_nominal_wait() -> None:
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.5, max_backoff=8.0)
    rng = random.Random(20240607)
    nominal = {1: 0.5, 2: 1.0, 3: 2.0, 4: 4.0, 5: 8.0, 6: 8.0, 7: 8.0, 8: 8.0, 9: 8.0}

    for attempt, wait in nominal.items():
        waits = [policy.backoff(attempt, status(503), rng) for _ in range(300)]
        assert all(w is not None and wait / 2 <= w <= wait for w in waits), attempt
        # The jitter spans the range: not pinned to either end, nor to the middle.
        assert min(waits) < wait * 0.55, attempt  # type: ignore[type-var]
        assert max(waits) > wait * 0.95, attempt  # type: ignore[type-var]


def test_backoff_with_a_seeded_rng_is_reproducible() -> None:
    policy = RetryPolicy(max_attempts=5)

    first = [policy.backoff(n, status(500), random.Random(7)) for n in range(1, 5)]
    second = [policy.backoff(n, status(500), random.Random(7)) for n in range(1, 5)]

    assert first == second


def test_zero_initial_backoff_retries_at_once() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff=0)

    assert [policy.backoff(n, status(502), random.Random(3)) for n in range(1, 5)] == [0.0, 0.0, 0.0, 0.0]


def test_retry_after_is_honoured_exactly() -> None:
    policy = RetryPolicy()

    assert policy.backoff(1, status(429, retry_after=7.0), random.Random(1)) == 7.0
    assert policy.backoff(1, status(503, retry_after=0.25), random.Random(1)) == 0.25


def test_retry_after_up_to_the_cap_is_honoured() -> None:
    policy = RetryPolicy(retry_after_cap=60.0)

    assert policy.backoff(1, status(429, retry_after=60.0), random.Random(1)) == 60.0


def test_retry_after_beyond_the_cap_means_do_not_retry() -> None:
    policy = RetryPolicy(retry_after_cap=60.0)

    assert policy.backoff(1, status(429, retry_after=60.5), random.Random(1)) is None


def test_retry_after_is_not_honoured_once_attempts_are_used_up() -> None:
    policy = RetryPolicy(max_attempts=2)

    assert policy.backoff(2, status(429, retry_after=1.0), random.Random(1)) is None


def test_retry_after_on_a_non_retryable_status_is_ignored() -> None:
    assert RetryPolicy().backoff(1, status(400, retry_after=1.0), random.Random(1)) is None


# -- parse_retry_after ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "5"}, 5.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": " 12 "}, 12.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250.5"}, 0.2505),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
    ],
)
def test_parse_retry_after_in_seconds_and_milliseconds(headers: dict[str, str], seconds: float) -> None:
    assert parse_retry_after(headers) == pytest.approx(seconds)


def test_parse_retry_after_http_date_is_relative_to_now() -> None:
    # Wed, 21 Oct 2015 07:28:00 GMT is 1445412480 seconds after the epoch.
    headers = {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}

    assert parse_retry_after(headers, now=1445412400.0) == 80.0


def test_parse_retry_after_http_date_in_the_past_is_zero() -> None:
    headers = {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}

    assert parse_retry_after(headers, now=1445412500.0) == 0.0


def test_parse_retry_after_negative_seconds_is_invalid_and_ignored() -> None:
    # RFC 9110: delta-seconds = 1*DIGIT. An invalid header is ignored, not read as "now".
    assert parse_retry_after({"retry-after": "-3"}) is None


def test_parse_retry_after_reads_headers_case_insensitively() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert parse_retry_after(httpx.Headers({"Retry-After-Ms": "3000"})) == 3.0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"other": "5"},
        {"retry-after": ""},
        {"retry-after": "soon"},
        {"retry-after": "Wed, 99 Foo 2015 07:28:00 GMT"},
        {"retry-after": "nan"},
        {"retry-after-ms": "nan"},
    ],
    ids=["none", "other-header", "empty", "word", "bad-date", "nan-seconds", "nan-ms"],
)
def test_parse_retry_after_garbage_is_none(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers, now=0.0) is None
