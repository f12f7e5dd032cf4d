"""A minimal raw TWS-protocol client for tests that need bytes the real libraries never send
(old version ranges such as PyPI ibapi's v100..157, garbage, half messages)."""

from __future__ import annotations

import asyncio
import struct


class RawClient:
    """Frames and reads messages by hand; no decoding beyond splitting fields."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, *fields: object) -> None:
        payload = b"".join(str(f).encode() + b"\0" for f in fields)
        self.writer.write(struct.pack(">I", len(payload)) + payload)

    async def handshake(self, lo: int, hi: int, client_id: int) -> int:
        text = f"v{lo}..{hi}".encode()
        self.writer.write(b"API\0" + struct.pack(">I", len(text)) + text)
        version, _when = await self.read()
        self.send(71, 2, client_id, "")
        return int(version)

    async def read(self, timeout: float = 5.0) -> list[str]:
        header = await asyncio.wait_for(self.reader.readexactly(4), timeout)
        (length,) = struct.unpack(">I", header)
        payload = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        parts = payload.split(b"\0")
        return [p.decode() for p in parts[:-1]]

    async def read_until(self, msg_id: int, timeout: float = 5.0) -> tuple[list[list[str]], list[str]]:
        seen: list[list[str]] = []
        while True:
            fields = await self.read(timeout)
            if int(fields[0]) == msg_id:
                return seen, fields
            seen.append(fields)

    async def closed(self, timeout: float = 5.0) -> bool:
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not data:
                    return True
        except (ConnectionError, asyncio.IncompleteReadError):
            return True

    def close(self) -> None:
        self.writer.close()
