"""``ccxt.pro.capitalcom``: Capital.com's WebSocket quotes and bars, and paced polls for the account.

==================  ==========================================================================
stream              how
==================  ==========================================================================
watch_ticker(s)     WebSocket ``marketData.subscribe`` (``quote`` messages), :mod:`.streaming`
watch_ohlcv         WebSocket ``OHLCMarketData.subscribe`` (``ohlc.event``, bid and ask sides;
                    the mid bar, as fetch_ohlcv, once both sides of a bar are in)
watch_orders        **polled**: working orders + the activity history, every ``pollInterval`` s
watch_my_trades     **polled**: the activity history's fills (+ commissions), each once by id
watch_positions     **polled**: ``GET /positions``; a position that closed comes once with size 0
watch_balance       **polled**: ``GET /accounts`` (+ positions for holdings)
==================  ==========================================================================

Capital.com has no private stream, so the account streams poll (``options['pollInterval']``, default
1 s) through the same limiter as every other request, and a poll that finds nothing new wakes nobody.
The first poll of a stream is its baseline (what existed before the watch is history, not news).
Polls compare by id, so a fill that happened while the connection was down is delivered by the first
poll after it, once. The WebSocket reconnects by itself and re-sends its subscriptions
(:class:`~ccxt_capital.streaming.CapitalStreamWire`).
"""

from __future__ import annotations

import logging
from typing import Any

import ccxt

from normalization.runtime.polling import Poller
from normalization.runtime.streams import (
    ArrayCacheBySymbolById,
    ArrayCacheBySymbolBySide,
    ArrayCacheByTimestamp,
    SeenIds,
    StreamingExchange,
)
from normalization.timeframes import CAPITAL_RESOLUTIONS, CAPITAL_TIMEFRAMES

from .async_support import CapitalTrader as AsyncCapitalTrader
from .parsing import _ISO_END, _iso8601
from .streaming import DEFAULT_PING_INTERVAL, LIVE_STREAM_URL, CapitalStreamWire
from .transport import DEMO_HOST, LIVE_HOST

log = logging.getLogger("ccxt_capital")

WATCH_HAS = {
    "ws": True,
    "watchBalance": True,
    "watchMyTrades": True,
    "watchOHLCV": True,
    "watchOrders": True,
    "watchPositions": True,
    "watchTicker": True,
    "watchTickers": True,
    "watchOrderBook": False,  # Capital streams top of book only: watch_ticker has bid and ask
    "watchTrades": False,  # a CFD dealer publishes no trades
    "unWatchMyTrades": True,
    "unWatchOHLCV": True,
    "unWatchOrders": True,
    "unWatchPositions": True,
    "unWatchTicker": True,
    "unWatchTickers": True,
    "watchBidsAsks": False,
    "watchLiquidations": False,
    "watchMyLiquidations": False,
    "watchOHLCVForSymbols": False,
    "createOrderWs": False,
    "cancelOrderWs": False,
}
PRICE_SIDES = ("mid", "bid", "ask")


