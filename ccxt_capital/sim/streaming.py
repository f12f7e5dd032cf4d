"""The streaming API (WebSocket ``/connect``): quotes and OHLC bars pushed as the clock moves.

Messages follow Capital.com's shape: the client sends ``{"destination": "marketData.subscribe",
"correlationId", "cst", "securityToken", "payload": {"epics": [...]}}`` and receives an answer on the
same destination, then ``{"status": "OK", "destination": "quote", "payload": {...}}`` whenever the
quote changes; ``OHLCMarketData.subscribe`` yields ``ohlc.event`` messages (one per price type).

Updates are pushed when the simulated clock moves (a clock listener schedules a publish on the
server's loop) and, with a real-time clock, once a second -- never on a timer of their own in test
mode, so a test sees exactly the updates its clock moves cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .broker import Broker
from .errors import ApiError
from .pricing import RESOLUTIONS, align

#: Documented: "The WebSocket API allows subscription to a maximum of 40 instruments" (per destination
#: here: quotes and bars are counted apart). What the broker answers to a 41st is not documented; the
#: whole request is refused (nothing of it subscribed) with a FAILED answer naming the limit.
MAX_EPICS = 40
TOO_MANY_EPICS = "error.invalid.epics.limit"
BAR_TYPES = ("classic", "heikin-ashi")


@dataclass(eq=False)
class Connection:
    """One WebSocket client and what it subscribed to."""

    ws: web.WebSocketResponse
    quotes: set[str] = field(default_factory=set)
    ohlc: set[tuple[str, str, str]] = field(default_factory=set)  # (epic, resolution, type)
    last: dict[Any, Any] = field(default_factory=dict)


class Streamer:
    """All WebSocket connections of one simulator and the publishing of updates to them."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.connections: set[Connection] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pending = False
        broker.clock.subscribe(self._on_clock)

    def close(self) -> None:
        self.broker.clock.unsubscribe(self._on_clock)

    def _on_clock(self, when: float) -> None:
        loop = self.loop
        if loop is None or loop.is_closed() or not self.connections or self._pending:
            return
        self._pending = True
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        self._pending = False
        asyncio.ensure_future(self.publish())

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self.loop = asyncio.get_running_loop()
        conn = Connection(ws)
        self.connections.add(conn)
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                for reply in self._on_message(conn, message.data):
                    await ws.send_str(json.dumps(reply))
        finally:
            self.connections.discard(conn)
        return ws

    def _on_message(self, conn: Connection, text: str) -> list[dict[str, Any]]:
        """Answer one client message (and the first updates of new subscriptions)."""
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            return [{"status": "FAILED", "destination": None, "payload": {"errorCode": "error.malformed.request"}}]
        if not isinstance(message, dict):
            return [{"status": "FAILED", "destination": None, "payload": {"errorCode": "error.malformed.request"}}]
        destination = message.get("destination")
        correlation = message.get("correlationId")
        base = {"destination": destination, "correlationId": correlation}
        payload = message.get("payload") if isinstance(message.get("payload"), dict) else {}
        with self.broker.lock:
            now = self.broker.sync()
            try:
                cst, token = message.get("cst"), message.get("securityToken")
                self.broker.sessions.authenticate(cst if isinstance(cst, str) else None,
                                                  token if isinstance(token, str) else None, now)
            except ApiError as error:
                return [{**base, "status": "FAILED", "payload": {"errorCode": error.code}}]
            if destination == "ping":
                return [{**base, "status": "OK", "payload": {}}]
            epics = payload.get("epics")
            if destination in ("marketData.subscribe", "marketData.unsubscribe", "OHLCMarketData.subscribe",
                               "OHLCMarketData.unsubscribe"):
                if not isinstance(epics, list) or not all(isinstance(e, str) for e in epics):
                    return [{**base, "status": "FAILED", "payload": {"errorCode": "error.invalid.epics"}}]
            else:
                return [{**base, "status": "FAILED", "payload": {"errorCode": "error.invalid.destination"}}]
            assert isinstance(epics, list)
            if destination == "marketData.subscribe":
                if len(conn.quotes | set(epics)) > MAX_EPICS:
                    return [{**base, "status": "FAILED", "payload": {"errorCode": TOO_MANY_EPICS}}]
                result = {}
                for epic in epics:
                    known = self.broker.catalogue.get(epic) is not None
                    result[epic] = "PROCESSED" if known else "ERROR.NOT_FOUND"
                    if known:
                        conn.quotes.add(epic)
                replies = [{**base, "status": "OK", "payload": {"subscriptions": result}}]
                return replies + self._updates(conn, now, only={e for e in epics if e in conn.quotes})
            if destination == "marketData.unsubscribe":
                conn.quotes -= set(epics)
                for epic in epics:
                    conn.last.pop(("quote", epic), None)
                return [{**base, "status": "OK", "payload": {"subscriptions": {e: "PROCESSED" for e in epics}}}]
            if destination == "OHLCMarketData.unsubscribe":
                # Documented: what is not named is unsubscribed whole (all resolutions, all types).
                resolutions = payload.get("resolutions") or list(RESOLUTIONS)
                types = payload.get("types") or list(BAR_TYPES)
                if not isinstance(resolutions, list) or any(r not in RESOLUTIONS for r in resolutions) \
                        or not isinstance(types, list) or any(t not in BAR_TYPES for t in types):
                    return [{**base, "status": "FAILED", "payload": {"errorCode": "error.invalid.resolutions"}}]
                gone = {s for s in conn.ohlc if s[0] in epics and s[1] in resolutions and s[2] in types}
                conn.ohlc -= gone
                keys = {f"{e}:{r}:{t}": "PROCESSED" for e, r, t in sorted(gone)}
                return [{**base, "status": "OK", "payload": {"subscriptions": keys}}]
            resolutions = payload.get("resolutions") or ["MINUTE"]
            bar_type = payload.get("type") or "classic"
            if not isinstance(resolutions, list) or any(r not in RESOLUTIONS for r in resolutions) \
                    or bar_type not in BAR_TYPES:
                return [{**base, "status": "FAILED", "payload": {"errorCode": "error.invalid.resolutions"}}]
            if len({s[0] for s in conn.ohlc} | set(epics)) > MAX_EPICS:
                return [{**base, "status": "FAILED", "payload": {"errorCode": TOO_MANY_EPICS}}]
            result = {}
            added = set()
            for epic in epics:
                known = self.broker.catalogue.get(epic) is not None
                for resolution in resolutions:
                    result[f"{epic}:{resolution}:{bar_type}"] = "PROCESSED" if known else "ERROR.NOT_FOUND"
                    if known:
                        conn.ohlc.add((epic, resolution, bar_type))
                        added.add(epic)
            replies = [{**base, "status": "OK", "payload": {"subscriptions": result}}]
            return replies + self._updates(conn, now, only=added, quotes=False)

    def _updates(self, conn: Connection, now: float, only: set[str] | None = None,
                 quotes: bool = True) -> list[dict[str, Any]]:
        """Messages for what changed since the last push to ``conn`` (call under the lock)."""
        out: list[dict[str, Any]] = []
        feed = self.broker.feed
        if quotes:
            for epic in sorted(conn.quotes):
                if only is not None and epic not in only:
                    continue
                quote = feed.quote(epic, now)
                key = ("quote", epic)
                if conn.last.get(key) == (quote.bid, quote.offer):
                    continue
                conn.last[key] = (quote.bid, quote.offer)
                out.append({"status": "OK", "destination": "quote", "payload": {
                    "epic": epic, "product": "CFD", "bid": quote.bid, "bidQty": 1_000_000.0,
                    "ofr": quote.offer, "ofrQty": 1_000_000.0, "timestamp": int(now * 1000)}})
        for epic, resolution, bar_type in sorted(conn.ohlc):
            if only is not None and epic not in only:
                continue
            seconds = RESOLUTIONS[resolution]
            start = align(int(now), seconds)
            bars = feed.bars_until(epic, start, now, seconds)
            if not bars:
                continue
            bar = bars[-1]
            key = ("ohlc", epic, resolution, bar_type)
            state = (bar.time, bar.open, bar.high, bar.low, bar.close)
            if conn.last.get(key) == state:
                continue
            conn.last[key] = state
            inst = self.broker.catalogue.by_epic[epic]
            sides = [feed.side_prices(inst, v) for v in (bar.open, bar.high, bar.low, bar.close)]
            for index, price_type in enumerate(("bid", "ask")):
                out.append({"status": "OK", "destination": "ohlc.event", "payload": {
                    "resolution": resolution, "epic": epic, "type": bar_type, "priceType": price_type,
                    "t": bar.time * 1000, "o": sides[0][index], "h": sides[1][index], "l": sides[2][index],
                    "c": sides[3][index]}})
        return out

    async def publish(self) -> None:
        """Push every connection what changed; messages are built under the lock, sent outside it."""
        batches = []
        with self.broker.lock:
            now = self.broker.sync()
            for conn in list(self.connections):
                batches.append((conn, self._updates(conn, now)))
        for conn, messages in batches:
            for message in messages:
                if conn.ws.closed:
                    break
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.send_str(json.dumps(message))
