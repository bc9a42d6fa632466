"""The fault matrix: each fault the emulator can inject, against each provider, and what must
happen. ``test_fault_matrix.py`` runs it; ``docs/reliability.md`` shows it, and
``test_reliability_doc.py`` checks that the page's tables are the ones rendered from here.

After changing the matrix, rewrite the page's tables with::

    python tests/reliability/fault_matrix.py

Every case, whatever its outcome, is also checked for what the issue asks of all faults: no
connection left open, no output repeated, no secret in any repr, message, traceback or log.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Union

import attrs

import trio_llm
from trio_llm import FinishReason
from trio_llm.testing import Fault

PROMPT = "Tell me about the weather in Oslo"
REQUEST_ID = "req-fault-matrix-42"
WITH_REQUEST_ID = {"x-request-id": REQUEST_ID}
MiB = 1024 * 1024
HUGE = 64 * MiB
#: Peak traced memory allowed for the 64 MiB event, in multiples of its size. Every decoder
#: peaks at 3.0x today (the bytes, the text, and the decoded JSON string the caller keeps, alive
#: together for a moment); one more whole copy of the event anywhere fails the test.
HUGE_PEAK_FACTOR = 4

#: Every case runs with these (on trio's MockClock, so waits are exact and instant).
TIMEOUTS = trio_llm.Timeouts(connect=5.0, first_event=20.0, idle=10.0, total=None)
DRIP_TIMEOUTS = trio_llm.Timeouts(connect=5.0, first_event=20.0, idle=10.0, total=15.0)
#: Whole bodies drip slower (a body is one event: its deadline is ``first_event``, raised here).
DRIP_WHOLE_TIMEOUTS = trio_llm.Timeouts(connect=5.0, first_event=60.0, idle=10.0, total=15.0)
POLICY = trio_llm.RetryPolicy(max_attempts=3, initial_backoff=1.0, max_backoff=8.0, retry_after_cap=60.0)
#: Jittered waits of the policy above: one retry waits 0.5-1 s, two retries 1.5-3 s in all.
ONE_RETRY = (0.5, 1.0)
TWO_RETRIES = (1.5, 3.0)

CAPTIVE_PORTAL = (
    "<!DOCTYPE html><html><head><title>Sign in to Hotel Wi-Fi</title></head>"
    "<body><form action='/login'>Room number: <input name=room></form></body></html>"
)
PROXY_PAGE = (
    "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}</h1></center>"
    "<hr><center>nginx</center></body></html>"
)


# -- targets: the columns ------------------------------------------------------------------------


@attrs.frozen
class Target:
    """One way of calling one provider.

    Attributes:
        id: The pytest id and the key of the column.
        label: The column's heading in the docs.
        provider: The provider's (and the emulator's) name.
        route: The emulator route whose requests count as attempts.
        streamed: Whether the reply is a stream of events (else one whole body).
        complete: Call ``complete()`` rather than ``stream()``.
        model: The model to ask for (the provider's default if ``None``).
    """

    id: str
    label: str
    provider: str
    route: str = "chat"
    streamed: bool = True
    complete: bool = False
    model: str | None = None


STREAMED = (
    Target("gemini", "Gemini", "gemini"),
    Target("gigachat", "GigaChat", "gigachat"),
    Target("openai", "OpenAI-compatible", "openai"),
    Target("amigochat", "AmigoChat", "amigochat"),
)
WHOLE = (
    Target("gemini-complete", "Gemini `complete()`", "gemini", streamed=False, complete=True),
    Target("gigachat-complete", "GigaChat `complete()`", "gigachat", streamed=False, complete=True),
    Target("openai-complete", "OpenAI-compatible `complete()`", "openai", streamed=False, complete=True),
    Target("dynaspark", "Dynaspark", "dynaspark", streamed=False),
    Target("amigochat-images", "AmigoChat images", "amigochat", route="images", streamed=False, model="flux/dev"),
)
TARGETS = STREAMED + WHOLE
TARGET_IDS = frozenset(target.id for target in TARGETS)


# -- outcomes: the cells -------------------------------------------------------------------------


def _seconds(span: tuple[float, float]) -> list[str]:
    low, high = span
    if high == 0:
        return []
    return [f"at {low:g} s" if low == high else f"at {low:g}-{high:g} s"]


@attrs.frozen
class Recovers:
    """The call succeeds with the same answer as without the fault.

    Attributes:
        attempts: Requests the target's route receives.
        elapsed: Virtual seconds the call takes (inclusive bounds).
        finish: The ``Finish`` expected instead of the usual one.
        oauth: GigaChat token requests the call makes (``None``: not checked).
        huge: The one text event has this many bytes (and peak memory stays bounded).
        whole: The answer came as one whole reply: the same text, usage and finish, in fewer
            events than the stream.
        note: Said in the docs after the outcome.
    """

    attempts: int = 1
    elapsed: tuple[float, float] = (0.0, 0.0)
    finish: trio_llm.Finish | None = None
    oauth: int | None = None
    huge: int | None = None
    whole: bool = False
    note: str = ""

    def describe(self) -> str:
        parts = ["recovers"]
        if self.attempts > 1:
            parts.append(f"{self.attempts} attempts")
        parts += _seconds(self.elapsed)
        if self.finish is not None:
            parts.append(f"`Finish({self.finish.reason.name}, {self.finish.raw!r})`")
        if self.huge is not None:
            parts.append(f"peak memory < {HUGE_PEAK_FACTOR}x the event")
        return ", ".join(parts) + (f"; {self.note}" if self.note else "")


@attrs.frozen
class Raises:
    """The call raises exactly this class of error.

    Attributes:
        error: The class (``type(error) is error``: no broader class will do).
        attempts: Requests the target's route receives (``None``: no server to count them).
        events: Events the caller received before the error (``None``: some, as time allowed).
        elapsed: Virtual seconds until the error (inclusive bounds).
        match: Texts the error's message must contain: what happened, or what to do.
        status: The error's ``status_code``.
        request_id: The error carries the response's ``x-request-id``.
        oauth: GigaChat token requests the call makes (``None``: not checked).
        note: Said in the docs after the outcome.
    """

    error: type[trio_llm.TrioLLMError]
    attempts: int | None = 1
    events: int | None = 0
    elapsed: tuple[float, float] = (0.0, 0.0)
    match: str | tuple[str, ...] = ""
    status: int | None = None
    request_id: bool = False
    oauth: int | None = None
    note: str = ""

    def describe(self) -> str:
        parts = [f"`{self.error.__name__}`" + (f" {self.status}" if self.status is not None else "")]
        if self.events:
            parts.append(f"after {self.events} events")
        elif self.events is None:
            parts.append("after the events so far")
        if self.attempts is None:
            parts.append("retried")
        elif self.attempts > 1:
            parts.append(f"{self.attempts} attempts")
        elif self.attempts == 0:
            parts.append("nothing sent")
        parts += _seconds(self.elapsed)
        return ", ".join(parts) + (f"; {self.note}" if self.note else "")


@attrs.frozen
class NotApplicable:
    """The fault has no meaning for this target."""

    why: str

    def describe(self) -> str:
        return f"n/a ({self.why})"


Outcome = Union[Recovers, Raises, NotApplicable]


# -- rows ----------------------------------------------------------------------------------------

ONE_EVENT = NotApplicable("a whole reply is one event")
GEMINI_ONLY = NotApplicable("Gemini only")
GIGACHAT_ONLY = NotApplicable("GigaChat only")
NO_KEY = NotApplicable("no key")
NO_ENUM = NotApplicable("no enumerated field")


@attrs.frozen
class Row:
    """One fault.

    Attributes:
        id: The pytest id.
        title: The row's heading in the docs.
        fault: Injected into the target's route (or ``route``, ``times`` times) before the call.
        whole_fault: Used instead of ``fault`` for whole-body targets.
        streamed: The outcome for streamed targets.
        whole: The outcome for whole-body targets.
        targets: Outcomes for particular targets, by id, over the two above.
        setup: A special arrangement the runner makes (see ``test_fault_matrix.SETUPS``).
        timeouts: The provider's timeouts (``whole_timeouts`` for whole bodies, if given).
        group: The heading of the table part the row belongs to.
    """

    id: str
    title: str
    streamed: Outcome
    whole: Outcome
    fault: Fault | None = None
    whole_fault: Fault | None = None
    times: int = 1
    route: str | None = None
    targets: Mapping[str, Outcome] = attrs.field(factory=dict)
    setup: str | None = None
    timeouts: trio_llm.Timeouts = TIMEOUTS
    whole_timeouts: trio_llm.Timeouts | None = None
    group: str = ""

    def __attrs_post_init__(self) -> None:
        unknown = set(self.targets) - TARGET_IDS
        if unknown:
            raise ValueError(f"row {self.id}: unknown targets {sorted(unknown)}")

    def outcome(self, target: Target) -> Outcome:
        if target.id in self.targets:
            return self.targets[target.id]
        return self.streamed if target.streamed else self.whole

    def fault_for(self, target: Target) -> Fault | None:
        if not target.streamed and self.whole_fault is not None:
            return self.whole_fault
        return self.fault

    def timeouts_for(self, target: Target) -> trio_llm.Timeouts:
        if not target.streamed and self.whole_timeouts is not None:
            return self.whole_timeouts
        return self.timeouts


def _only(ids: Sequence[str], outcome: Outcome, otherwise: Outcome) -> dict[str, Outcome]:
    return {target.id: (outcome if target.id in ids else otherwise) for target in TARGETS}


# -- error statuses, as each provider documents them, with its own body ---------------------------

#: The statuses each provider documents (or was seen to send: AmigoChat and Dynaspark have no
#: documentation), answered by the emulator with that provider's real error body.
DOCUMENTED: Mapping[str, frozenset[int]] = {
    "gemini": frozenset({400, 401, 403, 404, 429, 500, 503, 504}),
    "gigachat": frozenset({400, 401, 402, 403, 404, 413, 422, 429, 500}),
    "openai": frozenset({400, 401, 403, 404, 429, 500, 503}),
    "amigochat": frozenset({400, 402, 403, 406, 500}),
    "dynaspark": frozenset({400, 429, 500, 503}),
}
STATUS_ERRORS: Mapping[int, type[trio_llm.TrioLLMError]] = {
    400: trio_llm.BadRequestError,
    401: trio_llm.AuthenticationError,
    402: trio_llm.RateLimitError,
    403: trio_llm.PermissionDeniedError,
    404: trio_llm.NotFoundError,
    406: trio_llm.APIStatusError,
    413: trio_llm.BadRequestError,
    422: trio_llm.BadRequestError,
    429: trio_llm.RateLimitError,
    500: trio_llm.ServerError,
    503: trio_llm.ServerError,
    504: trio_llm.ServerError,
}
RETRIED = frozenset({408, 429, 500, 502, 503, 504})


#: Gemini names the canonical code of a status in its error body (shown in brackets).
GEMINI_CANONICAL = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
#: OpenAI names the error's code (or else type) in its error body (shown in brackets).
OPENAI_TAG = {429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


def _message(status: int) -> str:
    return f"the service says {status}"


def _status_match(status: int, target: Target) -> tuple[str, ...]:
    """The provider's message from its error body, its code where it sends one, and why the
    call gave up where it retried."""
    parts = [_message(status)]
    if target.provider == "gemini":
        parts.append(f"[{GEMINI_CANONICAL[status]}]")
    elif target.provider == "openai":
        parts.append(f"[{OPENAI_TAG.get(status, 'invalid_request_error')}]")
    if status in RETRIED:
        parts.append("(after 3 attempts)")
    return tuple(parts)


def _status_outcome(status: int, target: Target) -> Outcome:
    if status not in DOCUMENTED[target.provider]:
        return NotApplicable("not documented")
    retried = status in RETRIED
    if status == 401 and target.provider == "gigachat":
        # A refused token: fetch a new one and send again at once, once.
        return Raises(trio_llm.AuthenticationError, attempts=2, status=401, match=_status_match(401, target),
                      request_id=True, oauth=2, note="new token, sent again once")  # fmt: skip
    return Raises(
        STATUS_ERRORS[status],
        attempts=3 if retried else 1,
        elapsed=TWO_RETRIES if retried else (0.0, 0.0),
        status=status,
        match=_status_match(status, target),
        request_id=True,
    )


def _status_row(status: int) -> Row:
    return Row(
        f"status-{status}",
        f"HTTP {status}, the provider's own error body",
        fault=Fault(status=status, message=_message(status), headers=WITH_REQUEST_ID),
        times=3,
        streamed=NotApplicable(""),
        whole=NotApplicable(""),
        targets={target.id: _status_outcome(status, target) for target in TARGETS},
        group="Error statuses",
    )


STATUS_ROWS = [_status_row(status) for status in sorted(STATUS_ERRORS)]
STATUS_ROWS += [
    Row(
        "status-400-failed-precondition",
        "HTTP 400 `FAILED_PRECONDITION` (Gemini: region not supported)",
        fault=Fault(status=400, error_code="FAILED_PRECONDITION", message="User location is not supported for the API use."),
        streamed=GEMINI_ONLY,
        whole=GEMINI_ONLY,
        targets=_only(("gemini", "gemini-complete"), Raises(trio_llm.BadRequestError, status=400, match="User location is not supported for the API use. [FAILED_PRECONDITION]"), GEMINI_ONLY),
        group="Error statuses",
    ),
    Row(
        "status-429-insufficient-quota",
        "HTTP 429 `insufficient_quota` (OpenAI: no credit left)",
        fault=Fault(status=429, error_code="insufficient_quota", message="You exceeded your current quota."),
        times=3,
        streamed=NotApplicable("OpenAI only"),
        whole=NotApplicable("OpenAI only"),
        targets=_only(
            ("openai", "openai-complete"),
            Raises(trio_llm.RateLimitError, attempts=3, elapsed=TWO_RETRIES, status=429, match="[insufficient_quota]",
                   note="a 429 is retried whatever its code"),
            NotApplicable("OpenAI only"),
        ),
        group="Error statuses",
    ),
    Row(
        "proxy-408",
        "HTTP 408 from a proxy, as an HTML page",
        fault=Fault(status=408, body=PROXY_PAGE.format(status=408, reason="Request Timeout")),
        times=3,
        streamed=Raises(trio_llm.APIStatusError, attempts=3, elapsed=TWO_RETRIES, status=408, match="an HTML error page"),
        whole=Raises(trio_llm.APIStatusError, attempts=3, elapsed=TWO_RETRIES, status=408, match="an HTML error page"),
        group="Error statuses",
    ),
    Row(
        "proxy-502",
        "HTTP 502 from a proxy, as an HTML page",
        fault=Fault(status=502, body=PROXY_PAGE.format(status=502, reason="Bad Gateway")),
        times=3,
        streamed=Raises(trio_llm.ServerError, attempts=3, elapsed=TWO_RETRIES, status=502, match="an HTML error page (from a proxy or gateway?) (after 3 attempts)"),
        whole=Raises(trio_llm.ServerError, attempts=3, elapsed=TWO_RETRIES, status=502, match="an HTML error page (from a proxy or gateway?) (after 3 attempts)"),
        group="Error statuses",
    ),
]  # fmt: skip


# -- every other fault ---------------------------------------------------------------------------

_RECOVERS_AFTER_ONE_RETRY = Recovers(attempts=2, elapsed=ONE_RETRY)
_CAP = "not retried: the provider asked to wait 3600 s, longer than RetryPolicy.retry_after_cap (60 s)"
_NO_END = {
    "gemini": "the stream ended without a finishReason",
    "gigachat": "the stream ended before [DONE]",
    "openai": "the stream ended before [DONE]",
    "amigochat": "the stream ended before [DONE]",
}

FAULT_ROWS = [
    # -- retries and Retry-After
    Row(
        "retry-after-seconds",
        "HTTP 429 with `Retry-After: 7` (Gemini: `RetryInfo` of 7 s)",
        fault=Fault(status=429, retry_after="7"),
        streamed=Recovers(attempts=2, elapsed=(7.0, 7.0)),
        whole=Recovers(attempts=2, elapsed=(7.0, 7.0)),
        group="Retries",
    ),
    Row(
        "retry-after-http-date",
        "HTTP 503 with `Retry-After` as an HTTP date 30 s ahead",
        setup="retry-after-http-date",
        streamed=Recovers(attempts=2, elapsed=(28.5, 30.0)),
        whole=Recovers(attempts=2, elapsed=(28.5, 30.0)),
        group="Retries",
    ),
    Row(
        "retry-after-beyond-cap",
        "HTTP 429 with `Retry-After: 3600`, beyond the cap of 60 s",
        fault=Fault(status=429, retry_after="3600", headers=WITH_REQUEST_ID),
        streamed=Raises(trio_llm.RateLimitError, status=429, match=_CAP, request_id=True, note="at once"),
        whole=Raises(trio_llm.RateLimitError, status=429, match=_CAP, request_id=True, note="at once"),
        group="Retries",
    ),
    # -- the connection
    Row(
        "connection-refused",
        "Connection refused (nothing listens on the port)",
        setup="connection-refused",
        streamed=Raises(trio_llm.TransportError, attempts=None, elapsed=TWO_RETRIES, match="could not connect"),
        whole=Raises(trio_llm.TransportError, attempts=None, elapsed=TWO_RETRIES, match="could not connect"),
        group="The connection",
    ),
    Row(
        "wrong-ca",
        "TLS certificate from a CA the client does not trust",
        setup="wrong-ca",
        streamed=Raises(trio_llm.CertificateError, attempts=0, match="did not verify"),
        whole=Raises(trio_llm.CertificateError, attempts=0, match="did not verify"),
        targets={
            "gigachat": Raises(trio_llm.CertificateError, attempts=0, match="Russian Trusted Root CA"),
            "gigachat-complete": Raises(trio_llm.CertificateError, attempts=0, match="Russian Trusted Root CA"),
        },
        group="The connection",
    ),
    Row(
        "reset-before-first-event",
        "TCP reset before the first event",
        fault=Fault(reset_after=0),
        streamed=_RECOVERS_AFTER_ONE_RETRY,
        whole=_RECOVERS_AFTER_ONE_RETRY,
        group="The connection",
    ),
    Row(
        "reset-mid-stream",
        "TCP reset after 2 events",
        fault=Fault(reset_after=2),
        streamed=Raises(trio_llm.TransportError, events=2, match="connection failed while reading the response"),
        whole=ONE_EVENT,
        group="The connection",
    ),
    Row(
        "headers-then-silence",
        "Headers, then silence",
        fault=Fault(stall_after=0),
        streamed=Raises(trio_llm.FirstEventTimeout, elapsed=(20.0, 20.0), match="no event within 20.0 s"),
        whole=Raises(trio_llm.FirstEventTimeout, elapsed=(20.0, 20.0), match="no event within 20.0 s"),
        group="The connection",
    ),
    Row(
        "silence-mid-stream",
        "Silence after 2 events",
        fault=Fault(stall_after=2),
        streamed=Raises(trio_llm.IdleTimeout, events=2, elapsed=(10.0, 10.0), match="no event for 10.0 s"),
        whole=ONE_EVENT,
        group="The connection",
    ),
    Row(
        "slow-drip",
        "Slow drip: one byte at a time, under the idle deadline, past the total one (15 s)",
        fault=Fault(drip=0.01),
        whole_fault=Fault(drip=0.5),
        timeouts=DRIP_TIMEOUTS,
        whole_timeouts=DRIP_WHOLE_TIMEOUTS,
        streamed=Raises(trio_llm.TotalTimeout, events=None, elapsed=(15.0, 15.0), match="longer than 15.0 s"),
        whole=Raises(trio_llm.TotalTimeout, elapsed=(15.0, 15.0), match="longer than 15.0 s"),
        group="The connection",
    ),
    Row(
        "truncated-before-first-event",
        "Connection closed before the first event (a whole body: halfway)",
        fault=Fault(truncate_after=0),
        streamed=_RECOVERS_AFTER_ONE_RETRY,
        whole=_RECOVERS_AFTER_ONE_RETRY,
        group="The connection",
    ),
    Row(
        "truncated-between-events",
        "Connection closed after 2 events",
        fault=Fault(truncate_after=2),
        streamed=Raises(trio_llm.StreamTruncatedError, events=2, match="closed before the response was complete"),
        whole=ONE_EVENT,
        group="The connection",
    ),
    Row(
        "truncated-mid-event",
        "Connection closed in the middle of the 3rd event",
        fault=Fault(truncate_after=2, truncate_mid_event=True),
        streamed=Raises(trio_llm.StreamTruncatedError, events=2, match="closed before the response was complete"),
        whole=ONE_EVENT,
        group="The connection",
    ),
    Row(
        "ended-without-end-marker",
        "Response ended cleanly after 2 events, without the end marker (a whole body: half of it)",
        fault=Fault(truncate_after=2, truncate_cleanly=True),
        streamed=NotApplicable(""),
        whole=Raises(trio_llm.ProtocolError, match="malformed JSON"),
        targets={
            target.id: Raises(trio_llm.StreamTruncatedError, events=2, match=_NO_END[target.id]) for target in STREAMED
        },
        group="The connection",
    ),
    # -- the payload
    Row(
        "malformed-json",
        "Malformed JSON event (after 2 events)",
        fault=Fault(malformed_after=2),
        streamed=Raises(trio_llm.ProtocolError, events=2, match="malformed JSON"),
        whole=Raises(trio_llm.ProtocolError, match="malformed JSON"),
        group="The payload",
    ),
    Row(
        "invalid-utf8",
        "Invalid UTF-8 (after 2 events)",
        fault=Fault(invalid_utf8_after=2),
        streamed=Raises(trio_llm.ProtocolError, events=2, match="not valid UTF-8"),
        whole=Raises(trio_llm.ProtocolError, match="not valid UTF-8"),
        group="The payload",
    ),
    Row(
        "wrong-content-type",
        "Wrong `Content-Type` (`text/plain`) on a good reply",
        fault=Fault(content_type="text/plain; charset=utf-8"),
        streamed=Recovers(note="the decoder checks the payload itself"),
        whole=Recovers(note="the decoder checks the payload itself"),
        group="The payload",
    ),
    Row(
        "whole-reply-to-a-stream",
        "One whole JSON reply to a streamed request (a server that ignores `stream`)",
        fault=Fault(whole_reply=True),
        streamed=Recovers(whole=True, note="read as the whole reply it is"),
        whole=NotApplicable("already a whole reply"),
        group="The payload",
    ),
    Row(
        "json-error-instead-of-a-stream",
        "A JSON error object (503) with status 200 instead of the stream",
        fault=Fault(whole_reply=True, error_after=0, error_status=503),
        streamed=_RECOVERS_AFTER_ONE_RETRY,
        whole=NotApplicable("see error object inside a 200 reply"),
        group="The payload",
    ),
    Row(
        "html-page-200",
        "HTML page with status 200 (a captive portal)",
        fault=Fault(status=200, body=CAPTIVE_PORTAL),
        streamed=Raises(trio_llm.ProtocolError, match="HTML page ('Sign in to Hotel Wi-Fi')"),
        whole=Raises(trio_llm.ProtocolError, match="HTML page ('Sign in to Hotel Wi-Fi')"),
        group="The payload",
    ),
    Row(
        "gzip",
        "gzip-encoded body",
        fault=Fault(gzip=True),
        streamed=Recovers(),
        whole=Recovers(),
        group="The payload",
    ),
    Row(
        "bad-gzip",
        "`Content-Encoding: gzip` on a body that is not gzip",
        fault=Fault(headers={"content-encoding": "gzip"}),
        streamed=Raises(trio_llm.ProtocolError, match="bad Content-Encoding"),
        whole=Raises(trio_llm.ProtocolError, match="bad Content-Encoding"),
        group="The payload",
    ),
    Row(
        "huge-event",
        "A single 64 MiB event",
        fault=Fault(huge_event=HUGE),
        streamed=Recovers(huge=HUGE),
        whole=Recovers(huge=HUGE),
        targets={"amigochat-images": NotApplicable("the reply is a list of image URLs")},
        group="The payload",
    ),
    Row(
        "unknown-fields",
        "Unknown fields (and a new enum value) in every JSON object",
        fault=Fault(unknown_fields=True),
        streamed=Recovers(),
        whole=Recovers(),
        group="The payload",
    ),
    Row(
        "unknown-finish-reason",
        "Unknown finish reason",
        fault=Fault(finish_reason="SOMETHING_NEW"),
        streamed=Recovers(finish=trio_llm.Finish(FinishReason.OTHER, "SOMETHING_NEW")),
        whole=Recovers(finish=trio_llm.Finish(FinishReason.OTHER, "SOMETHING_NEW")),
        targets={"dynaspark": NO_ENUM, "amigochat-images": NO_ENUM},
        group="The payload",
    ),
    Row(
        "unknown-block-reason",
        "Prompt blocked for an unknown reason (no candidates)",
        fault=Fault(block_reason="SOMETHING_NEW"),
        streamed=GEMINI_ONLY,
        whole=GEMINI_ONLY,
        targets=_only(("gemini", "gemini-complete"), Raises(trio_llm.ContentBlockedError, match="blocked (SOMETHING_NEW)"), GEMINI_ONLY),
        group="The payload",
    ),
    Row(
        "error-in-200-stream",
        "Error object (503) inside a 200 stream, after 2 events",
        fault=Fault(error_after=2, error_status=503, headers=WITH_REQUEST_ID),
        streamed=Raises(trio_llm.ServerError, events=2, status=503, request_id=True),
        whole=ONE_EVENT,
        group="The payload",
    ),
    Row(
        "error-in-200-before-first-event",
        "Error object (503) inside a 200 reply, before any event",
        fault=Fault(error_after=0, error_status=503),
        streamed=_RECOVERS_AFTER_ONE_RETRY,
        whole=_RECOVERS_AFTER_ONE_RETRY,
        group="The payload",
    ),
    Row(
        "error-400-in-200",
        "Error object (400) inside a 200 reply, before any event",
        fault=Fault(error_after=0, error_status=400, headers=WITH_REQUEST_ID),
        streamed=Raises(trio_llm.BadRequestError, status=400, request_id=True),
        whole=Raises(trio_llm.BadRequestError, status=400, request_id=True),
        targets={"dynaspark": Recovers(attempts=2, elapsed=ONE_RETRY, note="its error object has no status: a 500")},
        group="The payload",
    ),
    # -- credentials
    Row(
        "wrong-key",
        "Wrong API key (GigaChat: wrong credentials)",
        setup="wrong-key",
        streamed=NO_KEY,
        whole=NO_KEY,
        targets={
            "gemini": Raises(trio_llm.AuthenticationError, status=400, match="API key not valid"),
            "gemini-complete": Raises(trio_llm.AuthenticationError, status=400, match="API key not valid"),
            "openai": Raises(trio_llm.AuthenticationError, status=401, match="Incorrect API key provided"),
            "openai-complete": Raises(trio_llm.AuthenticationError, status=401, match="Incorrect API key provided"),
            "gigachat": Raises(trio_llm.AuthenticationError, attempts=0, status=401, match="check the authorization key", oauth=1),
            "gigachat-complete": Raises(trio_llm.AuthenticationError, attempts=0, status=401, match="check the authorization key", oauth=1),
        },
        group="Credentials",
    ),
    Row(
        "oauth-503",
        "GigaChat token endpoint answers 503",
        fault=Fault(status=503, message="the token service is down", headers=WITH_REQUEST_ID),
        times=3,
        route="oauth",
        streamed=GIGACHAT_ONLY,
        whole=GIGACHAT_ONLY,
        targets=_only(("gigachat", "gigachat-complete"), Raises(trio_llm.ServerError, attempts=0, elapsed=TWO_RETRIES, status=503, request_id=True, oauth=3, match=("OAuth: the token service is down", "(after 3 attempts)"), note="3 token requests, no chat request"), GIGACHAT_ONLY),
        group="Credentials",
    ),
    Row(
        "oauth-wrong-scope",
        "GigaChat credentials without the scope asked for",
        setup="wrong-scope",
        streamed=GIGACHAT_ONLY,
        whole=GIGACHAT_ONLY,
        targets=_only(("gigachat", "gigachat-complete"), Raises(trio_llm.AuthenticationError, attempts=0, status=400, oauth=1, match="check that your key has scope 'GIGACHAT_API_B2B'"), GIGACHAT_ONLY),
        group="Credentials",
    ),
    Row(
        "token-revoked",
        "GigaChat access token revoked mid-run (the next request gets 401)",
        setup="token-revoked",
        streamed=GIGACHAT_ONLY,
        whole=GIGACHAT_ONLY,
        targets=_only(("gigachat", "gigachat-complete"), Recovers(attempts=2, oauth=1, note="one new token, sent again at once"), GIGACHAT_ONLY),
        group="Credentials",
    ),
    Row(
        "token-expired",
        "GigaChat access token expiring mid-run (lifetime 120 s, next call at 100 s)",
        setup="token-expired",
        streamed=GIGACHAT_ONLY,
        whole=GIGACHAT_ONLY,
        targets=_only(("gigachat", "gigachat-complete"), Recovers(oauth=1, note="renewed before it expires, no 401"), GIGACHAT_ONLY),
        group="Credentials",
    ),
]  # fmt: skip

ROWS = [*STATUS_ROWS, *FAULT_ROWS]


@attrs.frozen
class Case:
    """One cell that runs: a row against a target."""

    row: Row
    target: Target

    @property
    def outcome(self) -> Recovers | Raises:
        outcome = self.row.outcome(self.target)
        assert not isinstance(outcome, NotApplicable)
        return outcome

    def __str__(self) -> str:
        return f"{self.row.id}-{self.target.id}"


CASES = [Case(row, target) for row in ROWS for target in TARGETS if not isinstance(row.outcome(target), NotApplicable)]


# -- the tables in docs/reliability.md ----------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
BEGIN = "<!-- fault matrix: generated by tests/reliability/fault_matrix.py, do not edit by hand -->"
END = "<!-- end of the fault matrix -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_tables() -> str:
    """The Markdown tables: streamed replies, then whole replies; rows grouped as above."""
    parts = []
    for heading, targets in (("Streamed replies", STREAMED), ("Whole replies", WHOLE)):
        parts.append(f"### {heading}\n")
        group = None
        for row in ROWS:
            cells = [row.outcome(target) for target in targets]
            if all(isinstance(cell, NotApplicable) for cell in cells):
                continue
            if row.group != group:
                group = row.group
                parts.append(f"\n#### {group}\n\n")
                parts.append("| Fault | " + " | ".join(target.label for target in targets) + " |\n")
                parts.append("| --- " * (len(targets) + 1) + "|\n")
            parts.append(f"| {_cell(row.title)} | " + " | ".join(_cell(cell.describe()) for cell in cells) + " |\n")
        parts.append("\n")
    return "".join(parts).rstrip("\n") + "\n"


def tables_in_doc(text: str) -> str:
    """The generated part of the page."""
    found = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.DOTALL)
    if found is None:
        raise ValueError(f"{DOC} has no fault matrix markers")
    return found.group(1).strip("\n") + "\n"


def write_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END)
    DOC.write_text(text[:start] + "\n\n" + render_tables() + "\n" + text[end:], encoding="utf-8")


if __name__ == "__main__":
    write_doc()
    sys.stdout.write(f"rewrote the fault matrix in {DOC}\n")