class CapitalTraderPro(StreamingExchange, AsyncCapitalTrader):
    """The async ``capitalcom`` exchange with ccxt.pro's ``watch_*`` methods."""

    def describe(self) -> Any:
        return self.deep_extend(super().describe(), {
            "pro": True,
            "has": WATCH_HAS,
            "urls": {"api": {"ws": LIVE_STREAM_URL}},
            "options": {"tradesLimit": 1000, "ordersLimit": 1000, "OHLCVLimit": 1000, "pollInterval": 1.0,
                        "streamPingInterval": DEFAULT_PING_INTERVAL},
        })

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._stream: CapitalStreamWire | None = None
        self._pollers: dict[str, Poller] = {}
        self._bar_sides: dict[tuple[str, str, int], dict[str, list[float]]] = {}
        self._bar_watch: dict[tuple[str, str], set[str]] = {}  # (epic, resolution) -> price sides watched
        self._order_seen: dict[str, tuple[Any, ...]] = {}
        self._fills_seen = SeenIds()
        self._positions_seen: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._balance_seen: Any = None
        self._stream_since: int | None = None

    # ------------------------------------------------------------------ the WebSocket

    def stream_url(self) -> str:
        """``options['streamingUrl']``, else Capital's streaming host for its own REST hosts, else the
        REST host's ``/connect`` (the simulator serves both on one port)."""
        explicit = self.safe_string(self.options, "streamingUrl")
        if explicit:
            return explicit
        host = self._host().rstrip("/")
        if host in (DEMO_HOST.rstrip("/"), LIVE_HOST.rstrip("/")):
            return LIVE_STREAM_URL
        if host.endswith("/api/v1"):
            host = host[: -len("/api/v1")]
        return host.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/connect"

    @property
    def stream(self) -> CapitalStreamWire:
        if self._stream is None:
            self._stream = CapitalStreamWire(
                self.stream_url(), self._wire().stream_tokens, self.handle_update, exchange_id=self.id,
                ping_interval=float(self.safe_number(self.options, "streamPingInterval", DEFAULT_PING_INTERVAL)),
                timeout=max(self.timeout, 1) / 1000, reconnect=self.safe_value(self.options, "reconnect"),
            )
        return self._stream

    def handle_update(self, destination: str, payload: dict[str, Any]) -> None:
        if destination == "quote":
            self.handle_quote(payload)
        else:
            self.handle_bar(payload)

    # ------------------------------------------------------------------ tickers

    async def watch_ticker(self, symbol: str, params: dict[str, Any] = {}) -> dict[str, Any]:
        """The next quote of ``symbol`` from the streaming API (bid / ask; ``last`` is their mid)."""
        market = await self._market(symbol)
        key = "ticker:" + market["symbol"]
        return await self._watch(key, key, *self._ticker_subscription(market))

    def _ticker_subscription(self, market: dict[str, Any]) -> tuple[Any, Any]:
        epic = market["id"]

        async def start() -> None:
            await self.stream.subscribe_quotes([epic])

        async def stop() -> None:
            await self.stream.unsubscribe_quotes([epic])

        return start, stop

    # {"epic": "AAPL", "product": "CFD", "bid": 189.99, "bidQty": 1000000.0, "ofr": 190.01,
    #  "ofrQty": 1000000.0, "timestamp": 1749564000000}
    def handle_quote(self, payload: dict[str, Any]) -> None:
        """Built straight from the message's floats: the quote path's cost is what a bot waits on
        (ccxt's ``safe_ticker`` and Capital's string-precise ``parse_ticker`` cost ~150 us a quote and
        add nothing here: a streamed quote carries no high / low / change to derive from). It runs cold
        (a quote every few ms leaves the caches to others): every call saved here counts several times."""
        found = self.markets_by_id.get(payload.get("epic")) if self.markets_by_id else None
        if not found:
            return
        symbol = found[0]["symbol"]
        bid, ask = payload.get("bid"), payload.get("ofr")
        bid = bid if type(bid) is float and bid > 0 else _positive(bid)
        ask = ask if type(ask) is float and ask > 0 else _positive(ask)
        last = (bid + ask) / 2 if bid is not None and ask is not None else None
        timestamp = payload.get("timestamp")
        if type(timestamp) is not int or not 0 <= timestamp < _ISO_END:
            timestamp = self._now_ms()
        ticker = {
            "symbol": symbol, "timestamp": timestamp, "datetime": _iso8601(timestamp),
            "high": None, "low": None, "bid": bid, "bidVolume": _positive(payload.get("bidQty")),
            "ask": ask, "askVolume": _positive(payload.get("ofrQty")), "vwap": None, "open": None,
            "close": last, "last": last, "previousClose": None, "change": None, "percentage": None,
            "average": None, "baseVolume": None, "quoteVolume": None, "markPrice": None, "indexPrice": None,
            "info": payload,
        }
        self.tickers[symbol] = ticker
        self.hub.resolve(ticker, "ticker:" + symbol)

    # ------------------------------------------------------------------ OHLCV

    async def watch_ohlcv(self, symbol: str, timeframe: str = "1m", since: int | None = None,
                          limit: int | None = None, params: dict[str, Any] = {}) -> list[list[Any]]:
        """The forming bar as the streaming API updates it; mid bars unless ``params['price']`` is
        ``bid`` or ``ask`` (as fetch_ohlcv). Volume is None: the stream carries none."""
        market = await self._market(symbol)
        resolution = CAPITAL_RESOLUTIONS.get(timeframe)
        if resolution is None:
            raise ccxt.BadRequest(f"{self.id} watch_ohlcv: no streaming resolution for {timeframe!r}; "
                                  f"supported: {', '.join(CAPITAL_RESOLUTIONS)}")
        price = (self.safe_string_lower(params, "price") or "mid").replace("midpoint", "mid")
        if price not in PRICE_SIDES:
            raise ccxt.BadRequest(f"{self.id} watch_ohlcv params['price'] must be bid, ask or mid, not {price!r}")
        epic, symbol = market["id"], market["symbol"]
        key = f"ohlcv:{symbol}:{timeframe}:{price}"

        async def start() -> None:
            self._bar_watch.setdefault((epic, resolution), set()).add(price)
            await self.stream.subscribe_ohlc(epic, resolution)

        async def stop() -> None:
            sides = self._bar_watch.get((epic, resolution), set())
            sides.discard(price)
            if not sides:
                self._bar_watch.pop((epic, resolution), None)
                await self.stream.unsubscribe_ohlc(epic, resolution)

        cache = await self._watch(key, key, start, stop)
        return self._since_limit(cache, symbol, since, limit, by_symbol=False)

    async def un_watch_ohlcv(self, symbol: str, timeframe: str = "1m", params: dict[str, Any] = {}) -> Any:
        market = await self._market(symbol)
        price = (self.safe_string_lower(params, "price") or "mid").replace("midpoint", "mid")
        return await self.hub.unsubscribe(f"ohlcv:{market['symbol']}:{timeframe}:{price}")

    # {"resolution": "MINUTE", "epic": "AAPL", "type": "classic", "priceType": "bid",
    #  "t": 1749564000000, "o": 189.98, "h": 190.02, "l": 189.95, "c": 190.0}
    def handle_bar(self, payload: dict[str, Any]) -> None:
        epic, resolution = payload.get("epic"), payload.get("resolution")
        sides = self._bar_watch.get((epic, resolution))
        market = self.market_by_epic(epic)
        timeframe = CAPITAL_TIMEFRAMES.get(str(resolution))
        if not sides or market is None or timeframe is None:
            return
        t = self.safe_integer(payload, "t")
        values = [self.safe_number(payload, k) for k in ("o", "h", "l", "c")]
        if t is None or any(v is None for v in values):
            return
        side = "ask" if payload.get("priceType") == "ask" else "bid"
        pending = self._bar_sides.setdefault((epic, resolution, t), {})
        pending[side] = values  # type: ignore[assignment]
        if len(self._bar_sides) > 64:
            self._bar_sides.pop(next(iter(self._bar_sides)))
        symbol = market["symbol"]
        for price in sides:
            if price == "mid":
                if "bid" not in pending or "ask" not in pending:
                    continue
                row = [self.sum(b, a) / 2 for b, a in zip(pending["bid"], pending["ask"], strict=True)]
            elif price == side:
                row = list(values)  # type: ignore[arg-type]
            else:
                continue
            cache = self._ohlcv_cache(symbol, timeframe if price == "mid" else f"{timeframe}:{price}")
            cache.append([t, *row, None])
            self.hub.resolve(cache, f"ohlcv:{symbol}:{timeframe}:{price}")

    def _ohlcv_cache(self, symbol: str, key: str) -> ArrayCacheByTimestamp:
        by_timeframe = self.ohlcvs.setdefault(symbol, {})
        cache = by_timeframe.get(key)
        if cache is None:
            cache = by_timeframe[key] = ArrayCacheByTimestamp(self.stream_limit("OHLCVLimit"))
        return cache

    # ------------------------------------------------------------------ polled account streams

    async def _watch_polled(self, name: str, message_hash: str, poll: Any) -> Any:
        async def start() -> None:
            await self.load_markets()
            if self._stream_since is None:
                self._stream_since = self._now_ms() - 60_000
            poller = self._pollers.get(name)
            if poller is None:
                poller = self._pollers[name] = Poller(
                    name, poll, float(self.safe_number(self.options, "pollInterval", 1.0)), self._sleeper())
            await poller.start()

        async def stop() -> None:
            poller = self._pollers.pop(name, None)
            if poller is not None:
                await poller.stop()

        return await self._watch(message_hash, name, start, stop, sticky=name != "balance")

    async def watch_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                           params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """Order changes, **polled** (working orders and the activity history; see the module docstring)."""
        if symbol is not None:
            symbol = (await self._market(symbol))["symbol"]
        if self.orders is None:
            self.orders = ArrayCacheBySymbolById(self.stream_limit("ordersLimit"))
        orders = await self._watch_polled("orders", "orders" if symbol is None else "orders:" + symbol,
                                          self._poll_orders)
        return self._since_limit(orders, symbol, since, limit)

    async def un_watch_orders(self, symbol: str | None = None, params: dict[str, Any] = {}) -> Any:
        return await self.hub.unsubscribe("orders")

    async def _poll_orders(self) -> None:
        baseline = not self._pollers["orders"].polls
        orders = await self.fetch_orders(None, self._stream_since)
        changed = False
        for order in orders:
            fingerprint = (order["status"], order["filled"], order["remaining"], order["price"], order["amount"])
            if self._order_seen.get(order["id"]) == fingerprint:
                continue
            self._order_seen[order["id"]] = fingerprint
            if baseline or self.orders is None:
                continue
            self.orders.append(order)
            self.hub.resolve(self.orders, "orders:" + order["symbol"])
            changed = True
        if changed:
            self.hub.resolve(self.orders, "orders")

    async def watch_my_trades(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                              params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """Fills, **polled** from the activity history, each once (by id), with its commission."""
        if symbol is not None:
            symbol = (await self._market(symbol))["symbol"]
        if self.myTrades is None:
            self.myTrades = ArrayCacheBySymbolById(self.stream_limit("tradesLimit"))
        trades = await self._watch_polled("myTrades", "myTrades" if symbol is None else "myTrades:" + symbol,
                                          self._poll_my_trades)
        return self._since_limit(trades, symbol, since, limit)

    async def un_watch_my_trades(self, symbol: str | None = None, params: dict[str, Any] = {}) -> Any:
        return await self.hub.unsubscribe("myTrades")

    async def _poll_my_trades(self) -> None:
        baseline = not self._pollers["myTrades"].polls
        trades = await self.fetch_my_trades(None, self._stream_since)
        changed = False
        for trade in trades:
            if not self._fills_seen.add(str(trade["id"])) or baseline or self.myTrades is None:
                continue
            self.myTrades.append(trade)
            self.hub.resolve(self.myTrades, "myTrades:" + trade["symbol"])
            changed = True
        if changed:
            self.hub.resolve(self.myTrades, "myTrades")

    async def watch_positions(self, symbols: list[str] | None = None, since: int | None = None,
                              limit: int | None = None, params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """Position changes, **polled**; a position that closed comes once more with 0 contracts."""
        if symbols:
            symbols = [(await self._market(s))["symbol"] for s in symbols]
        if self.positions is None:
            self.positions = ArrayCacheBySymbolBySide()
        positions = await self._watch_polled("positions", "positions", self._poll_positions)
        return self.filter_by_symbols_since_limit(positions, symbols, since, limit, True)

    async def un_watch_positions(self, symbols: list[str] | None = None, params: dict[str, Any] = {}) -> Any:
        return await self.hub.unsubscribe("positions")

    async def _poll_positions(self) -> None:
        baseline = not self._pollers["positions"].polls
        current: dict[tuple[str, str], dict[str, Any]] = {}
        for position in await self.fetch_positions():
            key = (position["symbol"], position["side"])
            merged = current.get(key)
            if merged is None:
                current[key] = position
            else:  # several deals in one market and direction: one ccxt position per symbol and side
                merged["contracts"] = self.sum(merged["contracts"], position["contracts"])
        changed = False
        for key, position in current.items():
            fingerprint = (position["contracts"], position["entryPrice"])
            if self._positions_seen.get(key) == fingerprint:
                continue
            self._positions_seen[key] = fingerprint
            if not baseline and self.positions is not None:
                self.positions.append(position)
                changed = True
        for key in [k for k in self._positions_seen if k not in current]:
            del self._positions_seen[key]
            if not baseline and self.positions is not None:
                closed = self.safe_position({"symbol": key[0], "side": key[1], "contracts": 0.0,
                                             "timestamp": self._now_ms(), "info": {}})
                self.positions.append(closed)
                changed = True
        if changed:
            self.hub.resolve(self.positions, "positions")

    async def watch_balance(self, params: dict[str, Any] = {}) -> dict[str, Any]:
        """The balance when it changes, **polled** (``GET /accounts`` and positions)."""
        return await self._watch_polled("balance", "balance", self._poll_balance)

    async def un_watch_balance(self, params: dict[str, Any] = {}) -> Any:
        return await self.hub.unsubscribe("balance")

    async def _poll_balance(self) -> None:
        balance = await self.fetch_balance()
        fingerprint = (repr(balance.get("total")), repr(balance.get("free")), repr(balance.get("used")))
        if fingerprint == self._balance_seen:
            return
        first = self._balance_seen is None
        self._balance_seen = fingerprint
        self.balance = balance
        if not first:
            self.hub.resolve(balance, "balance")

    async def close(self) -> None:
        for poller in list(self._pollers.values()):
            await poller.stop()
        self._pollers.clear()
        await super().close()
        if self._stream is not None:
            await self._stream.close()
            self._stream = None


def _positive(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value > 0 else None
