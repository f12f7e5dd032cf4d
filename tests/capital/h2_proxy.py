"""A minimal HTTP/2 (h2c, prior knowledge) front for the Capital simulator, for tests only.

The simulator speaks HTTP/1.1; the real hosts negotiate HTTP/2, where the ``h2`` / ``hpack`` stack
logs headers in its own shapes. This proxy lets a test drive the adapter over a real HTTP/2 connection
(httpx + httpcore + h2 + hpack, as with the ``http2`` extra) to the simulator's answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx

HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"proxy-connection",
              b"content-length", b"content-encoding", b"host"}


class H2Proxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.streams_served = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> H2Proxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        pending: dict[int, list[Any]] = {}
        async with httpx.AsyncClient(base_url=self.upstream) as client:
            try:
                while True:
                    data = await reader.read(65535)
                    if not data:
                        break
                    for event in conn.receive_data(data):
                        if isinstance(event, h2.events.RequestReceived):
                            pending[event.stream_id] = [event.headers, bytearray()]
                        elif isinstance(event, h2.events.DataReceived):
                            pending[event.stream_id][1] += event.data
                            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        elif isinstance(event, h2.events.StreamEnded):
                            headers, body = pending.pop(event.stream_id)
                            await self._answer(conn, client, event.stream_id, headers, bytes(body))
                    writer.write(conn.data_to_send())
                    await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

    async def _answer(self, conn: Any, client: httpx.AsyncClient, stream_id: int, headers: list[Any],
                      body: bytes) -> None:
        pseudo = {k: v for k, v in headers if k.startswith(b":")}
        plain = [(k.decode(), v.decode()) for k, v in headers if not k.startswith(b":") and k not in HOP_BY_HOP]
        response = await client.request(pseudo[b":method"].decode(), pseudo[b":path"].decode(), headers=plain,
                                         content=body or None)
        out = [(b":status", str(response.status_code).encode())]
        out += [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
        conn.send_headers(stream_id, out)
        content = response.content
        size = conn.max_outbound_frame_size
        for start in range(0, len(content), size):
            conn.send_data(stream_id, content[start:start + size])
        conn.send_data(stream_id, b"", end_stream=True)
        self.streams_served += 1
