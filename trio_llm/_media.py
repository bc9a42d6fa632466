"""Images going in: magic-byte sniffing, data URIs, and the seeds' ``media=`` list."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from typing import Union

from ._errors import InvalidRequestError

__all__ = ["MediaItem", "MediaList", "decode_data_uri", "load_media", "sniff_image_type"]

#: One ``media=`` entry: the image (bytes, a path, or a ``data:`` URI) and an optional filename.
MediaItem = tuple[Union[bytes, str, "os.PathLike[str]"], Union[str, None]]
MediaList = Sequence[MediaItem]

SUPPORTED_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def sniff_image_type(data: bytes) -> str | None:
    """The image mime type from the magic bytes (png, jpeg, gif, webp), else ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def require_image_type(data: bytes, where: str) -> str:
    """Sniff, or raise :class:`InvalidRequestError` naming ``where`` and the first bytes."""
    mime = sniff_image_type(data)
    if mime is None:
        head = data[:8].hex(" ") if data else "empty"
        raise InvalidRequestError(f"{where}: not a supported image (png, jpeg, gif or webp); first bytes: {head}")
    return mime


def decode_data_uri(uri: str, where: str) -> tuple[bytes, str | None]:
    """Decode ``data:<mime>;base64,<data>`` into bytes and the declared mime type."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.startswith("data:"):
        raise InvalidRequestError(f"{where}: malformed data URI (expected data:<type>;base64,...)")
    meta = header[5:].split(";")
    if "base64" not in meta[1:]:
        raise InvalidRequestError(f"{where}: only base64 data URIs are supported")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(f"{where}: data URI payload is not valid base64") from exc
    return data, (meta[0] or None)


def load_media(media: MediaList) -> list[tuple[bytes, str]]:
    """Turn a ``media=`` list into ``(bytes, mime_type)`` pairs, checking every item.

    Paths are read synchronously: they are small local files, and reading them here keeps
    :meth:`stream` an ordinary function that fails before any I/O on bad input.
    """
    out: list[tuple[bytes, str]] = []
    for index, item in enumerate(media):
        where = f"media[{index}]"
        if not isinstance(item, tuple) or len(item) != 2:
            raise InvalidRequestError(f"{where}: expected a (data, filename) pair")
        source, _filename = item
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
        elif isinstance(source, str) and source.startswith("data:"):
            data, _declared = decode_data_uri(source, where)
        elif isinstance(source, str | os.PathLike):
            try:
                with open(source, "rb") as file:
                    data = file.read()
            except OSError as exc:
                raise InvalidRequestError(f"{where}: cannot read {os.fspath(source)!r}: {exc.strerror}") from exc
        else:
            raise InvalidRequestError(f"{where}: expected bytes, a path or a data URI, got {type(source).__name__}")
        out.append((data, require_image_type(data, where)))
    return out
