"""Capital.com's streaming WebSocket (``/connect``): quotes and OHLC bars, the one place that speaks it.

The rules it keeps (capital-api.md §6 and Capital.com's API docs):

* At most **40 instruments per connection**: epics are packed onto connections, a 41st opens another.
* Messages carry the REST session's ``cst`` / ``securityToken`` (taken fresh from the transport for each
  message, so a re-login is followed); a **ping** every ``ping_interval`` seconds (default 5 minutes;
  the broker closes a socket idle for 10) keeps each connection.
* A connection that drops is opened again with backoff and its subscriptions are sent again; the
  caller notices nothing but the gap (quotes are state: the next one brings it up to date).

Updates go to one callback, ``on_update(destination, payload)``: ``quote`` and ``ohlc.event`` payloads
as the broker sends them, from inside the socket's read callback (:mod:`.websocket`: no reader task
between the bytes and the watcher).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import ccxt

from normalization.runtime.supervisor import Backoff

from .websocket import HandshakeError, WebSocket

log = logging.getLogger("ccxt_capital")

MAX_EPICS_PER_CONNECTION = 40
LIVE_STREAM_URL = "wss://api-streaming-capital.backend-capital.com/connect"
#: Capital closes a streaming socket after 10 minutes without a message from the client.
DEFAULT_PING_INTERVAL = 300.0

Tokens = Callable[[], Awaitable[tuple[str, str]]]
OnUpdate = Callable[[str, dict[str, Any]], None]


@dataclass(eq=False)
class _Connection:
    quotes: set[str] = field(default_factory=set)
    ohlc: set[tuple[str, str, str]] = field(default_factory=set)  # epic, resolution, bar type
    ws: WebSocket | None = None
    pinger: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    reopening: bool = False

    def epics(self) -> set[str]:
        return self.quotes | {epic for epic, _, _ in self.ohlc}


class CapitalStreamWire:
    """Streaming connections of one exchange instance, opened on first subscription."""

    def __init__(self, url: str, tokens: Tokens, on_update: OnUpdate, *, exchange_id: str = "capitalcom",
                 ping_interval: float = DEFAULT_PING_INTERVAL, timeout: float = 10.0,
                 reconnect: dict[str, Any] | None = None) -> None:
        self.url = url
        self.exchange_id = exchange_id
        self.ping_interval = ping_interval
        self.timeout = timeout
        self.backoff = Backoff.from_options(reconnect)
        self.connections: list[_Connection] = []
        self.reconnects = 0
        self.pings = 0
        self._tokens = tokens
        self._on_update = on_update
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ subscriptions

    async def subscribe_quotes(self, epics: list[str]) -> None:
        for epic in epics:
            if any(epic in c.quotes for c in self.connections):
                continue
            conn = await self._connection_for(epic)
            await self._request(conn, "marketData.subscribe", {"epics": [epic]}, epic)
            conn.quotes.add(epic)

    async def unsubscribe_quotes(self, epics: list[str]) -> None:
        for conn in self.connections:
            gone = [e for e in epics if e in conn.quotes]
            if gone:
                conn.quotes.difference_update(gone)
                with contextlib.suppress(ccxt.BaseError):
                    await self._request(conn, "marketData.unsubscribe", {"epics": gone})

    async def subscribe_ohlc(self, epic: str, resolution: str, bar_type: str = "classic") -> None:
        key = (epic, resolution, bar_type)
        if any(key in c.ohlc for c in self.connections):
            return
        conn = await self._connection_for(epic)
        await self._request(conn, "OHLCMarketData.subscribe",
                            {"epics": [epic], "resolutions": [resolution], "type": bar_type}, f"{epic}:{resolution}")
        conn.ohlc.add(key)

    async def unsubscribe_ohlc(self, epic: str, resolution: str, bar_type: str = "classic") -> None:
        key = (epic, resolution, bar_type)
        for conn in self.connections:
            if key in conn.ohlc:
                conn.ohlc.discard(key)
                with contextlib.suppress(ccxt.BaseError):
                    await self._request(conn, "OHLCMarketData.unsubscribe",
                                        {"epics": [epic], "resolutions": [resolution], "type": bar_type})

    async def close(self) -> None:
        self._closed = True
        for conn in self.connections:
            if conn.pinger is not None:
                conn.pinger.cancel()
            if conn.ws is not None:
                conn.ws.close()
        await asyncio.gather(*(c.pinger for c in self.connections if c.pinger is not None), return_exceptions=True)
        lost = [c.ws.lost for c in self.connections if c.ws is not None]
        if lost:  # the transports have closed (no "unclosed transport" left behind), boundedly
            await asyncio.wait(lost, timeout=self.timeout)
        self.connections.clear()
        for future in self._replies.values():
            if not future.done():
                future.cancel()

    def drop(self) -> None:
        """Cut every connection as a network failure would (tests, fault drills): they reconnect."""
        for conn in self.connections:
            if conn.ws is not None:
                conn.ready.clear()
                conn.ws.abort()

    # ------------------------------------------------------------------ connections

    async def _connection_for(self, epic: str) -> _Connection:
        async with self._lock:
            for conn in self.connections:
                if epic in conn.epics() or len(conn.epics()) < MAX_EPICS_PER_CONNECTION:
                    break
            else:
                conn = _Connection()
                self.connections.append(conn)
            if conn.ws is None:
                await self._open(conn)
        await asyncio.wait_for(conn.ready.wait(), self.timeout)
        return conn

    async def _open(self, conn: _Connection) -> None:
        if self._closed:
            raise ccxt.ExchangeClosedByUser(f"{self.exchange_id}: the exchange was closed")
        try:
            ws = await WebSocket.connect(self.url, self._on_text, timeout=self.timeout)
        except (OSError, asyncio.TimeoutError, HandshakeError) as exc:
            raise ccxt.NetworkError(f"{self.exchange_id} streaming connect to {self.url}: {exc!r}") from exc
        conn.ws = ws
        conn.ready.set()
        ws.lost.add_done_callback(lambda _: self._lost(conn, ws))
        if conn.pinger is None:
            conn.pinger = asyncio.ensure_future(self._ping(conn))

    def _lost(self, conn: _Connection, ws: WebSocket) -> None:
        """A connection ended: open it again, unless the wire is closing or a reopen is under way."""
        if self._closed or conn.ws is not ws or conn.reopening:
            return
        log.debug("%s streaming connection lost", self.exchange_id)
        conn.ready.clear()
        asyncio.ensure_future(self._reopen(conn))

    def _on_text(self, text: str) -> None:
        """A message, in the socket's read callback: an update goes to ``on_update`` right here."""
        try:
            message = json.loads(text)
        except ValueError:
            log.debug("%s streaming: not JSON: %.200s", self.exchange_id, text)
            return
        destination = message.get("destination")
        correlation = message.get("correlationId")
        if correlation is not None and str(correlation) in self._replies:
            future = self._replies.pop(str(correlation))
            if not future.done():
                future.set_result(message)
            return
        if message.get("status") == "OK" and destination in ("quote", "ohlc.event"):
            self._on_update(destination, message.get("payload") or {})

    async def _reopen(self, conn: _Connection) -> None:
        """The socket dropped: open it again (with backoff) and send its subscriptions again."""
        conn.reopening = True
        try:
            await self._reopen_attempts(conn)
        finally:
            conn.reopening = False

    async def _reopen_attempts(self, conn: _Connection) -> None:
        attempt = 0
        while not self._closed:
            attempt += 1
            await asyncio.sleep(self.backoff.delay(attempt))
            try:
                await self._open(conn)
                if conn.quotes:
                    await self._request(conn, "marketData.subscribe", {"epics": sorted(conn.quotes)})
                by_resolution: dict[tuple[str, str], list[str]] = {}
                for epic, resolution, bar_type in conn.ohlc:
                    by_resolution.setdefault((resolution, bar_type), []).append(epic)
                for (resolution, bar_type), epics in by_resolution.items():
                    await self._request(conn, "OHLCMarketData.subscribe",
                                        {"epics": sorted(epics), "resolutions": [resolution], "type": bar_type})
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: try again later
                log.info("%s streaming reconnect attempt %d failed: %s", self.exchange_id, attempt, exc)
                if conn.ws is not None:
                    conn.ws.abort()
                continue
            self.reconnects += 1
            log.info("%s streaming connection re-opened after %d attempt(s)", self.exchange_id, attempt)
            return

    async def _ping(self, conn: _Connection) -> None:
        while not self._closed:
            await asyncio.sleep(self.ping_interval)
            if not conn.ready.is_set():
                continue
            try:
                await self._request(conn, "ping", {})
                self.pings += 1
            except Exception as exc:  # noqa: BLE001 - a failed ping shows up as a dropped socket
                log.debug("%s streaming ping failed: %s", self.exchange_id, exc)

    async def _request(self, conn: _Connection, destination: str, payload: dict[str, Any],
                       item: str | None = None) -> dict[str, Any]:
        """Send one message and wait (bounded) for its answer; a refused epic raises BadSymbol."""
        cst, token = await self._tokens()
        correlation = str(next(self._ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[correlation] = future
        message = {"destination": destination, "correlationId": correlation, "cst": cst,
                   "securityToken": token, "payload": payload}
        ws = conn.ws
        if ws is None or ws.closed or ws.lost.done():
            self._replies.pop(correlation, None)
            raise ccxt.NetworkError(f"{self.exchange_id} streaming connection is down")
        try:
            ws.send_text(json.dumps(message))
            reply = await asyncio.wait_for(future, self.timeout)
        except asyncio.TimeoutError as exc:
            raise ccxt.RequestTimeout(f"{self.exchange_id} streaming {destination}: no answer") from exc
        except ConnectionError as exc:
            raise ccxt.NetworkError(f"{self.exchange_id} streaming {destination}: {exc}") from exc
        finally:
            self._replies.pop(correlation, None)
        if reply.get("status") != "OK":
            code = (reply.get("payload") or {}).get("errorCode")
            raise ccxt.ExchangeError(f"{self.exchange_id} streaming {destination} refused: {code}")
        results = (reply.get("payload") or {}).get("subscriptions") or {}
        if item is not None and results.get(item, "PROCESSED") != "PROCESSED":
            raise ccxt.BadSymbol(f"{self.exchange_id} streaming {destination} {item}: {results[item]}")
        return reply
