"""The typed events a provider stream yields, and the :class:`Reply` that aggregates them.

Every provider decodes its own wire format into these classes, so code that consumes a
stream never needs to know which provider produced it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import attrs

__all__ = [
    "Event",
    "Finish",
    "FinishReason",
    "ImageOutput",
    "ReasoningDelta",
    "Reply",
    "ReplyBuilder",
    "TextDelta",
    "ToolCall",
    "Usage",
]


@attrs.frozen
class Event:
    """Base class of every stream event."""


@attrs.frozen
class TextDelta(Event):
    """A piece of the answer's text, in order."""

    text: str


@attrs.frozen
class ReasoningDelta(Event):
    """A piece of the model's "thoughts", where the provider sends them."""

    text: str


def _short_args(value: dict[str, Any]) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


@attrs.frozen
class ToolCall(Event):
    """One complete call of a tool the caller declared.

    Attributes:
        id: The call id; pass it back with :func:`trio_llm.tool_result`.
        name: The tool's name.
        arguments: The arguments, decoded from JSON.
        thought_signature: Gemini's opaque signature of the reasoning that led to the call;
            sent back with the call in the next turn, as thinking models require.
    """

    id: str
    name: str
    arguments: dict[str, Any] = attrs.field(repr=_short_args)
    thought_signature: str | None = attrs.field(default=None, kw_only=True, repr=False)


def _short_bytes(value: bytes | None) -> str:
    return "None" if value is None else f"<{len(value)} bytes>"


@attrs.frozen
class ImageOutput(Event):
    """An image the model produced: a URL, or the bytes themselves."""

    url: str | None = None
    data: bytes | None = attrs.field(default=None, repr=_short_bytes)
    mime_type: str | None = None


@attrs.frozen
class Usage(Event):
    """Token counts. The last ``Usage`` in a stream is the final count."""

    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None


class FinishReason(enum.Enum):
    """Why the model stopped, in provider-neutral terms (the provider's value is in ``raw``)."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    ERROR = "error"
    OTHER = "other"


@attrs.frozen
class Finish(Event):
    """The provider finished normally. Exactly one ends every complete stream."""

    reason: FinishReason
    raw: str | None = None


@attrs.frozen
class Reply:
    """A whole answer: what :meth:`~trio_llm.Provider.complete` returns, or a stream collected.

    Attributes:
        text: The answer's text.
        reasoning: The model's thoughts, where sent ("" otherwise).
        tool_calls: The tool calls, in order.
        images: The images produced, in order.
        usage: The final token counts, when the provider sent them.
        finish: How the answer ended (``None`` only for replies built by hand).
        provider: The provider's name.
        model: The model that answered.
    """

    text: str
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    images: tuple[ImageOutput, ...] = ()
    usage: Usage | None = None
    finish: Finish | None = None
    provider: str = ""
    model: str = ""

    @classmethod
    def from_events(cls, events: Iterable[Event], *, provider: str = "", model: str = "") -> Reply:
        """Aggregate a sequence of events into a reply."""
        builder = ReplyBuilder(provider=provider, model=model)
        for event in events:
            builder.add(event)
        return builder.build()


@attrs.define
class ReplyBuilder:
    """Accumulates events into a :class:`Reply` without quadratic string building."""

    provider: str = ""
    model: str = ""
    _text: list[str] = attrs.field(factory=list)
    _reasoning: list[str] = attrs.field(factory=list)
    _tool_calls: list[ToolCall] = attrs.field(factory=list)
    _images: list[ImageOutput] = attrs.field(factory=list)
    _usage: Usage | None = None
    _finish: Finish | None = None

    def add(self, event: Event) -> None:
        """Take one event into account."""
        if type(event) is TextDelta:
            self._text.append(event.text)
        elif type(event) is ReasoningDelta:
            self._reasoning.append(event.text)
        elif type(event) is ToolCall:
            self._tool_calls.append(event)
        elif type(event) is ImageOutput:
            self._images.append(event)
        elif type(event) is Usage:
            self._usage = event
        elif type(event) is Finish:
            self._finish = event

    def build(self) -> Reply:
        """The reply so far."""
        return Reply(
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=tuple(self._tool_calls),
            images=tuple(self._images),
            usage=self._usage,
            finish=self._finish,
            provider=self.provider,
            model=self.model,
        )
