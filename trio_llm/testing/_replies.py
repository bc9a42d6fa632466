"""Deterministic reply text for the emulator: the same prompt always gets the same answer."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["chunk_words", "last_word", "reply_text", "tool_arguments", "word_count", "word_pieces"]

_ADJECTIVES = "quiet old small patient curious bright silver narrow green sleepy brave gentle".split()
_NOUNS = (
    "lantern river clockmaker fox boat town moon bridge traveller window baker lighthouse garden bell map harbour"
).split()
_VERBS = "carried watched followed found crossed remembered guarded painted counted greeted".split()
_PLACES = (
    "past the sleeping town|under the patient moon|across the old bridge|along the narrow streets|"
    "beside the silver river|through the quiet garden|near the bright harbour|above the green hill"
).split("|")
_ENDINGS = (
    "and nobody forgot it|until the morning came|while the bells were ringing|as the rain began|"
    "before the tide turned|and the night felt shorter"
).split("|")


class _Rng:
    """A tiny linear congruential generator: deterministic across Python versions."""

    def __init__(self, seed: bytes) -> None:
        self.state = int.from_bytes(seed[:8], "big")

    def pick(self, options: list[str]) -> str:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return options[(self.state >> 33) % len(options)]


def _sentence(rng: _Rng) -> str:
    subject = f"{rng.pick(_ADJECTIVES)} {rng.pick(_NOUNS)}"
    verb = rng.pick(_VERBS)
    adjective = rng.pick(_ADJECTIVES)
    article = "an" if adjective[0] in "aeiou" else "a"
    return f"The {subject} {verb} {article} {adjective} {rng.pick(_NOUNS)} {rng.pick(_PLACES)} {rng.pick(_ENDINGS)}."


#: Words of new sentences in a reply; a longer one repeats them (a 64 MiB reply, 11 million
#: words, is made in a fraction of a second instead of seconds).
_FRESH_WORDS = 20_000


def reply_text(prompt: str, words: int) -> str:
    """A readable, deterministic answer of exactly ``words`` words, seeded by the prompt.

    Past the first 20,000 words (and a sentence) the answer repeats itself.
    """
    if words <= 0:
        return ""
    rng = _Rng(hashlib.sha256(prompt.encode("utf-8")).digest())
    out: list[str] = []
    while len(out) < min(words, _FRESH_WORDS):
        out.extend(_sentence(rng).split(" "))
    if len(out) < words:
        out *= -(-words // len(out))
    out = out[:words]
    if not out[-1].endswith("."):
        out[-1] += "."
    return " ".join(out)


def word_pieces(text: str) -> int:
    """``len(text.split(" "))`` for non-empty text (0 for empty), without splitting it."""
    return text.count(" ") + 1 if text else 0


def chunk_words(text: str, per_chunk: int) -> list[str]:
    """Split ``text`` into pieces of ``per_chunk`` words; joined they give ``text`` back."""
    if not text:
        return []
    if word_pieces(text) <= per_chunk:
        return [text]  # one piece (without splitting and joining millions of words)
    words = text.split(" ")
    per_chunk = max(1, per_chunk)
    pieces = []
    for start in range(0, len(words), per_chunk):
        piece = " ".join(words[start : start + per_chunk])
        pieces.append(piece if start == 0 else " " + piece)
    return pieces


#: What ``str.split()`` splits on besides the space, in ASCII text.
_OTHER_ASCII_SPACE = ("\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f")


def word_count(text: str) -> int:
    """Tokens, as the emulator counts them: words (``len(text.split())``)."""
    if len(text) > 4096 and text.isascii() and "  " not in text and not any(c in text for c in _OTHER_ASCII_SPACE):
        # Single spaces only: count them rather than make millions of strings.
        return text.count(" ") + 1 - text.startswith(" ") - text.endswith(" ")
    return len(text.split())


def last_word(text: str) -> str:
    """The last word of ``text`` without punctuation (used as a tool-call argument)."""
    words = re.findall(r"[\w-]+", text)
    return words[-1] if words else "example"


def _argument_value(schema: Any, prompt: str) -> Any:
    kind = str(schema.get("type", "string") if isinstance(schema, dict) else "string").lower()
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [last_word(prompt)]
    if kind == "object":
        return {}
    if isinstance(schema, dict) and isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    return last_word(prompt)


def tool_arguments(properties: Mapping[str, Any], prompt: str) -> dict[str, Any]:
    """Deterministic arguments for a tool call: strings get the prompt's last word, enums
    their first value, numbers 1 or 1.5, booleans true."""
    return {name: _argument_value(schema, prompt) for name, schema in properties.items()}
