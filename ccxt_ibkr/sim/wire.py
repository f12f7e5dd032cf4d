"""TWS socket framing and field encoding.

Every message after the ``API\\0`` greeting is a 4-byte big-endian length followed by
NUL-terminated ASCII fields. Clients parse ints with ``int()`` and bools as ``"0"``/``"1"``,
so the encoder is strict about types: a float where an int is expected (``"10.0"``) breaks
every known decoder. Sizes are the one exception that depends on the negotiated version:
below server version 163 they must be integers.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable, Sequence

UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1
#: What Java's ``Double.toString(Double.MAX_VALUE)`` prints; TWS sends unset doubles like this.
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"
#: A frame longer than this is treated as garbage rather than buffered forever.
MAX_FRAME = 16 * 1024 * 1024
#: Until startApi has been accepted a peer may send only small frames (the greeting and startApi
#: are a few dozen bytes), so a connection that never authenticates cannot make us buffer much.
HANDSHAKE_MAX_FRAME = 4096

SERVER_MAX_VERSION = 178
SERVER_MIN_VERSION = 157
#: First version with fractional sizes (``Decimal`` on the client side).
FRACTIONAL_SIZES_VERSION = 163


class ProtocolError(Exception):
    """The peer sent bytes that are not a TWS API conversation."""


def fmt_float(value: float | None) -> str:
    """Render a price the way clients accept it: no exponent for ordinary numbers."""
    if value is None:
        return ""
    if value >= UNSET_DOUBLE:
        return UNSET_DOUBLE_TEXT
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text


def fmt_size(value: float, server_version: int) -> str:
    """Sizes are decimals from v163; before that clients parse them with ``int()``."""
    if server_version < FRACTIONAL_SIZES_VERSION:
        return str(int(round(value)))
    if float(value).is_integer():
        return str(int(value))
    return fmt_float(value)


def encode_field(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return fmt_float(value)
    return str(value)


def encode_fields(fields: Iterable[object]) -> bytes:
    """One framed message: length prefix plus NUL-terminated fields."""
    payload = b"".join(encode_field(f).encode("utf-8", "replace") + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


def split_payload(payload: bytes) -> list[str]:
    """Fields of one frame; the trailing terminator yields an empty last element we drop."""
    parts = payload.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    try:
        return [p.decode("utf-8") for p in parts]
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"non-UTF-8 field: {exc}") from exc


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> bytes:
    """Read one length-prefixed frame; raises ``IncompleteReadError`` on EOF."""
    header = await reader.readexactly(4)
    (length,) = struct.unpack(">I", header)
    if length > limit:
        raise ProtocolError(f"frame of {length} bytes")
    return await reader.readexactly(length)


async def read_greeting(reader: asyncio.StreamReader) -> tuple[int, int, str]:
    """Parse ``API\\0`` + framed ``v<min>..<max>[ options]``; returns (min, max, options)."""
    prefix = await reader.readexactly(4)
    if prefix != b"API\0":
        raise ProtocolError(f"bad greeting {prefix!r}")
    text = (await read_frame(reader, HANDSHAKE_MAX_FRAME)).decode("ascii", "replace")
    versions, _, options = text.partition(" ")
    if not versions.startswith("v"):
        raise ProtocolError(f"bad version string {text!r}")
    low, sep, high = versions[1:].partition("..")
    try:
        lo = int(low)
        hi = int(high) if sep else lo
    except ValueError as exc:
        raise ProtocolError(f"bad version string {text!r}") from exc
    return lo, hi, options


def negotiate(client_min: int, client_max: int) -> int | None:
    """Highest version both sides speak, or None if the ranges do not overlap."""
    version = min(client_max, SERVER_MAX_VERSION)
    if version < max(client_min, SERVER_MIN_VERSION):
        return None
    return version


class Fields:
    """Sequential reader over one incoming message, with lenient number parsing.

    Clients send unset values either as ``""`` (ib_async) or as the Java max double (ibapi),
    so both map to None here.
    """

    def __init__(self, fields: Sequence[str]) -> None:
        self._fields = list(fields)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._fields) - self._pos

    def str(self) -> str:
        if self._pos >= len(self._fields):
            raise ProtocolError("message too short")
        value = self._fields[self._pos]
        self._pos += 1
        return value

    def int(self, default: int = 0) -> int:
        text = self.str().strip()
        if not text:
            return default
        try:
            value = int(float(text))
        except ValueError as exc:
            raise ProtocolError(f"bad int {text!r}") from exc
        return default if value == UNSET_INTEGER else value

    def float(self) -> float | None:
        text = self.str().strip()
        if not text or text.lower() in {"nan"}:
            return None
        if text == "Infinite":
            return float("inf")
        try:
            value = float(text)
        except ValueError as exc:
            raise ProtocolError(f"bad number {text!r}") from exc
        return None if value >= UNSET_DOUBLE else value

    def bool(self) -> bool:
        return self.int(0) != 0

    def skip(self, count: int = 1) -> None:
        self._pos += count
