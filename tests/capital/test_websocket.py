"""The streaming WebSocket client (ccxt_capital.websocket) against a server speaking raw RFC 6455 frames.

The simulator's aiohttp server never fragments a message, pings or closes first; this server does each,
byte by byte, so every branch of the client's frame reader meets a real socket. Waits are on events.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ccxt_capital.websocket import HandshakeError, WebSocket

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def frame(opcode: int, payload: bytes, final: bool = True) -> bytes:
    size = len(payload)
    first = (0x80 if final else 0) | opcode
    if size < 126:
        return struct.pack("!BB", first, size) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """A client frame, unmasked (clients must mask every frame)."""
    first, second = await reader.readexactly(2)
    assert second & 0x80, "client frames are masked"
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4)
    data = await reader.readexactly(size)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, status: str = "101 Switching",
                 wrong_key: bool = False) -> None:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    key = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
               if line.lower().startswith("sec-websocket-key"))
    accept_key = base64.b64encode(hashlib.sha1((key + ("x" if wrong_key else "")).encode() + GUID).digest()).decode()
    writer.write(f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Accept: {accept_key}\r\n\r\n".encode())


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await script(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/connect"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_messages_of_every_shape_arrive_whole_and_pings_are_answered(serve) -> None:
    echoed: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
    pong: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
    big = "x" * 70_000

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        echoed.set_result(await read_frame(reader))  # what the client sent, unmasked
        writer.write(frame(0x1, b'{"a":') + frame(0x9, b"hi"))  # a message, and a ping before the next
        pong.set_result(await read_frame(reader))
        # One message in two fragments with a binary message in none of them, a binary one (ignored),
        # and messages needing the 16- and 64-bit lengths, all in one write: the reader splits them.
        writer.write(frame(0x1, b'{"b":', final=False) + frame(0x0, b"1}") + frame(0x2, b"\x00\x01")
                     + frame(0x1, ('"' + "y" * 300 + '"').encode()) + frame(0x1, f'"{big}"'.encode()))
        writer.write(frame(0x8, struct.pack("!H", 1000)))
        await reader.read()  # the client's close, then EOF

    got: list[str] = []
    ws = await WebSocket.connect(await serve(script), got.append, timeout=5)
    ws.send_text("hello")
    assert await asyncio.wait_for(echoed, 5) == (0x1, b"hello")
    assert await asyncio.wait_for(pong, 5) == (0xA, b"hi")
    await asyncio.wait_for(ws.lost, 5)
    assert got == ['{"a":', '{"b":1}', '"' + "y" * 300 + '"', f'"{big}"']
    assert ws.closed


async def test_a_refused_upgrade_and_a_wrong_accept_key_fail_the_connect(serve) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer, status="403 Forbidden")
        await reader.read()

    async def wrong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer, wrong_key=True)
        await reader.read()

    with pytest.raises(HandshakeError, match="403"):
        await WebSocket.connect(await serve(refuse), print, timeout=5)
    with pytest.raises(HandshakeError, match="Accept"):
        await WebSocket.connect(await serve(wrong), print, timeout=5)


async def test_a_failing_handler_and_a_masked_server_frame(serve) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        writer.write(frame(0x1, b"boom") + frame(0x1, b"ok"))
        writer.write(struct.pack("!BB", 0x81, 0x80 | 2) + b"\0\0\0\0ok")  # masked: a protocol error
        await reader.read()

    got: list[str] = []

    def handler(text: str) -> None:
        if text == "boom":
            raise ValueError(text)
        got.append(text)

    ws = await WebSocket.connect(await serve(script), handler, timeout=5)
    await asyncio.wait_for(ws.lost, 5)
    assert got == ["ok"]  # the failing message did not end the stream; the protocol error did
    with pytest.raises(ConnectionError):
        ws.send_text("late")
