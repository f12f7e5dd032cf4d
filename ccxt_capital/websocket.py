"""A small WebSocket client (RFC 6455) that hands each message over inside the socket's read callback.

Why not aiohttp's, which carried the stream before: a message reached the adapter through aiohttp's
queue, a reader task and ``receive()``, a loop turn and a few hundred lines of Python between the socket
and the watcher. On a quote stream that path runs cold (a quote every few milliseconds leaves the CPU's
caches to others), and there every line costs several times its warm price: bench/bench_streams.py
measured ``watch_ticker`` at 1.02-1.36x a bare aiohttp client reading the same socket. Here the frame is
parsed and given to ``on_text`` in ``data_received``, so the watcher's future is resolved in the very
callback that read the bytes.

Scope, which is what Capital.com's streaming API uses: text messages (fragmented or not), ping / pong,
the closing handshake, ``ws://`` and ``wss://`` (the system's CA store); no extensions are offered (no
permessage-deflate) and no proxy is used (the aiohttp session before used none either).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import ssl
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

log = logging.getLogger("ccxt_capital")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 16 * 1024 * 1024  # a quote is ~200 bytes: a message this large is a broken peer
MAX_HEAD = 64 * 1024  # the handshake's answer
_TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(ConnectionError):
    """The server did not switch to the WebSocket protocol (its status line says why)."""


class WebSocket(asyncio.Protocol):
    """One client connection; build it with :meth:`connect`.

    ``on_text(message)`` runs for each text message in the read callback (it must not block; an exception
    it raises is logged, never the connection's end). ``lost`` is done once the connection ended, for
    whatever reason (``closed`` tells whether :meth:`close` asked for it).
    """

    def __init__(self, on_text: Callable[[str], None], key: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.on_text = on_text
        self.closed = False
        self.lost: asyncio.Future[None] = loop.create_future()
        self._opened: asyncio.Future[None] = loop.create_future()
        self._key = key
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._kind: int | None = None  # the opcode of a fragmented message under way
        self._transport: asyncio.Transport | None = None

    @classmethod
    async def connect(cls, url: str, on_text: Callable[[str], None], *, timeout: float = 10.0,
                      ssl_context: ssl.SSLContext | None = None) -> WebSocket:
        """Open ``url`` (``ws://`` or ``wss://``) and complete the handshake within ``timeout`` seconds."""
        parts = urlsplit(url)
        secure = parts.scheme == "wss"
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a WebSocket URL: {url!r}")
        port = parts.port or (443 if secure else 80)
        key = base64.b64encode(os.urandom(16))
        loop = asyncio.get_running_loop()
        tls = (ssl_context or ssl.create_default_context()) if secure else None

        async def open_() -> WebSocket:
            _, protocol = await loop.create_connection(lambda: cls(on_text, key), parts.hostname, port, ssl=tls,
                                                       server_hostname=parts.hostname if tls else None)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            protocol._write(
                f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            try:
                await protocol._opened
            except BaseException:
                protocol.abort()
                raise
            return protocol

        return await asyncio.wait_for(open_(), timeout)

    # ------------------------------------------------------------------ sending

    def send_text(self, text: str) -> None:
        """Send one text message (raises ConnectionError once the connection is down)."""
        self._send(_TEXT, text.encode())

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake and end the connection (the transport flushes what is queued)."""
        if self.closed:
            return
        self.closed = True
        transport = self._transport
        if transport is not None and not transport.is_closing():
            self._send(_CLOSE, struct.pack("!H", code))
            transport.close()

    def abort(self) -> None:
        """Cut the connection at once, as a network failure would (no closing handshake)."""
        if self._transport is not None:
            self._transport.abort()

    def _send(self, opcode: int, payload: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionError("the WebSocket connection is closed")
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0xFE, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0xFF, size)
        mask = os.urandom(4)
        transport.write(head + mask + _masked(payload, mask))

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    # ------------------------------------------------------------------ receiving (asyncio.Protocol)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self._opened.done():
            self._opened.set_exception(exc or ConnectionError("the connection closed during the handshake"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._opened.done() and not self._handshake():
            return
        try:
            while self._frame():
                pass
        except ConnectionError as error:
            log.warning("WebSocket: %s; closing the connection", error)
            self.close(1002)

    def _handshake(self) -> bool:
        """The server's answer to the upgrade, once it is all in; True once frames may follow."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                self._fail(HandshakeError("the server's handshake answer is too long"))
            return False
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        del buffer[: end + 4]
        status = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        expected = base64.b64encode(hashlib.sha1(self._key + _GUID).digest()).decode()
        if len(status) < 2 or status[1] != "101":
            self._fail(HandshakeError(f"the server refused the WebSocket upgrade: {lines[0]}"))
            return False
        if headers.get("sec-websocket-accept") != expected:
            self._fail(HandshakeError("the server's Sec-WebSocket-Accept does not match the key sent"))
            return False
        self._opened.set_result(None)
        return True

    def _fail(self, error: Exception) -> None:
        if not self._opened.done():
            self._opened.set_exception(error)
        self.abort()

    def _frame(self) -> bool:
        """Take one whole frame off the buffer and act on it; False when the buffer holds none."""
        buffer = self._buffer
        if len(buffer) < 2:
            return False
        first, second = buffer[0], buffer[1]
        if second & 0x80:
            raise ConnectionError("the server masked a frame (RFC 6455 5.1 forbids it)")
        size, start = second & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                return False
            size, start = struct.unpack_from("!H", buffer, 2)[0], 4
        elif size == 127:
            if len(buffer) < 10:
                return False
            size, start = struct.unpack_from("!Q", buffer, 2)[0], 10
        if size > MAX_MESSAGE:
            raise ConnectionError(f"a frame of {size} bytes")
        end = start + size
        if len(buffer) < end:
            return False
        payload = bytes(buffer[start:end])
        del buffer[:end]
        opcode = first & 0x0F
        if opcode == _TEXT or opcode == _BINARY or opcode == 0:
            self._data(opcode, payload, bool(first & 0x80))
        elif opcode == _PING:
            self._send(_PONG, payload)
        elif opcode == _CLOSE:
            self.close(struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1000)
        return True

    def _data(self, opcode: int, payload: bytes, final: bool) -> None:
        if opcode == _TEXT and final and self._kind is None:  # the usual message: one frame
            self._deliver(payload)
            return
        if opcode == 0:
            if self._kind is None:
                raise ConnectionError("a continuation frame with no message to continue")
        elif self._kind is not None:
            raise ConnectionError("a new message began before the last one ended")
        else:
            self._kind = opcode
        self._fragments.append(payload)
        if not final:
            if sum(len(f) for f in self._fragments) > MAX_MESSAGE:
                raise ConnectionError("a fragmented message over the size limit")
            return
        kind, message = self._kind, b"".join(self._fragments)
        self._kind, self._fragments = None, []
        if kind == _TEXT:
            self._deliver(message)
        # a binary message: Capital sends none, nothing here reads one

    def _deliver(self, payload: bytes) -> None:
        try:
            self.on_text(payload.decode())
        except Exception:  # noqa: BLE001 - one bad message must not end the stream
            log.exception("WebSocket: handling a message failed")


def _masked(payload: bytes, mask: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte ``mask`` (as one big integer: no per-byte Python loop)."""
    size = len(payload)
    if not size:
        return b""
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")
